"""Turn-taking: when is the speaker's turn over? A pure state machine over the session's events.

A voice agent answers when the user's turn is over. Silence alone is a poor judge: a speaker
who hesitates mid-sentence ("I'd like to book … a table for two") pauses as long as one who is
done, and a fixed endpointing either answers late or cuts hesitations. Here three signals are
combined (:func:`end_probability`):

* the end-of-turn model's probability for the audio up to the pause (Smart Turn, scored by the
  session once per pause, ``asr/turn_model.py``) — prosody: a falling, finished intonation;
* what the transcript says: a turn whose text ends a sentence is likelier complete, and one
  whose last word the model is unsure of likelier cut off (Whisper "repairs" a phrase stopped
  short: "Can I have your" becomes "Can I have you?", "No, that's" "No, that's it.", each
  last word heard with a low probability);
* how long the silence has lasted: by ``eot_timeout_ms`` the turn is over whatever was said.

The machine reads the session's own events (:meth:`TurnTaker.observe`: utterances starting and
ending, transcript changes, finalize) and the pause facts the session gives it
(:meth:`TurnTaker.tick`, :meth:`TurnTaker.scored`), and emits the turn events of
:mod:`~wirescribe.streaming.events`. It also tells the policy, through :attr:`TurnTaker.hint`,
to start the turn's closing pass early (:attr:`TurnHint.EAGER`: likely over, the pass is held
until the pause or the turn's end) or to end the utterance now (:attr:`TurnHint.OVER`): the text
of :class:`~wirescribe.streaming.events.TurnEnded` is the closing pass's, so it is final.

A turn starts with its first words (tentative or committed), not with voice activity: a cough
or a door starts no turn an agent would answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    CloseReason,
    EagerEndOfTurn,
    Event,
    Finalized,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    TurnEnded,
    TurnResumed,
    TurnStarted,
    TurnTrigger,
    TurnUpdate,
    UtteranceEnded,
)
from wirescribe.streaming.planner import TURN_PROBE, TurnHint

# Utterance ends that end the open turn too, whatever the model says
ENDS_TURN = {CloseReason.FINALIZE: TurnTrigger.FINALIZE, CloseReason.EOF: TurnTrigger.EOF}
UPDATE_EVERY = 0.25  # seconds of audio between two TurnUpdates of one turn
SPECULATE = 0.4  # the closing pass starts early from this probability (or the eager threshold)
# The model is asked again as the silence grows: its score rises with trailing silence ("Okay,
# I'll hold." 0.03 / 0.08 / 0.48 at 0.1 / 0.2 / 0.4 s), so one early score would lock in a low one.
PROBES = (TURN_PROBE, 0.3, 0.6)
NO_MODEL = 0.5  # the model's probability when there is none (the transcript and silence decide)
# What the transcript's end says. Whisper ends its text with a full stop wherever the audio
# stops, mid-sentence pauses included ("I see an extra.", "Can I have your."): a full stop says
# nothing. A question or exclamation mark is likelier meant; a text that stops on an article,
# a preposition or a conjunction is almost surely not finished, punctuated or not.
QUESTION_WEIGHT = 0.6  # ? or !: this share of the doubt is taken away
OPEN_FACTOR = 0.5  # no sentence mark (or "...", ","): the belief is halved
DANGLING_FACTOR = 0.15  # it stops on a word that cannot end a sentence
DANGLING = frozenset(  # words that end no sentence ("hold on", "I think so", "I can" do)
    "a an the my your his her our their its to of for with about at by from into onto and but or"
    " nor because if than as i we he she they i'm it's that's there's we're they're you're um uh".split()
)
# The last word's probability: below WORD_SURE the belief shrinks in proportion. Measured with
# tiny.en on the project's speech (tests/data) with 0.3 s of silence after: the last words of
# whole sentences 0.55-1.0 (most above 0.9), of sentences cut at a word boundary 0.22-1.0
# (half under 0.65: a cut-off word misheard, or one added to close the phrase).
WORD_SURE = 0.8
# Silence says more the longer it lasts: hesitations are mostly under a second, turn gaps longer.
SILENCE_FROM, SILENCE_SPAN, SILENCE_MOST = 0.5, 1.5, 0.9


def text_factor(text: str) -> tuple[float, float]:
    """How the end of ``text`` moves the probability: (the share of the doubt taken, a factor)."""
    stripped = text.rstrip()
    if stripped.endswith(("?", "!")):
        return QUESTION_WEIGHT, 1.0
    words = stripped.rstrip(".,;:\u2026-").split()
    if words and words[-1].lower().strip("\"'") in DANGLING:
        return 0.0, DANGLING_FACTOR
    if stripped.endswith(".") and not stripped.endswith(".."):
        return 0.0, 1.0
    return 0.0, OPEN_FACTOR


def end_probability(model: float | None, text: str, silence: float, sure: float | None = None) -> float:
    """The probability that the turn is over, ``silence`` seconds into its pause: the model's (or
    an even guess), moved by how ``text`` ends and by ``sure`` (the probability of its last word;
    None: not known), then by the silence (from 0.5 s on, up to 0.9 at 2 s). ``eot_timeout_ms``
    ends a turn whatever this says."""
    p = NO_MODEL if model is None else min(1.0, max(0.0, model))
    taken, factor = text_factor(text)
    p = (p + (1 - p) * taken) * factor
    if sure is not None:
        p *= min(1.0, max(0.0, sure) / WORD_SURE)
    quiet = SILENCE_MOST * min(1.0, max(0.0, (silence - SILENCE_FROM) / SILENCE_SPAN))
    return 1 - (1 - p) * (1 - quiet)


@dataclass
class _Turn:
    index: int
    start: float  # where its speech began (seconds)
    base: int  # characters of committed text before it
    words: list[Word] = field(default_factory=list)
    updated_at: float = 0.0  # audio seconds of the last TurnUpdate
    last_text: str = ""
    eager: float | None = None  # the probability of the EagerEndOfTurn sent (None: none)
    over: tuple[TurnTrigger, float] | None = None  # decided over, waiting for its utterance to end


class TurnTaker:
    """The turns of one session (only when its config asks for them)."""

    def __init__(self, config: SessionConfig) -> None:
        self._config = config
        self._turn: _Turn | None = None
        self._next = 0
        self._committed = ""
        self._ended_base = 0  # where the next turn's text begins in the committed text
        self._tentative = ""
        self._audio = 0.0
        self._speech_at = 0.0  # where the current utterance's speech began
        self._utterance_open = False
        self._speech_end: int | None = None  # samples: the last speech end seen
        self._scored_end: int | None = None  # the speech end the model's probability is for
        self._probes = 0  # scores taken of the current pause (PROBES)
        self._silence = 0.0  # seconds since the last speech end, at the last tick
        self._model: float | None = None
        self._sure: float | None = None  # the probability of the last word heard (None: unknown)
        self._out: list[Event] = []

    def configure(self, config: SessionConfig) -> None:
        self._config = config

    @property
    def hint(self) -> TurnHint:
        """What the policy should do about the open turn's utterance."""
        turn = self._turn
        if turn is None:
            return TurnHint.NONE
        if turn.over is not None:
            return TurnHint.OVER
        if self._judged:
            eager = self._config.eager_eot_threshold
            if self._probability(0.0) >= min(SPECULATE, eager if eager is not None else 1.0):
                return TurnHint.EAGER
        return TurnHint.NONE

    @property
    def _judged(self) -> bool:
        """The model has scored the current pause (the last speech end seen)."""
        return self._scored_end is not None and self._scored_end == self._speech_end

    @property
    def speech_end(self) -> int | None:
        """Samples: where the last speech seen ended (None: none yet)."""
        return self._speech_end

    @property
    def turn_start(self) -> float | None:
        """Seconds: where the open turn's speech began (None: no turn open)."""
        return self._turn.start if self._turn is not None else None

    def take(self) -> list[Event]:
        out, self._out = self._out, []
        return out

    # -- the session's events ----------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """One of the session's events, in order: it is queued (:meth:`take`), with the turn
        events it implies after it."""
        self._out.append(event)
        if isinstance(event, SpeechStarted):
            self._utterance_open = True
            self._speech_at = event.at
        elif isinstance(event, TranscriptChanged):
            self._transcript(event)
        elif isinstance(event, UtteranceEnded):
            self._utterance_open = False
            turn = self._turn
            if turn is not None and turn.over is not None:
                self._end(*turn.over)
            elif turn is not None and event.reason in ENDS_TURN:
                self._end(ENDS_TURN[event.reason], 1.0)
        elif isinstance(event, Finalized) and self._turn is not None and not self._utterance_open:
            self._end(TurnTrigger.FINALIZE, 1.0)

    def end_of_input(self) -> None:
        """The input ended and everything is committed: an open turn ends."""
        if self._turn is not None:
            self._end(TurnTrigger.EOF, 1.0)

    def _transcript(self, event: TranscriptChanged) -> None:
        self._committed, self._tentative, self._audio = event.committed, event.tentative, event.audio_seconds
        turn = self._turn
        if turn is None:
            if not self._text(self._ended_base):
                return
            turn = self._turn = _Turn(self._next, self._speech_at, self._ended_base)
            self._next += 1
            self._out.append(TurnStarted(turn.index, turn.start))
            turn.updated_at = -UPDATE_EVERY
        turn.words.extend(event.words)
        # the last word heard: the tentative text's, else (none shown) the turn's last committed one
        heard = event.tentative_words[-1:] or (() if event.tentative.strip() else turn.words[-1:])
        self._sure = heard[-1].probability if heard else None
        self._judge()  # the closing pass's text may finish the sentence the pause was judged on
        text = self._text(turn.base)
        if text != turn.last_text and self._audio - turn.updated_at >= UPDATE_EVERY:
            turn.updated_at, turn.last_text = self._audio, text
            self._out.append(TurnUpdate(turn.index, text, tuple(turn.words), turn.start, self._audio))

    def _text(self, base: int) -> str:
        return (self._committed[base:] + self._tentative).strip()

    # -- pauses ------------------------------------------------------------------------------

    def tick(self, total: int, speech_end: int | None, rate: int) -> None:
        """The audio so far (``total`` samples) and the end of its last speech (None: not
        known): speech resumed after a scored pause, or the silence grew."""
        if speech_end is not None and (self._speech_end is None or speech_end > self._speech_end):
            resumed = self._scored_end is not None  # speech after the pause that was judged
            self._speech_end = speech_end
            if resumed:
                self._resume(speech_end / rate)
        turn = self._turn
        if turn is None or turn.over is not None or self._speech_end is None:
            return
        self._silence = (total - self._speech_end) / rate
        self._judge()

    def _judge(self) -> None:
        """Decide on the open turn's pause, from what is known now."""
        if self._turn is None or self._turn.over is not None or self._silence < TURN_PROBE:
            return
        if self._silence >= self._config.eot_timeout_ms / 1000:
            self._decide(TurnTrigger.TIMEOUT, 1.0)
        elif self._judged:
            self._decide(TurnTrigger.MODEL, self._probability(self._silence))

    def needs_score(self, total: int, rate: int) -> bool:
        """A pause of the open turn that has reached its next probe (:data:`PROBES`)."""
        end, probes = self._speech_end, self._probes if self._judged else 0
        return (
            self._turn is not None and self._turn.over is None and end is not None
            and probes < len(PROBES) and total - end >= PROBES[probes] * rate
        )  # fmt: skip

    def scored(self, probability: float | None, speech_end: int, total: int, rate: int) -> None:
        """The model's probability for the pause after ``speech_end`` (None: no model)."""
        if speech_end != self._speech_end or self._turn is None:
            return  # the speech went on meanwhile
        self._probes = self._probes + 1 if self._scored_end == speech_end else 1
        self._model, self._scored_end = probability, speech_end
        self.tick(total, speech_end, rate)

    def verdict(self) -> str:
        """The open turn's text end and probability now, for the log."""
        if self._turn is None:
            return "no turn"
        p, text = self._probability(self._silence), self._text(self._turn.base)[-40:]
        return f"p={p:.2f} (model {self._model}, word {self._sure}) after {self._silence:.2f} s on {text!r}"

    def _probability(self, silence: float) -> float:
        text = self._text(self._turn.base if self._turn else 0)
        return end_probability(self._model, text, silence, self._sure)

    def _decide(self, trigger: TurnTrigger, p: float) -> None:
        turn = self._turn
        assert turn is not None
        if trigger is TurnTrigger.TIMEOUT or p >= self._config.eot_threshold:
            turn.over = (trigger, p)
            if not self._utterance_open:
                self._end(trigger, p)
            return
        eager = self._config.eager_eot_threshold
        if eager is not None and p >= eager and turn.eager is None:
            turn.eager = p
            text = self._text(turn.base)
            self._out.append(EagerEndOfTurn(turn.index, text, tuple(turn.words), p, turn.start, self._audio))

    def _resume(self, at: float) -> None:
        turn = self._turn
        self._scored_end, self._model = None, None
        if turn is not None and turn.over is None and turn.eager is not None:
            self._out.append(TurnResumed(turn.index, at, turn.eager))
            turn.eager = None

    def _end(self, trigger: TurnTrigger, p: float) -> None:
        turn = self._turn
        assert turn is not None
        text = self._committed[turn.base :].strip()
        self._out.append(TurnEnded(turn.index, text, tuple(turn.words), p, trigger, turn.start, self._audio))
        self._ended_base = len(self._committed)
        self._turn = None
        self._scored_end, self._model = None, None
