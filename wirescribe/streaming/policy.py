"""The streaming policy of one live session: which audio the model sees, and what is committed.

Pure logic with no model, thread or socket inside, tested with a fake transcriber. It wires
the core's pieces together and executes what the planner decides::

    audio ─► VoiceActivity ─► Endpointer ─┐
                                          ├─► PlanState ─► planner.plan() ─► Plan
    model results ─► hearing ─► Agreement ┘                                  │
                                  │ committed words                          ▼
                                  ▼                            next_window() / settle() execute it
                         UtteranceLedger ─► events, final transcript

* :meth:`StreamingPolicy.plan`, read-only, is what the scheduler's order reads; ``next_window``
  carries it out (the steps without a model, then the window for one), ``settle`` only the
  former (whenever audio arrives), ``apply`` folds a model result in.
* Only the *uncommitted window* is transcribed, with committed text before it as the prompt;
  refreshes commit what two successive hypotheses agree on (:class:`Agreement`).
* A pause ends the utterance: its speech is decoded once more the strong way (the closing pass)
  and committed whole. **No speech is ever taken as committed unless words were committed for
  it**: a closing pass that stopped before the end of its speech, or that only echoed the
  committed text, is followed by a second one over what it missed (:mod:`hearing`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from wirescribe.asr.types import Transcript, Word
from wirescribe.audio.buffer import GrowableBuffer
from wirescribe.audio.vad import Scored, VoiceActivity
from wirescribe.streaming import hearing
from wirescribe.streaming.agreement import Agreement, after_committed, not_said_before
from wirescribe.streaming.endpointer import Endpointer
from wirescribe.streaming.events import CloseReason, Event
from wirescribe.streaming.ledger import UtteranceLedger, prompt_before, word_end_after
from wirescribe.streaming.planner import WINDOW_KINDS, Plan, PlanState, Step, TurnHint, plan
from wirescribe.streaming.window import SR, FinalTranscript, StreamingOptions, Update, Window, WindowKind

DEFAULT_OPTIONS = StreamingOptions()
MAX_RETRIES = 4  # further closing passes over speech the one before did not hear
MAX_CLOSING_WINDOWS = MAX_RETRIES + 3  # at finalize/eof: the passes, and speech that came meanwhile
MIN_UNCOVERED = 0.25  # seconds of speech a closing pass must not leave unheard
LIVE_UNCOVERED = 1.0  # ... and a live refresh (whose last words may be dropped as unsure)
MAX_HANGOVER = 0.15  # seconds the pause may count from before the detector's speech end

__all__ = ["SR", "FinalTranscript", "StreamingOptions", "StreamingPolicy", "Update", "Window"]


@dataclass(frozen=True)
class _Held:
    """A closing pass decoded before its pause was complete: its words wait for the planner."""

    window: Window
    words: list[Word]  # after the committed ones
    speech_end: int  # where the speech in its window ended (samples)


class StreamingPolicy:
    """Committed vs tentative text for one session. Times are seconds of session audio."""

    def __init__(
        self, vad: VoiceActivity, options: StreamingOptions = DEFAULT_OPTIONS, language: str | None = None
    ) -> None:
        self._opts = options
        self._audio = GrowableBuffer(np.float32)  # the window's audio, by absolute sample index
        self._end = Endpointer(vad)
        self._agreement = Agreement(options.settle)
        self._ledger = UtteranceLedger(language)
        self._last_window_end = 0
        self._commit_sample = 0  # absolute sample up to which the audio has been committed
        self._tentative: list[Word] = []
        self._held: _Held | None = None
        self._retry: bool | None = None  # a closing pass left speech unheard: retry (True: no prompt)
        self._retries = 0  # closing passes retried in a row
        self._reported = 0  # committed words already carried by a TranscriptChanged
        self._emitted = ("", "")  # the (committed, tentative) text last queued
        self._finalize_closed: int | None = None  # the utterance the pending finalize ended
        self.turn_hint = TurnHint.NONE  # set by the session's turn-taking (turn_taking.py)
        self.request_until: int | None = None  # a finalize commits the audio up to here only
        self.early_words = 0  # words committed by agreement that a closing pass re-read
        self.early_disagreed = 0  # ... and heard differently (or not at all)
        self.interrupted_closings = 0  # held closing passes the speech resumed over (words kept)

    @property
    def vad(self) -> VoiceActivity:
        """The session's voice activity, for scoring audio off the event loop (see insert_audio)."""
        return self._end.vad

    @property
    def total_samples(self) -> int:
        return self._audio.end

    @property
    def audio_seconds(self) -> float:
        return self.total_samples / SR

    @property
    def _fresh(self) -> int:  # the first sample kept that is not committed yet
        return max(self._audio.start, self._commit_sample)

    @property
    def window_seconds(self) -> float:
        return len(self._audio) / SR

    @property
    def pause(self) -> float:
        """Seconds of silence that end an utterance (the session's endpointing)."""
        return self._opts.pause

    @pause.setter
    def pause(self, seconds: float) -> None:
        self._opts = replace(self._opts, pause=seconds)

    def last_speech_end(self) -> int | None:
        """Where the last speech heard (any length) ended, in the audio kept (None: none)."""
        return self._end.speech_end(self._audio.start, self.total_samples)

    def take_events(self) -> list[Event]:
        """What happened since the last call, in order (:mod:`wirescribe.streaming.events`)."""
        return self._ledger.take()

    def current(self) -> Update:
        committed, shown = self._ledger.text, tuple(self._tentative)
        tentative = self._ledger.join(self._tentative, after=committed)
        return Update(committed, tentative if committed else tentative.lstrip(), self.audio_seconds, shown)

    def finish(self) -> FinalTranscript:
        """Everything committed, one segment per utterance (after the last window)."""
        return self._ledger.final(self.audio_seconds)

    def insert_audio(self, block: np.ndarray, scored: Scored | None = None) -> None:
        """Append decoded 16 kHz audio. ``scored``: the voice activity's scores for this very
        block, computed off the event loop (``vad.score(vad.frame(block))``); without it the
        block is scored here. New speech opens an utterance."""
        self._audio.append(block)
        if scored is None:
            self.vad.push(block)
        else:
            self.vad.accept(scored)
        self._open_if_speech()

    def _open_if_speech(self) -> None:
        """Open an utterance at new speech (looked for from where the last one closed)."""
        if self._ledger.open is None and (onset := self._end.onset(self.total_samples)) is not None:
            self._ledger.start(onset / SR)

    def plan(self, request: CloseReason | None = None) -> Plan:
        """What the session does next (read-only): the planner's one decision."""
        return plan(self._state(request), self._opts)

    def _state(self, request: CloseReason | None) -> PlanState:
        total, fresh, opened, held = self.total_samples, self._fresh, self._ledger.open, self._held
        if request is not None and self.request_until is not None:  # a finalize: what it came after
            total = min(total, self.request_until)
            opened = opened if opened is not None and opened.onset * SR < total else None
        return PlanState(
            total=total,
            last_window_end=self._last_window_end,
            window_start=self._audio.start,
            uncommitted_speech=self._end.speech(fresh, total),
            new_speech=self._end.resumed(self._last_window_end, total) is not None,
            has_hypothesis=bool(self._agreement.hypothesis),
            utterance_open=opened is not None,
            open_speech_end=self._end.speech_end(int(opened.onset * SR), total) if opened else None,
            held_speech_end=held.speech_end if held else None,
            resumed_at=self._end.resumed(held.window.end, total) if held else None,
            request=request,
            sentence_end=hearing.ends_sentence(self._tentative or self._ledger.open_words()),
            hint=self.turn_hint,
        )

    def next_window(self, request: CloseReason | None = None) -> Window | None:
        """Carry out the plan: the steps without a model call now; the window for the model when
        the plan needs one (None: nothing to transcribe). ``request``: FINALIZE or EOF, commit
        everything heard (call again until None: a closing pass may need a second one)."""
        step = self._advance(request)
        if step.needs_model:
            return self._cut_window(step)
        if step.step is Step.IDLE:
            self._tidy(step)
        return None

    def drain(self, request: CloseReason, transcribe: Callable[[Window], Transcript]) -> None:
        """Commit everything heard, with the model at hand (tests, benchmarks)."""
        for _ in range(MAX_CLOSING_WINDOWS):
            if (window := self.next_window(request)) is None:
                break
            self.apply(window, transcribe(window))
        if request is CloseReason.FINALIZE:
            self.finalized()

    def settle(self) -> Update | None:
        """Take the steps that need no model: whenever audio arrives. The update, if any."""
        before = self.current()
        self._advance(None)
        now = self.current()
        return now if now != before else None

    def _advance(self, request: CloseReason | None) -> Plan:
        """Take the steps that need no model (a held pass committed, an utterance ended) until
        the plan asks for the model or for nothing; that plan."""
        step = self.plan(request)
        for _ in range(3):
            if step.needs_model or step.step is Step.IDLE:
                break
            self._execute(step)
            step = self.plan(request)
        return step

    def _execute(self, step: Plan) -> None:
        assert step.reason is not None
        if step.step is Step.COMMIT_HELD:
            held, self._held = self._held, None
            assert held is not None
            self._commit(held.words, held.window.end)
            self._tentative = []
            if step.ends_utterance:
                self._close(step.reason, held.window.end)
            else:
                self.interrupted_closings += 1
            self._changed()
        elif step.step is Step.END_QUIET:
            self._tentative = []
            self._agreement.clear()
            self._close(step.reason, step.end)

    def _tidy(self, step: Plan) -> None:
        """Nothing to do and no speech uncommitted: no tentative text, no long silence kept."""
        if step.speech_from is not None:
            return
        total, fresh = self.total_samples, self._fresh
        self._agreement.clear()
        self._tentative = []
        self._changed()
        if total - fresh > self._opts.max_gap * SR:
            self._forget_before(max(self._audio.start, total - int(self._opts.lead_in * SR)))

    def _cut_window(self, step: Plan) -> Window:
        total, fresh = self.total_samples, self._fresh
        onset = step.speech_from  # of the uncommitted speech, as the plan saw it
        if onset is not None and (onset - fresh > self._opts.max_gap * SR or fresh <= self._audio.start):
            self._forget_before(max(self._audio.start, onset - int(self._opts.lead_in * SR)))  # no context
        self._last_window_end = total
        kind = WINDOW_KINDS[step.step]
        start = self._audio.start
        retry, self._retry = (self._retry, None) if kind is WindowKind.CLOSE else (None, None)
        if kind is WindowKind.CLOSE:
            start = self._closing_start(step.end, retry is not None)
        prompt = "" if retry else self._prompt(start)
        return Window(self._audio.view(start, step.end), start, prompt, kind, step.reason, retry is not None)

    def _closing_start(self, end: int, retry: bool) -> int:
        """The closing pass hears its utterance alone (the committed text before it is the
        prompt), as an offline pass would. A second pass (``retry``) hears only what follows the
        last committed word: a word heard again before a pause could make it stop there again."""
        opened = self._ledger.open
        start = self._audio.start
        if opened is not None:
            start = int((opened.onset - self._opts.lead_in) * SR)
        if retry and self._ledger.words:
            start = max(start, int(self._ledger.words[-1].end * SR))
        return min(max(start, self._audio.start), end - 1)

    def _prompt(self, start: int) -> str:
        """Committed text that lies before the window (whole words): context for the model."""
        return prompt_before(self._ledger, start / SR + 0.05, self._opts.prompt_chars)

    def apply(self, window: Window, result: Transcript) -> Update | None:
        """Fold the model's result for ``window`` in; an :class:`Update` if the text changed."""
        before = self.current()
        heard = hearing.heard_words(self.vad, window, result)
        if window.closes_utterance:  # how often committing early costs accuracy
            re_read, disagreed = hearing.early_disagreements(self._ledger.open_words(), heard, window)
            self.early_words += re_read
            self.early_disagreed += disagreed
        words, anchored = after_committed(self._ledger.words[-3:], heard, window.offset)
        if not window.final:
            words = words if anchored else not_said_before(words, self._ledger.words[-30:])
            speech_end = min(window.end, self._speech_end(window)) / SR
            trusted = anchored or window.seconds > self._opts.keep_context + 6
            agreed = self._agreement.agree(words, trusted, speech_end)
            self._commit(agreed, int(agreed[-1].end * SR) if agreed else self._commit_sample)
            shown, self._tentative = self._tentative, self._agreement.hypothesis
            heard_to = hearing.stretched_end(heard) or (heard[-1].end if heard else window.offset)
            if hearing.uncovered_speech(self.vad, heard, window, LIVE_UNCOVERED, heard_to):
                # The model stopped at a pause before the new speech (Whisper without timestamps,
                # misled by the committed audio kept as context): what the client saw stays, and
                # inside an utterance the next windows start past the committed audio (not in a
                # new one: after a long pause two greedy passes agreed on "How do you marry").
                self._tentative = self._tentative + [w for w in shown if w.start >= heard_to]
                if self._ledger.open_words():
                    self._forget_before(min(self._commit_sample, int(self._ledger.words[-1].end * SR)))
        else:
            self._apply_final(window, heard, words, anchored)
        self._trim()
        self._changed()
        self.settle()
        now = self.current()
        return now if now != before else None

    def _apply_final(self, window: Window, heard: list[Word], words: list[Word], anchored: bool) -> None:
        """A closing pass or a cut, committed whole, unless it missed speech (then what it
        heard commits, and a second closing pass hears the rest)."""
        hypothesis = self._agreement.hypothesis
        if not anchored and hypothesis:
            # This pass may have skipped words at its start: keep what the last hypothesis heard
            # there, and take from this one only what comes after it.
            words = hypothesis + after_committed(hypothesis[-3:], words, window.offset)[0]
        echo = bool(window.prompt) and hearing.repeats_committed(heard, self._ledger.words, window)
        # Did the live passes hear on after this pass's last word (not when they only heard what
        # is committed already), or is that word stretched over what the pass did not decode?
        known = self._ledger.open_words()[-12:] + hypothesis
        short = hearing.stopped_short(heard, known if hypothesis else [])
        if short is not None and words and words[-1] is heard[-1]:  # the next pass starts after it
            words = [*words[:-1], replace(words[-1], end=max(words[-1].start, short))]
        missed = echo or hearing.uncovered_speech(self.vad, heard, window, MIN_UNCOVERED, short)
        self._agreement.clear()
        self._tentative = []
        progress = bool(words) and not echo
        again = self._retries < MAX_RETRIES and (progress or not window.retry)
        if missed and window.kind is WindowKind.CLOSE and again:
            # Heard again from where this pass stopped, for as long as each pass hears more.
            kept = [] if echo else words
            self._commit(kept, int(kept[-1].end * SR) if kept else self._commit_sample)
            self._retry = echo  # an echo of the prompt is heard again without one
            self._retries += 1
            return
        self._retries = 0
        if window.kind is WindowKind.CUT:
            self._commit(words, int(words[-1].end * SR) if missed and words else window.end)
        elif window.reason is CloseReason.PAUSE:
            self._held = _Held(window, words, self._pause_from(window, words))
            self._tentative = words  # shown until the planner commits it
        else:
            self._commit(words, window.end)
            assert window.reason is not None
            self._close(window.reason, window.end)

    def _commit(self, words: list[Word], through: int) -> None:
        """Commit ``words``; the audio up to sample ``through`` counts as committed."""
        self._ledger.commit(words, self.audio_seconds)
        self._commit_sample = max(self._commit_sample, through)

    def _close(self, reason: CloseReason, at: int) -> None:
        self._changed()
        closed = self._ledger.close(reason, at / SR)
        self._commit_sample = max(self._commit_sample, min(at, self.total_samples))
        if closed is None:
            return
        if reason is CloseReason.FINALIZE:
            self._finalize_closed = closed
        self._end.closed_at(at)
        self._open_if_speech()  # the next one may have begun already

    def finalized(self) -> None:
        """A ``finalize`` has been carried out: its ``Finalized``, naming the utterance it ended."""
        closed, self._finalize_closed = self._finalize_closed, None
        self._ledger.finalized(self.audio_seconds, closed)

    def _changed(self) -> None:
        """Queue the transcript if it changed since the last one queued (idempotent): before an
        utterance's end, so the words it closes with come first."""
        now = self.current()
        if (now.committed, now.tentative) == self._emitted:
            return
        self._emitted = (now.committed, now.tentative)
        reported = self._reported
        self._reported = len(self._ledger.words)
        self._ledger.changed(now, self._ledger.words[reported:])

    def _pause_from(self, window: Window, words: list[Word]) -> int:
        """Where an utterance's pause begins: the end of its speech, or of its last word as the
        closing pass aligned it when that is a little earlier (the detector's speech runs on
        some 60-90 ms after the last word: endpointing is counted from the word)."""
        end = self._speech_end(window)
        if not words:
            return end
        return max(end - int(MAX_HANGOVER * SR), min(end, int((words[-1].end + 0.03) * SR)))

    def _speech_end(self, window: Window) -> int:
        """The end of the last speech in ``window`` (its end when none is known)."""
        return self._end.speech_end(window.start, window.end) or window.end

    def _trim(self) -> None:
        """Keep at most ``keep_context`` s of committed audio before the uncommitted part: the
        model hears how the speech led up to it, and the window stays short. Cut at the end of
        a committed word, never inside one."""
        limit = self._commit_sample / SR - self._opts.keep_context
        cut = word_end_after(self._ledger, limit) if limit > self._audio.start / SR else None
        if cut is not None and cut * SR <= self._commit_sample:
            self._forget_before(int(cut * SR))

    def _forget_before(self, sample: int) -> None:
        if sample > self._audio.start:
            self._audio.discard_before(sample)
            self._end.forget_before(sample)
