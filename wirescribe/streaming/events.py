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

The session's own settings that a client may change mid-stream live here too
(:class:`SessionConfig`): they are the same for every protocol.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from wirescribe.asr.types import Word

MAX_KEYTERMS = 100
MAX_KEYTERM_CHARS = 1000  # all keyterms together
MAX_PROMPT_CHARS = 1000
MIN_ENDPOINTING_MS, MAX_ENDPOINTING_MS = 100, 5000
DEFAULT_ENDPOINTING_MS = 800


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


Event = SpeechStarted | TranscriptChanged | UtteranceEnded | Finalized
Emit = Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class SessionConfig:
    """What a client may set at connect and change mid-stream (``configure``): applies from the
    session's next model call."""

    language: str | None = None
    keyterms: tuple[str, ...] = ()
    prompt: str = ""
    endpointing_ms: int = DEFAULT_ENDPOINTING_MS

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
