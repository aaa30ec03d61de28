"""The WebSocket edge of a live session, for every wire protocol (the protocol is a :class:`Dialect`).

Per connection: one receive loop here (the only socket reader), one session task
(:class:`~wirescribe.streaming.session.LiveSession`) that decodes, transcribes and emits events;
the connection's ``finally`` cancels and awaits both. Authorisation, the session caps, the idle
timeout, the audio rate limits, the wall-clock limit, shutdown, metrics and logging are the
same whatever the client speaks. A dialect only translates: its client's connection into a
:class:`SessionSetup`, its client's text (and binary) frames into :class:`Action`s, and the
session's events, final transcript and errors into its messages.

Native ``/ws/transcribe`` is :class:`wirescribe.api.ws.NativeDialect`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from wirescribe import logs
from wirescribe.api import protocol, security, subprotocols
from wirescribe.api.actions import Action, Audio, Configure, End, Finalize, KeepAlive, Message, Reply
from wirescribe.api.lifecycle import SHUTDOWN, WALL_LIMIT, LiveConnection, release_free_memory
from wirescribe.api.limits import AudioFloor, AudioFloorWatch, AudioRate, AudioRateGate
from wirescribe.api.metrics import Metrics
from wirescribe.api.outbox import Outbox
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.security import Grant
from wirescribe.api.state import AppState
from wirescribe.asr.scheduler import SchedulerClosed
from wirescribe.audio.decode import (
    DecodeError,
    DecoderFailure,
    RawStreamDecoder,
    StreamDecoder,
    open_decoder,
)
from wirescribe.audio.vad import VadOptions, VoiceActivity
from wirescribe.settings import Settings
from wirescribe.streaming.errors import SessionError, decoder_error
from wirescribe.streaming.events import Event, SessionConfig
from wirescribe.streaming.policy import FinalTranscript, StreamingPolicy
from wirescribe.streaming.session import LiveSession

log = logging.getLogger(__name__)

__all__ = [  # the actions are re-exported: a dialect needs them with the edge
    "Action", "Audio", "Configure", "Dialect", "End", "Finalize", "KeepAlive", "Message", "Reply",
    "SessionSetup", "serve",
]  # fmt: skip


@dataclass(frozen=True)
class SessionSetup:
    """What a dialect read from its client's connection: the audio it will send, the settings."""

    format: str  # a decoder format: "auto", "pcm16", "f32", ...
    sample_rate: int
    config: SessionConfig
    vad: VadOptions = field(default_factory=VadOptions)  # voice activity (a client's threshold)


class Dialect:
    """A wire protocol over the shared session. Subclasses override what differs; one instance
    per connection, so it may keep the connection's own state (flags, ids)."""

    name = "native"

    def render_error(self, error: ProtocolError) -> Message:
        return error.to_message()

    def authorize(self, websocket: WebSocket, state: AppState) -> Grant | None:
        """Refuse (``ProtocolError`` ``unauthorized``) a client without the right credentials."""
        return security.check_websocket(websocket, state.settings, state.tokens)

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        """The session's audio format and settings from the connection; ``bad_request`` if bad."""
        raise NotImplementedError

    def greeting(self, session_id: str, state: AppState, setup: SessionSetup) -> Sequence[Message]:
        """What the client gets once the session is open."""
        return ()

    def event(self, event: Event) -> Sequence[Message]:
        return ()

    def binary(self, data: bytes) -> Sequence[Action]:
        return (Audio(data),)

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[Action]:
        """A text frame's actions; ``ProtocolError`` for one not understood (reported; the session
        goes on unless the error has a close code)."""
        raise NotImplementedError

    def configured(self, config: SessionConfig) -> Sequence[Message]:
        return ()

    def final(self, final: FinalTranscript) -> Sequence[Message]:
        return ()

    def held_audio(self) -> bytes:
        """Audio the dialect still holds (its own resampler's last block): fed before the input ends."""
        return b""

    def vad_options(self) -> VadOptions:
        """The voice-activity options the client's settings ask for now; read after each text
        frame, and applied to the frames decided from then on when they change."""
        return VadOptions()


class _AudioMeter:
    """Counts a session's decoded audio into the metrics as it grows (not only at its end)."""

    def __init__(self, session: LiveSession, metrics: Metrics) -> None:
        self._session = session
        self._metrics = metrics
        self._counted = 0.0

    @property
    def counted(self) -> float:
        return self._counted

    def update(self) -> None:
        now = self._session.decoded_seconds
        self._metrics.count_audio(now - self._counted, "live")
        self._counted = now


@dataclass
class _Connection:
    """One connection's pieces, for the loops below."""

    websocket: WebSocket
    session: LiveSession
    live: LiveConnection
    settings: Settings
    outbox: Outbox
    meter: _AudioMeter
    dialect: Dialect
    languages: Sequence[str]
    voice: VoiceActivity
    decoder: StreamDecoder

    async def send_all(self, messages: Sequence[Message]) -> None:
        for message in messages:
            await self.outbox.send(message)


