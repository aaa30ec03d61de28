"""The planner: one pure function from a session's state to its next step.

Every decision about what a live session does next is made here, once: the policy executes the
plan (:meth:`~wirescribe.streaming.policy.StreamingPolicy.next_window`), and the scheduler's
order reads the very same plan (:mod:`wirescribe.streaming.urgency`), so no copy of the
decision tree exists anywhere else. The state is a frozen snapshot (:class:`PlanState`) built
by the policy; the plan is a small sum type (:class:`Plan` with a :class:`Step`).

The steps, in the order they are considered:

1. A closing pass is **held** (decoded before its pause was complete): commit it once the pause
   is complete, when the speech resumes (then it ends its utterance only if the gap reached the
   endpointing), or at ``finalize``/end of input — :attr:`Step.COMMIT_HELD`.
2. No uncommitted speech: an open utterance whose speech is a pause behind ends quietly
   (:attr:`Step.END_QUIET`), as it does at ``finalize`` or the end of input.
3. ``finalize`` or the end of input: a closing pass over all uncommitted speech
   (:attr:`Step.CLOSE`); if its pause was complete already, the pause's closing pass.
4. The speech has been silent for the closing silence, or (with turn-taking) for a moment
   when the turn is likely over: the closing pass (:attr:`Step.CLOSE`). A turn that is over
   (:attr:`TurnHint.OVER`) ends its utterance without waiting for the endpointing.
5. Otherwise a live refresh of the window when enough new audio came (:attr:`Step.REFRESH`),
   or a cut when the window grew too long (:attr:`Step.CUT`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.window import SR, StreamingOptions, WindowKind

MIN_EARLY_SILENCE = 0.35  # seconds: the earliest a closing pass starts (see closing_silence)
MID_SENTENCE_SILENCE = 0.5  # ... and when the words so far do not end a sentence
TURN_PROBE = 0.1  # seconds of silence after which a turn's pause is judged (turn_taking.py)


class TurnHint(Enum):
    """What the turn-taking says of the open utterance (``turn_taking.py``; NONE without it)."""

    NONE = "none"
    JUDGING = "judging"  # the model is scoring the pause (a few ms): no live refresh meanwhile
    EAGER = "eager"  # the turn is likely over: its closing pass starts now (held, as any)
    OVER = "over"  # the turn is over: the utterance ends now, not at the endpointing


class Step(Enum):
    IDLE = "idle"  # nothing to do now
    REFRESH = "refresh"  # a live update of the uncommitted window (tentative text, agreement)
    CUT = "cut"  # the window grew too long: decoded once and committed whole, utterance goes on
    CLOSE = "close"  # the closing pass: the utterance's audio decoded the strong way, committed whole
    COMMIT_HELD = "commit_held"  # the held closing pass is committed (no model call)
    END_QUIET = "end_quiet"  # the open utterance ends with what it has (no model call)


@dataclass(frozen=True)
class Plan:
    step: Step
    reason: CloseReason | None = None  # why the utterance closes (CLOSE, END_QUIET, COMMIT_HELD)
    end: int = 0  # absolute sample where the model's window ends (REFRESH, CUT, CLOSE; END_QUIET: the close)
    ends_utterance: bool = False  # COMMIT_HELD: the utterance ends (False: the speech went on)
    # What the turn holds, for the scheduler's order (streaming/urgency.py):
    speech_from: int | None = None  # first sample of the speech not committed yet (None: none)
    new_speech: bool = False  # speech was heard after the last window's end

    @property
    def needs_model(self) -> bool:
        return self.step in (Step.REFRESH, Step.CUT, Step.CLOSE)

    @property
    def closes(self) -> bool:
        """The step ends an utterance (or commits whole): it goes first in the scheduler's order."""
        return self.step in (Step.CLOSE, Step.COMMIT_HELD, Step.END_QUIET)


IDLE = Plan(Step.IDLE)
WINDOW_KINDS = {Step.REFRESH: WindowKind.REFRESH, Step.CUT: WindowKind.CUT, Step.CLOSE: WindowKind.CLOSE}


