"""One live session: decoder → policy → scheduler → events. No socket, no wire format inside.

The receive side calls :meth:`LiveSession.feed` and :meth:`LiveSession.end_input` (and
:meth:`~LiveSession.finalize`, :meth:`~LiveSession.configure`); the session's own task
(:meth:`LiveSession.run`) decodes, asks the scheduler for updates, hands the policy's events
(:mod:`wirescribe.streaming.events`) to ``emit`` in order, and returns the final transcript once
the input ended (``eof``, the duration limit, or shutdown). Each protocol edge turns the events
into its own messages.

Live updates are cheap; the closing pass gets the strong decode (:func:`live_decode_options`).
With turns asked for, :mod:`~wirescribe.streaming.live_turns` judges each pause (``turn_taking.py``).

**The session owns its decoder**: it is handed one at construction and is the only one to
close it — at the end of :meth:`~LiveSession.run`, or in :meth:`~LiveSession.aclose` /
``async with`` for a session that never ran (the client left before it started). The caller
opens the decoder and enters the session with nothing awaited in between::

    decoder = await open_decoder(fmt, rate)
    async with LiveSession(decoder, policy, scheduler, emit, ...) as session:
        ...  # run it, feed it; leaving the block reaps ffmpeg whatever happened

Decoder errors become protocol errors in one place, :mod:`wirescribe.streaming.errors`.

**Its place in the scheduler's order**: each turn comes with an :class:`~wirescribe.streaming.urgency.Urgency`
read when a worker frees (:meth:`LiveSession._urgency`): whether its window closes an utterance,
since when its oldest uncommitted speech has waited (stamped when the decoder delivered it, on the
scheduler's clock) and whether any speech came after its last window. The scheduler alone decides
the order from that. An ``observer`` (the app's metrics) sees each update's lag and each committed
word's latency.

Silero scores each block for voice activity in a worker thread (2 % of the loop at 12 streams,
``bench/vad_cost.py``); its scores are folded into the policy back on the loop, the only place
the policy is touched from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import Executor
from types import TracebackType
from typing import Protocol

import numpy as np

from wirescribe.asr.scheduler import Scheduler
from wirescribe.asr.types import DecodeOptions, Transcript
from wirescribe.audio.allowance import audio_allowance
from wirescribe.audio.decode import DecodeError, StreamDecoder
from wirescribe.streaming.arrivals import Arrivals, score_off_loop
from wirescribe.streaming.decoding import LanguageDetected, detect_language, live_decode_options
from wirescribe.streaming.errors import DECODER_ERRORS, DecoderStalled, decoder_error
from wirescribe.streaming.events import CloseReason, Emit, Event, SessionConfig, TranscriptChanged
from wirescribe.streaming.live_turns import LiveTurns, TurnScorer
from wirescribe.streaming.policy import MAX_CLOSING_WINDOWS, SR, FinalTranscript, StreamingPolicy, Window
from wirescribe.streaming.urgency import Urgency

log = logging.getLogger(__name__)

class LiveObserver(Protocol):
    """What a session reports as it goes (the app's :class:`~wirescribe.api.metrics.Metrics`)."""

    def observe_lag(self, seconds: float) -> None:
        """An update was applied: seconds of audio decoded that its window did not cover yet."""

    def observe_commit_latency(self, seconds: float) -> None:
        """A word was committed, this long after the audio holding its end was decoded."""


class LiveSession:
    """One live session. Owns its decoder (see the module's docstring): use it as an async
    context manager, or call :meth:`aclose` once done with it."""

    def __init__(
        self,
        decoder: StreamDecoder,
        policy: StreamingPolicy,
        scheduler: Scheduler,
        emit: Emit,
        *,
        config: SessionConfig,
        max_seconds: float,
        context_seconds: float | None = None,
        decode_timeout: float = 0.0,
        session_id: str = "-",
        vad_executor: Executor | None = None,
        min_input_bitrate: float = 0.0,
        observer: LiveObserver | None = None,
        turn_scorer: TurnScorer | None = None,
    ) -> None:
        """``vad_executor``: where the voice-activity model runs (None: the loop's default
        executor, as ``asyncio.to_thread``). ``min_input_bitrate``: bits the client must have
        sent per second of decoded audio (0: any); a stream that decodes to more audio than its
        bytes allow (a header lying about its sample rate) ends with ``bad_audio`` before the
        audio is scored or kept (:func:`~wirescribe.api.limits.audio_allowance`). ``observer``:
        told each update's lag and each committed word's latency (None: nobody). ``turn_scorer``:
        the end-of-turn model, for a config that asks for turns (None: silence and text decide)."""
        self._decoder = decoder
        self._policy = policy
        self._scheduler = scheduler
        self._emit = emit
        self._emitting = asyncio.Lock()  # events leave in the order the policy queued them
        self._config = config
        self._policy.pause = config.pause
        self._finalize = False  # a finalize waits for the update loop's next turn
        self._finalize_at = 0  # ... and commits the audio decoded when it came, no more
        self._context_seconds = context_seconds
        self._id = session_id
        self._max_samples = int(max_seconds * SR)
        self._decode_timeout = decode_timeout or None  # None: wait for the decoder forever
        self._wake = asyncio.Event()
        self._input_ended = False
        self._ended = asyncio.Event()  # set with _input_ended; starts the decoder's deadline
        self._decoder_stalled = False
        self._bytes_fed = 0
        self._decoded_samples = 0
        self._vad_executor = vad_executor
        self._min_input_bitrate = min_input_bitrate
        self._closing: asyncio.Future[None] | None = None  # the decoder's aclose(), once started
        self._observer = observer
        self._heard = Arrivals()
        self._turn_scorer = turn_scorer
        self._turns = LiveTurns(config, turn_scorer) if config.turns else None
        self._last_cut: float | None = None  # scheduler clock: when the last window was cut
        self._detected: list[LanguageDetected] = []  # language=auto: told before the next events
        self.limit_reached = False

    async def __aenter__(self) -> LiveSession:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Reap the decoder (kill ffmpeg if it still runs); the end of :meth:`run` calls it too.

        The decoder is closed once, by a task of its own: a caller cancelled while it runs (the
        edge cancelling :meth:`run`) does not cut the reaping short, and a later call (leaving
        ``async with``) waits for it to end."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._decoder.aclose())
        await asyncio.shield(self._closing)

    @property
    def audio_seconds(self) -> float:
        """Audio the policy holds (decoded and scored for voice activity)."""
        return self._policy.audio_seconds

    @property
    def decoded_seconds(self) -> float:
        """Audio out of the decoder so far, some of it perhaps still being scored: what the
        edge's rate gate counts, so a fast sender is held back however far scoring lags."""
        return self._decoded_samples / SR

    @property
    def config(self) -> SessionConfig:
        """The settings in force (from the next model call on, after :meth:`configure`)."""
        return self._config

    def configure(self, config: SessionConfig) -> None:
        """New keyterms, prompt, language or endpointing: from the next window on."""
        self._config = config
        self._policy.pause = config.pause
        self._turns = LiveTurns.reconfigured(self._turns, config, self._turn_scorer, self._policy)
        self._wake.set()

    def finalize(self) -> None:
        """Commit everything heard so far, as a pause would; the session goes on."""
        self._finalize, self._finalize_at = True, self._decoded_samples
        self._wake.set()

    @property
    def bytes_fed(self) -> int:
        """Encoded bytes the client has sent so far."""
        return self._bytes_fed

    async def feed(self, data: bytes) -> None:
        """Encoded bytes from the client; ignored once the input has ended. A decoder that takes
        none for ``decode_timeout`` s (ffmpeg hung) ends the session with ``internal``."""
        if self._input_ended:
            return
        self._bytes_fed += len(data)
        try:
            await asyncio.wait_for(self._decoder.feed(data), self._decode_timeout)
        except (*DECODER_ERRORS, asyncio.TimeoutError) as e:  # the timeout: ffmpeg's stdin is stuck
            raise decoder_error(e) from e

    async def end_input(self) -> None:
        """No more audio (``eof``, limit or shutdown): let the decoder flush what it holds."""
        if self._input_ended:
            return
        self._input_ended = True
        self._ended.set()
        try:
            await asyncio.wait_for(self._decoder.close(), self._decode_timeout)
        except (*DECODER_ERRORS, asyncio.TimeoutError) as e:  # the timeout: ffmpeg's stdin is stuck
            raise decoder_error(e) from e

    async def run(self) -> FinalTranscript:
        """Decode and transcribe until the input ends; return the final transcript."""
        decoding = asyncio.create_task(self._decode())
        watchdog = asyncio.create_task(self._watch(decoding))
        try:
            await self._update_loop(decoding)
            await decoding  # raises the decoder's error, if it had one
            await self._turn(CloseReason.EOF)
            if self._turns is not None:
                self._turns.taker.end_of_input()
                await self._send_events()
            return self._policy.finish()
        finally:
            for task in (watchdog, decoding):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.aclose()

    async def _watch(self, decoding: asyncio.Task[None]) -> None:
        """Once the input has ended, the decoder has ``decode_timeout`` seconds to flush and
        finish; a hung ffmpeg (stopped, deadlocked) would otherwise hold the session forever."""
        await self._ended.wait()
        if self._decode_timeout is None:
            return
        _, pending = await asyncio.wait({decoding}, timeout=self._decode_timeout)
        if pending:
            self._decoder_stalled = True
            self._wake.set()

    async def _decode(self) -> None:
        """Read the decoder as fast as it yields, counting the audio at once (the edge's rate
        gate and the cost checks see it without waiting for voice-activity scoring), and hand
        the blocks in order to :meth:`_insert_all`; returns once every block is in the policy."""
        blocks: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        inserting = asyncio.create_task(self._insert_all(blocks))
        try:
            async for block in self._decoder:
                if inserting.done():  # it failed (it ends only on the None below otherwise)
                    inserting.result()
                self._check_proportion(len(block))
                room = self._max_samples - self._decoded_samples
                self._decoded_samples += min(room, len(block))
                self._heard.add(self._decoded_samples, self._scheduler.clock())
                blocks.put_nowait(block[:room])
                if room <= len(block):
                    self.limit_reached = True
                    await self.end_input()
                    break
            blocks.put_nowait(None)
            await inserting
        except DecodeError as e:
            if self._bytes_fed == 0 and self._input_ended:
                return  # eof before any audio: an empty final, as for raw formats
            raise decoder_error(e) from e
        except DECODER_ERRORS as e:
            raise decoder_error(e) from e
        finally:
            if not inserting.done():
                inserting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await inserting
            self._wake.set()

    async def _insert_all(self, blocks: asyncio.Queue[np.ndarray | None]) -> None:
        while (block := await blocks.get()) is not None:
            await self._insert(block)
            self._wake.set()

    def _check_proportion(self, new_samples: int) -> None:
        """:class:`DecodeError` when the audio decoded so far (with ``new_samples``) outgrows
        the bytes fed: ffmpeg is then killed by :meth:`run`'s end, however much it has left."""
        seconds = (self._decoded_samples + new_samples) / SR
        if seconds > audio_allowance(self._bytes_fed, self._min_input_bitrate):
            raise DecodeError(
                f"{self._bytes_fed} bytes decoded to over {seconds:.0f} s of audio, more than one second"
                f" per {self._min_input_bitrate / 8:g} bytes (a header that lies about its sample rate?)"
            )

    async def _insert(self, block: np.ndarray) -> None:
        """Score ``block`` for voice activity in a worker thread, then hand both to the policy
        here on the loop: the policy's audio and its speech flags change together, and only
        ever from the loop, so a window cut meanwhile sees a consistent state."""
        scored = await score_off_loop(self._policy.vad, block, self._vad_executor)
        self._policy.insert_audio(block, scored)
        self._policy.settle()  # a held closing pass commits, an utterance ends, the moment it may
        await self._send_events()  # (the turn-taking reads them before it judges the pause)
        if self._turns is not None and await self._turns.after_block(block, self._policy):
            self._wake.set()  # the turn-taking hurries the policy: a closing pass now
            await self._send_events()

    async def _send_events(self) -> None:
        """Hand the policy's queued events to ``emit`` (with the turn events they imply): taken
        under one lock, so the decoding task (speech started) and the update loop (transcripts,
        utterance ends) keep their order. The language an auto session was found to speak goes
        before the events of the window that found it."""
        async with self._emitting:
            events: list[Event] = [*self._detected, *self._policy.take_events()]
            self._detected = []
            if self._turns is not None:
                events = self._turns.observe(events, self._policy)
            for event in events:
                if isinstance(event, TranscriptChanged) and event.words:
                    self._observe_commits(event)
                await self._emit(event)

    def _observe_commits(self, event: TranscriptChanged) -> None:
        if self._observer is None:
            return
        now = self._scheduler.clock()
        for word in event.words:
            heard = self._heard.at(int(word.end * SR))
            if heard is not None:
                self._observer.observe_commit_latency(max(0.0, now - heard))

    async def _update_loop(self, decoding: asyncio.Task[None]) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._decoder_stalled:
                stalled = DecoderStalled(f"the audio decoder did not finish in {self._decode_timeout:g} s")
                raise decoder_error(stalled)
            if decoding.done():
                return
            if self._finalize:
                self._finalize = False
                self._policy.request_until = self._finalize_at  # later speech is the next utterance's
                await self._catch_up(decoding)
                await self._turn(CloseReason.FINALIZE)
                self._policy.request_until = None
                self._policy.finalized()  # after the utterance it ended, if any
                await self._send_events()
                continue
            await self._turn(None)  # a turn: nothing to do costs nothing

    async def _catch_up(self, decoding: asyncio.Task[None], limit: float = 1.0) -> None:
        """Wait (up to ``limit`` s) until the audio decoded when ``finalize`` came is scored and in
        the policy, so it commits all of it (audio still inside ffmpeg is not "heard" yet)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self._policy.total_samples < self._finalize_at and not decoding.done():
            if loop.time() >= deadline:
                return
            await asyncio.sleep(0.01)

    def _build(self, request: CloseReason | None) -> tuple[np.ndarray, DecodeOptions, Window] | None:
        """The window, cut when the model is free for it (not when the turn was queued), with
        the settings in force then: the plan carried out (:meth:`StreamingPolicy.next_window`)."""
        window = self._policy.next_window(request)
        if window is None:
            return None
        self._last_cut = self._scheduler.clock()
        config = self._config
        options = live_decode_options(window, config.language, self._context_seconds, config.hotwords(),
                                      task=config.task, model=config.model)  # fmt: skip
        return window.audio, options, window

    def _urgency(self, request: CloseReason | None) -> Urgency:
        """What this turn holds now, for the scheduler's order: read from the planner's one
        decision (:meth:`StreamingPolicy.plan`), never re-derived here. A turn queued before the
        input ended or ``finalize`` came stands between the client and its commit: it is forced
        to the front too (its build is cheap then, often no model call)."""
        step = self._policy.plan(request)
        since = self._heard.at(step.speech_from) if step.speech_from is not None else None
        forced = request is not None or self._input_ended or self._finalize
        return Urgency.of_turn(closes=step.closes, new_speech=step.new_speech, heard_at=since,
                               last_cut=self._last_cut, forced=forced)  # fmt: skip

    async def _turn(self, request: CloseReason | None) -> None:
        """One turn: a live update (``request`` None), or ``finalize`` / the end of input, which
        commit everything heard (a closing pass that missed speech is followed by a second)."""
        try:
            for _ in range(MAX_CLOSING_WINDOWS):
                done = await self._scheduler.transcribe_latest(
                    lambda: self._build(request), lambda: self._urgency(request)
                )
                if done is None:
                    break
                self._apply(*done)
                if request is None:
                    break
        finally:
            await self._send_events()

    def _apply(self, window: Window, result: Transcript) -> None:
        if self._observer is not None:
            self._observer.observe_lag(max(0.0, (self._decoded_samples - window.end) / SR))
        self._policy.apply(window, result)
        if (detected := detect_language(self._config, window, result)) is not None:
            self._config, event = detected  # language=auto: heard; every later window decodes in it
            self._detected.append(event)
        self._heard.forget_before(self._policy.total_samples - int(self._policy.window_seconds * SR))
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "session %s: window %.2f-%.2f%s heard %r; committed …%r tentative %r",
                self._id, window.offset, window.end / SR, " final" if window.final else "",
                result.text, self._policy.current().committed[-40:], self._policy.current().tentative,
            )  # fmt: skip