async def serve(websocket: WebSocket, state: AppState, dialect: Dialect) -> None:
    """One live session over ``websocket`` in ``dialect``, from accept to close."""
    await websocket.accept(subprotocol=subprotocols.selected(dialect.name, websocket.scope))
    settings = state.settings
    session_id = uuid.uuid4().hex[:12]
    logs.session_id.set(session_id)  # this task and the ones it starts log with the id
    outbox = Outbox(
        websocket, settings.send_timeout, session_id,
        on_error=state.metrics.count_error, render_error=dialect.render_error,
    )  # fmt: skip
    try:
        grant = dialect.authorize(websocket, state)  # before anything else
        setup = dialect.setup(websocket, state)
        if state.draining:
            raise ProtocolError("busy", "the server is shutting down")
        if (refusal := state.refusal()) is not None:  # the session limit, fixed or measured
            raise ProtocolError("busy", refusal)
        client = _counted_address(websocket, settings, grant)
        if state.client_at_capacity(client):
            limit = settings.max_sessions_per_client
            raise ProtocolError("busy", f"this address has {limit} sessions open already (the limit)")
        security.spend_websocket(state.tokens, grant)  # last: a refused session does not use one up
    except ProtocolError as e:
        await outbox.fail(e)
        return
    connection = LiveConnection(session_id, client)
    state.sessions[session_id] = connection
    state.metrics.sessions_opened.inc()
    log.info("session opened (%s): format %s, language %s", dialect.name, setup.format,
             setup.config.language or "auto")  # fmt: skip
    meter: _AudioMeter | None = None

    async def emit(event: Event) -> None:
        for message in dialect.event(event):
            await outbox.send(message)

    try:
        voice = VoiceActivity(state.vad_probability, setup.vad)
        policy = StreamingPolicy(voice, language=setup.config.language)
        decoder = await open_decoder(setup.format, setup.sample_rate)
        # From here the session owns the decoder: leaving the block reaps it, however it is left.
        async with LiveSession(
            decoder, policy, state.scheduler, emit,
            config=setup.config, max_seconds=settings.max_session_seconds,
            context_seconds=settings.encoder_context if settings.encoder_context < 30 else None,
            decode_timeout=settings.decode_timeout, session_id=session_id,
            min_input_bitrate=settings.min_input_bitrate if setup.format == "auto" else 0.0,
            observer=state.metrics, turn_scorer=state.turn_scorer,
        ) as session:  # fmt: skip
            meter = _AudioMeter(session, state.metrics)
            conn = _Connection(websocket, session, connection, settings, outbox, meter, dialect,
                               state.transcriber.supported_languages, voice, decoder)  # fmt: skip
            await conn.send_all(dialect.greeting(session_id, state, setup))
            await _serve(conn)
            state.metrics.count_session(policy)
    except WebSocketDisconnect:
        log.info("client went away")
    except SessionError as e:  # the session's (a decoder's), or the protocol's (a ProtocolError)
        await outbox.fail(ProtocolError.of(e))
    except (DecodeError, DecoderFailure) as e:  # open_decoder: ffmpeg would not start
        await outbox.fail(ProtocolError.of(decoder_error(e)))
    except SchedulerClosed as e:
        await outbox.fail(ProtocolError("internal", str(e)))
    finally:
        if meter is not None:
            meter.update()
        state.sessions.pop(session_id, None)
        log.info("session closed after %.1f s of audio", meter.counted if meter is not None else 0.0)
        connection.mark_done()
        if not state.sessions:
            await release_free_memory()


def _counted_address(websocket: WebSocket, settings: Settings, grant: Grant | None) -> str | None:
    """The address ``STT_MAX_SESSIONS_PER_CLIENT`` counts a session against: the peer's, unless
    it presented ``STT_TOKEN`` itself — a backend, one address for all its users, held by the
    global limit only (temporary tokens and a tokenless server's clients are counted)."""
    if settings.token is not None and grant is None:  # authorized, and not by a temporary token
        return None
    return websocket.client.host if websocket.client else None


async def _serve(conn: _Connection) -> None:
    """Run the receive loop beside the session task until one ends (or the server stops the
    session: shutdown, wall-clock limit); then finish both and send the final."""
    settings, outbox, session = conn.settings, conn.outbox, conn.session
    stopping = asyncio.Event()  # the receiver's own stop check: wait_for (3.11) may swallow a cancel
    receiver = asyncio.create_task(_receive(conn, stopping))
    worker = asyncio.create_task(session.run())
    stopper = asyncio.create_task(conn.live.stop_requested())
    floor = asyncio.create_task(_watch_audio_floor(session, settings))
    tasks = (receiver, worker, stopper, floor)
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=settings.max_session_wall_seconds or None, return_when=asyncio.FIRST_COMPLETED
        )
        close_code = protocol.NORMAL
        if worker in done:  # after eof or at the audio limit (the receiver still watches the socket)
            pass
        elif receiver in done:
            if receiver.result() == "idle":  # result() raises: gone, bad frame
                await outbox.report(ProtocolError("timeout", f"no audio for {settings.idle_timeout:g} s"))
        elif floor in done:  # a trickle: frames arrive, audio does not
            await outbox.report(ProtocolError("timeout", floor.result()))
            await _stop_receiving(receiver, stopping)
        else:  # stopped by the server (shutdown, wall clock): audio already received still counts
            reason = stopper.result() if stopper in done else WALL_LIMIT
            log.info("ending (%s)", reason)
            close_code = protocol.GOING_AWAY if reason == SHUTDOWN else protocol.NORMAL
            await _stop_receiving(receiver, stopping)
        await _end_input(conn)
        final: FinalTranscript = await worker
        await conn.send_all(conn.dialect.final(final))
        await outbox.close(close_code)
    finally:
        stopping.set()
        await _cancel_all(tasks)


