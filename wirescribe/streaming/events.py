"""What a live session tells its edge, whatever the wire protocol: plain frozen events.

:class:`~wirescribe.streaming.session.LiveSession` emits these; each protocol edge turns them
into its own messages (``/ws/transcribe`` in ``api/ws.py`` and ``api/protocol.py``; the OpenAI
Realtime and Deepgram adapters likewise). No edge keeps a copy of the streaming logic: what is
committed, when an utterance starts and ends, and which words carry which times is decided
once, in the policy. Times are seconds of session audio from its first sample.

Every utterance has an id (0, 1, 2, … in the session), given by the utterance ledger
(``ledger.py``), the one owner of utterance boundaries: each event names the utterance it is
about, so an edge never needs to remember which one is open.

* :class:`SpeechStarted` — utterance ``utterance`` opened (voice activity after silence, or
  words committed with none seen); always before the first :class:`TranscriptChanged` that
  holds words of that utterance.
* :class:`TranscriptChanged` — the committed text grew or the tentative tail changed; ``words``
  are exactly the words this change appends to the committed text, all of them of utterance
  ``utterance`` (None when no word was committed).
* :class:`UtteranceEnded` — a pause, ``finalize`` or the end of input (``reason``) closed
  utterance ``utterance``; ``text`` is exactly what it appended to the committed text (so the
  texts of all utterances, in order, are the final text), ``words`` its committed words.
* :class:`Finalized` — a ``finalize`` has been carried out: everything decoded before it is
  committed. ``closed``: the utterance it ended (its :class:`UtteranceEnded`, reason
  ``finalize``, came just before), or None when none was open.

Turns (only when the session's config asks for them, ``SessionConfig.turns``): a turn is what one
speaker says before the other side should answer; it holds one or more utterances (a hesitation
ends an utterance, not a turn). The end-of-turn model (``turn_taking.py``) decides.

* :class:`TurnStarted` — turn ``turn`` began (its first speech); before any other event of it.
* :class:`TurnUpdate` — the turn's text so far changed (at most about every 0.25 s).
* :class:`EagerEndOfTurn` — the turn is probably over (``eager_eot_threshold``): an agent may start
  preparing its answer; either :class:`TurnResumed` or :class:`TurnEnded` follows.
* :class:`TurnResumed` — speech went on after an :class:`EagerEndOfTurn`: drop that answer.
* :class:`TurnEnded` — the turn is over (``trigger``); its ``text`` is final: exactly the texts of
  its utterances, whose :class:`UtteranceEnded` events all came before.

The session's own settings that a client may change mid-stream live here too
(:class:`SessionConfig`): they are the same for every protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from wirescribe.asr.types import Word

MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 1000  # all keyterms together
MAX_PROMPT_CHARS = 1000
MIN_ENDPOINTING_MS, MAX_ENDPOINTING_MS = 100, 5000
DEFAULT_ENDPOINTING_MS = 800


MIN_EOT_THRESHOLD, MAX_EOT_THRESHOLD, DEFAULT_EOT_THRESHOLD = 0.5, 1.0, 0.7
MIN_EAGER_EOT_THRESHOLD, MAX_EAGER_EOT_THRESHOLD = 0.3, 0.9
MIN_EOT_TIMEOUT_MS, MAX_EOT_TIMEOUT_MS, DEFAULT_EOT_TIMEOUT_MS = 500, 10000, 5000


class CloseReason(str, Enum):
    """Why an utterance ended (the value is the wire name)."""

    PAUSE = "pause"  # the speaker paused for the session's endpointing
    FINALIZE = "finalize"  # the client asked
    EOF = "eof"  # the input ended


@dataclass(frozen=True)
class SpeechStarted:
    at: float  # seconds: where the utterance's speech began
    utterance: int = 0


@dataclass(frozen=True)
class TranscriptChanged:
    committed: str
    tentative: str
    audio_seconds: float
    words: tuple[Word, ...] = ()  # appended to ``committed`` by this change
    utterance: int | None = None  # the utterance ``words`` belong to (None: no words)
    tentative_words: tuple[Word, ...] = field(default=(), compare=False)  # ``tentative``'s words

    @property
    def text(self) -> str:
        return self.committed + self.tentative


@dataclass(frozen=True)
class UtteranceEnded:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    reason: CloseReason
    utterance: int = 0


@dataclass(frozen=True)
class Finalized:
    audio_seconds: float  # audio the session had when it committed everything
    closed: int | None = None  # the utterance this finalize ended (None: none was open)


class TurnTrigger(str, Enum):
    """What ended a turn (the value is the wire name)."""

    MODEL = "model"  # the end-of-turn model (with the transcript) passed eot_threshold
    TIMEOUT = "timeout"  # eot_timeout_ms of silence, whatever the model said
    FINALIZE = "finalize"  # the client asked (finalize, ForceEndTurn)
    EOF = "eof"  # the input ended


@dataclass(frozen=True)
class TurnStarted:
    turn: int  # 0, 1, 2, … in the session
    at: float  # seconds: where its speech began


@dataclass(frozen=True)
class TurnUpdate:
    turn: int
    text: str  # the turn so far: its committed words, then the tentative tail
    words: tuple[Word, ...]  # the turn's committed words so far
    start: float  # seconds: the turn's audio window so far
    end: float


@dataclass(frozen=True)
class EagerEndOfTurn:
    turn: int
    text: str  # the turn so far, as TurnUpdate (not final: the closing pass may still change it)
    words: tuple[Word, ...]
    confidence: float  # the end-of-turn probability that crossed eager_eot_threshold
    start: float
    end: float


@dataclass(frozen=True)
class TurnResumed:
    turn: int
    at: float  # seconds: where speech resumed
    confidence: float  # the probability when it did (that the turn was over)


@dataclass(frozen=True)
class TurnEnded:
    turn: int
    text: str  # final: the texts of the turn's utterances, in order
    words: tuple[Word, ...]
    confidence: float  # the end-of-turn probability at the decision (1.0 for finalize/eof)
    trigger: TurnTrigger
    start: float
    end: float


@dataclass(frozen=True)
class LanguageDetected:
    """A session without a language (``language=auto``) has heard enough speech to tell which
    it is: from here on every window is decoded in ``language`` (once per session)."""

    language: str
    at: float  # seconds: the end of the window it was heard in


TurnEvent = TurnStarted | TurnUpdate | EagerEndOfTurn | TurnResumed | TurnEnded
Event = SpeechStarted | TranscriptChanged | UtteranceEnded | Finalized | LanguageDetected | TurnEvent
Emit = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class SessionConfig:
    """What a client may set at connect and change mid-stream (``configure``): applies from the
    session's next model call."""

    language: str | None = None
    keyterms: tuple[str, ...] = ()
    prompt: str = ""
    endpointing_ms: int = DEFAULT_ENDPOINTING_MS
    turns: bool = False  # run the end-of-turn model and emit the Turn* events
    eot_threshold: float = DEFAULT_EOT_THRESHOLD
    eager_eot_threshold: float | None = None  # None: no EagerEndOfTurn
    eot_timeout_ms: int = DEFAULT_EOT_TIMEOUT_MS
    model: str | None = None  # which loaded model decodes the session (None: the default)
    task: str = "transcribe"  # or "translate": English text from speech in any language

    @property
    def pause(self) -> float:
        """Seconds of silence that end an utterance."""
        return self.endpointing_ms / 1000

    def hotwords(self) -> str | None:
        """The text the model sees before every window's previous text: the prompt, then the
        keyterms (faster-whisper's ``hotwords`` slot; unlike an initial prompt it is in the
        prefix of every window, and the committed text the session prompts with does not push
        it out). None when there is neither."""
        parts = [self.prompt.strip()] if self.prompt.strip() else []
        if self.keyterms:
            parts.append(", ".join(self.keyterms))
        return " ".join(parts) or None
