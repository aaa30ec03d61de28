"""The utterance ledger of one live session: the only owner of utterance boundaries (pure).

Every committed word is written here, with the id of the utterance it belongs to; every event a
session emits comes out of here (:mod:`wirescribe.streaming.events`), in the order things
happened; the final transcript's segments are the ledger's utterances. Nothing else in the
server opens or closes an utterance, or keeps a copy of which one is open:

* an utterance opens at the first voice activity after the last one closed (``speech_started``),
  or, should words be committed with none seen (a burst too short for the detector), at its
  first word: every committed word belongs to exactly one utterance;
* it closes once (a pause, ``finalize`` or the end of input), with exactly the words committed
  while it was open: the texts of all utterances, in order, are the session's committed text,
  and each is one segment of the final transcript.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from wirescribe.asr.types import Segment, Word
from wirescribe.streaming.events import (
    CloseReason,
    Event,
    Finalized,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)
from wirescribe.streaming.window import FinalTranscript, Update

NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})


@dataclass
class Utterance:
    """One utterance: where its speech began and the words committed to it."""

    id: int
    onset: float  # seconds
    words: list[Word] = field(default_factory=list)
    text: str = ""
    closed: CloseReason | None = None


class UtteranceLedger:
    """Committed words by utterance, and the session's event queue."""

    def __init__(self, language: str | None = None) -> None:
        self._spaced = language not in NO_SPACE_LANGUAGES
        self._utterances: list[Utterance] = []
        self._open: Utterance | None = None
        self._text = ""  # all committed text
        self._words: list[Word] = []  # all committed words, in order
        self._events: list[Event] = []

    # -- reading -----------------------------------------------------------------------------

    @property
    def open(self) -> Utterance | None:
        """The open utterance, if any."""
        return self._open

    @property
    def text(self) -> str:
        return self._text

    @property
    def words(self) -> list[Word]:
        """Every committed word, in order (read-only by convention)."""
        return self._words

    def open_words(self) -> list[Word]:
        """The open utterance's committed words (empty: none open, or none committed yet)."""
        return self._open.words if self._open is not None else []

    def take(self) -> list[Event]:
        """The events queued since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    # -- writing -----------------------------------------------------------------------------

    def start(self, onset: float) -> Utterance:
        """Open an utterance at ``onset`` seconds (``speech_started``); the open one, if any, stays."""
        if self._open is None:
            self._open = Utterance(len(self._utterances), onset)
            self._utterances.append(self._open)
            self._events.append(SpeechStarted(round(onset, 3), self._open.id))
        return self._open

    def commit(self, words: list[Word], limit: float) -> list[Word]:
        """Append ``words`` to the open utterance (opened at the first word if none is), with
        times that follow the words before, start no earlier than the utterance's onset and end
        no later than ``limit`` seconds (the audio's end): two windows' alignments may overlap a
        word by some milliseconds, and the alignment stretches a first word back into the
        silence before it. Returns the words as committed."""
        if not words:
            return []
        utterance = self.start(words[0].start)
        last = max(self._words[-1].end if self._words else 0.0, utterance.onset)
        kept: list[Word] = []
        for w in words:
            end = min(max(w.end, last), limit)
            start = min(max(w.start, last), end)
            kept.append(w if (start, end) == (w.start, w.end) else replace(w, start=start, end=end))
            last = end
        piece = self.join(kept, after=self._text)
        if not self._text:
            piece = piece.lstrip()
        self._text += piece
        utterance.text += piece
        utterance.words.extend(kept)
        self._words.extend(kept)
        return kept

    def changed(self, update: Update, words: list[Word]) -> None:
        """The transcript changed: queue it, with ``words`` the ones this change committed."""
        owner = self._open.id if words and self._open is not None else None
        self._events.append(TranscriptChanged(update.committed, update.tentative, update.audio_seconds,
                                              tuple(words), owner, update.tentative_words))  # fmt: skip

    def close(self, reason: CloseReason, at: float) -> int | None:
        """Close the open utterance (``at``: seconds, where its audio ended when it has no word);
        its id, or None when none was open."""
        utterance, self._open = self._open, None
        if utterance is None:
            return None
        utterance.closed = reason
        own = tuple(utterance.words)
        start = own[0].start if own else utterance.onset
        end = own[-1].end if own else max(utterance.onset, at)
        self._events.append(UtteranceEnded(round(start, 3), round(end, 3), utterance.text, own, reason,
                                           utterance.id))  # fmt: skip
        return utterance.id

    def finalized(self, audio_seconds: float, closed: int | None) -> None:
        """A ``finalize`` has been carried out (``closed``: the utterance it ended, if any)."""
        self._events.append(Finalized(audio_seconds, closed))

    # -- text --------------------------------------------------------------------------------

    def join(self, words: list[Word], after: str = "") -> str:
        """Concatenate words as the model spelt them (its words carry their leading space);
        a space is added only where a word without one follows text in a spaced language."""
        text = ""
        for w in words:
            piece = w.text
            if not text and after and self._spaced and piece[:1].isalnum() and not after[-1:].isspace():
                piece = " " + piece
            text += piece
        return text

    def final(self, audio_seconds: float) -> FinalTranscript:
        """Everything committed, one segment per utterance that committed words."""
        segments = tuple(
            Segment(u.words[0].start, u.words[-1].end, self.join(u.words).strip(), tuple(u.words))
            for u in self._utterances
            if u.words
        )
        return FinalTranscript(self._text, segments, audio_seconds)


def prompt_before(ledger: UtteranceLedger, cut: float, chars: int) -> str:
    """The last committed words that end by ``cut`` seconds, whole, at most ``chars`` long:
    the model's context before a window."""
    words: list[Word] = []
    size = 0
    for w in reversed(ledger.words):
        if w.end > cut:
            continue
        size += len(w.text) + 1
        if size > chars:
            break
        words.append(w)
    return ledger.join(words[::-1]).strip()


def word_end_after(ledger: UtteranceLedger, limit: float) -> float | None:
    """The end of the first committed word of the ones that end at or after ``limit`` seconds
    (None: none does): where the audio kept as context may be cut without cutting a word."""
    cut = None
    for w in reversed(ledger.words):
        if w.end < limit:
            break
        cut = w.end
    return cut