async def _end_input(conn: _Connection) -> None:
    """End the session's input, after the audio its dialect still holds."""
    if held := conn.dialect.held_audio():
        await conn.session.feed(held)
    await conn.session.end_input()


async def _stop_receiving(receiver: asyncio.Task[str], stopping: asyncio.Event) -> None:
    stopping.set()
    receiver.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiver


async def _watch_audio_floor(session: LiveSession, settings: Settings) -> str:
    """Returns (the message for the client) once the session falls below ``STT_MIN_AUDIO_RATE``
    with ``STT_AUDIO_RATE_WINDOW`` seconds of slack (:class:`AudioFloor`); never when off. The
    credit starts at the client's first byte (before it, the idle timeout applies)."""
    floor = AudioFloor(settings.min_audio_rate, settings.audio_rate_window)
    if floor.rate <= 0:
        await asyncio.Event().wait()  # no floor: wait to be cancelled with the session
    loop = asyncio.get_running_loop()
    tick = floor.tick
    while not session.bytes_fed:
        await asyncio.sleep(tick)
    watch = AudioFloorWatch(floor, loop.time())
    while True:
        await asyncio.sleep(tick)
        short = watch.shortfall(session.decoded_seconds, loop.time())
        if short is not None:
            log.info("ending: %.1f s of audio in the last %.0f s", short.audio, short.seconds)
            return short.message


async def _cancel_all(tasks: tuple[asyncio.Task[Any], ...]) -> None:
    """Cancel ``tasks`` and wait for them. Cancels again while one runs on: Python 3.11's
    ``wait_for`` drops a cancellation that arrives as its awaitable completes."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the session's outcome was handled already


async def _receive(conn: _Connection, stopping: asyncio.Event) -> str:
    """Turn client frames into actions until the input ends; the only socket reader. Returns
    "idle" when no frame came for the idle timeout. After the end of input it only watches for
    the client going away (raising :class:`WebSocketDisconnect`), so a vanished client's final
    is not computed.

    Audio beyond the rate limit is not refused but waited for: while the gate says so, nothing
    is read from the socket, so the client's sends block (TCP backpressure)."""
    settings, session = conn.settings, conn.session
    loop = asyncio.get_running_loop()
    gate = AudioRateGate(AudioRate(settings.max_audio_rate, settings.audio_burst_seconds), loop.time())
    ended = False
    while not stopping.is_set():
        try:
            message = await asyncio.wait_for(
                conn.websocket.receive(), None if ended else settings.idle_timeout or None
            )
        except asyncio.TimeoutError:
            return "idle"
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if ended:
            continue  # frames after the end of input are ignored
        data = message.get("bytes")
        try:
            if data is not None:
                if len(data) > settings.max_frame_bytes:
                    raise ProtocolError(
                        "too_large",
                        f"frame of {len(data)} bytes is over the limit of {settings.max_frame_bytes}",
                    )
                actions = conn.dialect.binary(data)
            else:
                actions = conn.dialect.control(message.get("text") or "", session.config, conn.languages)
                vad = conn.dialect.vad_options()
                if vad != conn.voice.options:
                    conn.voice.retune(vad)
                    log.info("voice activity: threshold %g", vad.threshold)
        except ProtocolError as e:
            if e.close is not None:
                raise
            await conn.outbox.report(e)
            continue
        for action in actions:
            ended = await _act(conn, action, gate, loop) or ended
    return "stopped"


async def _act(
    conn: _Connection, action: Action, gate: AudioRateGate, loop: asyncio.AbstractEventLoop
) -> bool:
    """Carry out one client action; True once the input has ended."""
    session = conn.session
    if isinstance(action, Audio):
        await session.feed(action.data)
        conn.meter.update()
        pause = gate.delay(session.decoded_seconds, loop.time())
        if pause > 0:
            await asyncio.sleep(pause)
    elif isinstance(action, End):
        await _end_input(conn)
        return True
    elif isinstance(action, Finalize):
        if isinstance(conn.decoder, RawStreamDecoder):
            conn.decoder.drain()  # a finalize hears it all: the resampler's held-back block too
        session.finalize()
    elif isinstance(action, Configure):
        session.configure(action.config)
        c = action.config
        log.info("configured: language %s, %d keyterm(s), endpointing %d ms",
                 c.language or "auto", len(c.keyterms), c.endpointing_ms)  # fmt: skip
        await conn.send_all(conn.dialect.configured(action.config))
    elif isinstance(action, Reply):
        await conn.send_all(action.messages)
    return False  # KeepAlive: the frame itself restarted the idle timer