@dataclass(frozen=True)
class PlanState:
    """What the planner reads: samples are absolute indices of the session's audio."""

    total: int  # audio received and scored so far
    last_window_end: int  # where the last window cut ended
    window_start: int  # first sample kept in the window's buffer
    uncommitted_speech: tuple[int, int] | None  # (onset, end) of speech not committed yet
    new_speech: bool  # speech after the last window's end
    has_hypothesis: bool  # the last live hypothesis still stands for the uncommitted speech
    utterance_open: bool
    open_speech_end: int | None  # the open utterance's last speech end (None: none open/known)
    held_speech_end: int | None  # a held closing pass: where its speech ended (None: none held)
    resumed_at: int | None  # a held closing pass: onset of speech after its window (None: none)
    request: CloseReason | None = None  # FINALIZE or EOF: commit everything now
    sentence_end: bool = True  # the words heard so far end a sentence (. ? !)
    hint: TurnHint = TurnHint.NONE


def closing_silence(options: StreamingOptions, sentence_end: bool = True) -> float:
    """Seconds of silence after which the closing pass starts: ``early_close`` before the pause
    is complete, but never before 0.35 s of it (the window ends ``tail_pad`` after the speech and
    must end before the next words however soon they come), nor after it. When the words heard
    so far do not end a sentence the speaker is likelier to go on: not before 0.5 s (a pass
    started in a pause inside a sentence hears half of it, and what it heard is committed when
    the speech resumes: "Had he married a more amiable woman," became "How do you marry ...")."""
    pause = options.pause
    if sentence_end:
        return max(pause - options.early_close, min(pause, MIN_EARLY_SILENCE))
    return max(pause - options.early_close, min(pause, MID_SENTENCE_SILENCE))


def plan(state: PlanState, options: StreamingOptions) -> Plan:
    """The session's next step (see the module's docstring for the order)."""
    step = _decide(state, options)
    speech_from = state.uncommitted_speech[0] if state.uncommitted_speech is not None else None
    return replace(step, speech_from=speech_from, new_speech=state.new_speech)


def _decide(state: PlanState, options: StreamingOptions) -> Plan:
    pause = int(options.pause * SR)
    over = state.hint is TurnHint.OVER
    if state.held_speech_end is not None:
        if over:
            return Plan(Step.COMMIT_HELD, CloseReason.PAUSE, ends_utterance=True)
        if state.resumed_at is not None:
            gap = state.resumed_at - state.held_speech_end
            return Plan(Step.COMMIT_HELD, CloseReason.PAUSE, ends_utterance=gap >= pause)
        if state.total - state.held_speech_end >= pause:
            return Plan(Step.COMMIT_HELD, CloseReason.PAUSE, ends_utterance=True)
        if state.request is not None:
            return Plan(Step.COMMIT_HELD, state.request, ends_utterance=True)
        return IDLE
    # An utterance whose pause is already complete ended by that pause, whatever came after it
    # (a ``finalize`` that finds it over, under load, still answers as one that found none open).
    if state.uncommitted_speech is None:
        end = state.open_speech_end
        if (end is not None and state.total - end >= pause) or (over and state.utterance_open):
            return Plan(Step.END_QUIET, CloseReason.PAUSE, end=state.total)
        if state.request is not None and state.utterance_open:
            return Plan(Step.END_QUIET, state.request, end=state.total)
        return IDLE
    speech_end = state.uncommitted_speech[1]
    if state.request is not None:
        if state.total - speech_end >= pause:
            return _pause_close(state, options, speech_end)
        return Plan(Step.CLOSE, state.request, end=state.total)
    if state.hint is TurnHint.JUDGING:
        return IDLE  # a refresh now would make the closing pass that may follow wait for it
    if state.hint is not TurnHint.NONE and state.total - speech_end >= TURN_PROBE * SR:
        return _pause_close(state, options, speech_end)
    if state.total - state.last_window_end < options.min_new_audio * SR:
        return IDLE
    if state.total - speech_end >= closing_silence(options, state.sentence_end) * SR:
        return _pause_close(state, options, speech_end)
    if not state.new_speech and state.has_hypothesis:
        return IDLE  # silence after the last window: its hypothesis holds, nothing to refresh
    if state.total - state.window_start >= options.max_window * SR:
        return Plan(Step.CUT, end=state.total)
    return Plan(Step.REFRESH, end=state.total)


def _pause_close(state: PlanState, options: StreamingOptions, speech_end: int) -> Plan:
    """The closing pass of a pause: its window ends ``tail_pad`` after the speech."""
    return Plan(Step.CLOSE, CloseReason.PAUSE, end=min(state.total, speech_end + int(options.tail_pad * SR)))
