"""How successive hypotheses of one session's audio are compared (pure functions on words):
LocalAgreement's common prefix, finding the committed words again in a hypothesis that re-reads
them, and the unsure tail a segment ends with."""

from __future__ import annotations

from difflib import SequenceMatcher

from wirescribe.asr.types import Word
from wirescribe.streaming.hallucinations import normalize


def common_prefix(a: list[Word], b: list[Word]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if normalize(x.text) != normalize(y.text) or not normalize(x.text):
            break
        n += 1
    return n


def after_committed(tail: list[Word], words: list[Word], window_start: float) -> tuple[list[Word], bool]:
    """The words of a hypothesis that come after the committed ones, and whether the
    hypothesis re-read one of the last committed words (is *anchored* to the committed text).

    The window usually re-reads some committed audio (kept as context). A committed word is
    found again in the hypothesis by its text near its time, so a re-read is dropped while the
    same word said again right after it ("had had") is kept. The last three committed words
    are tried, latest first, since the model may re-spell the very last one. A hypothesis
    anchored to none of them may have skipped words at its start (a known failure on windows
    that begin mid-sentence): the caller shows its words but does not commit them by agreement.
    """
    if not tail or tail[-1].end <= window_start + 0.05:
        return words, True
    words, anchored = _after_anchor(tail, words, window_start)
    return _without_reread(tail[-1], words), anchored


def _without_reread(last: Word, words: list[Word]) -> list[Word]:
    """``words`` without a first word that is the last committed word heard again, spelt
    otherwise ("ill-disposed" re-read as "old-sposed", its "-sposed" aligned just past the
    committed word's end; "suppose?" then "-sposed."): it begins inside that word and its
    letters are mostly that word's. (A word said again after the committed one begins after it.)"""
    if not words:
        return words
    first, key, committed = words[0], normalize(words[0].text), normalize(last.text)
    inside = first.start < last.end - 0.02
    alike = len(key) >= 3 and (key in committed or SequenceMatcher(None, key, committed).ratio() >= 0.6)
    return words[1:] if inside and alike else words


def _after_anchor(tail: list[Word], words: list[Word], window_start: float) -> tuple[list[Word], bool]:
    last = tail[-1]
    for anchor in reversed(tail[-3:]):
        if anchor.end <= window_start + 0.05:
            break
        key = normalize(anchor.text)

        def distance(w: Word, anchor: Word = anchor) -> float:
            return min(abs(w.start - anchor.start), abs(w.end - anchor.end))

        near = [w for w in words if normalize(w.text) == key and distance(w) <= 0.6]
        if near:
            rest = words[words.index(min(near, key=distance)) + 1 :]
            return [w for w in rest if anchor is last or w.end > last.end + 0.15], True
    return [w for w in words if w.end > last.end + 0.15], False


def not_said_before(words: list[Word], tail: list[Word]) -> list[Word]:
    """``words`` without a first run of two or more that the committed ``tail`` already holds, in
    order: an unanchored pass that re-read committed audio and stopped at a pause aligns those
    words over the speech it did not decode, so their times alone look new ("thank you so
    much." heard again over "amiable woman he might have been", and committed)."""
    return words[said_before([normalize(w.text) for w in words], [normalize(w.text) for w in tail]) :]


def said_before(keys: list[str], said: list[str]) -> int:
    """How many of ``keys``' first words (two or more, else 0) ``said`` holds together, in order."""
    n = 0
    for k in range(2, len(keys) + 1):
        if not any(said[i : i + k] == keys[:k] for i in range(len(said) - k + 1)):
            break
        n = k
    return n


def without_unsure_tail(words: tuple[Word, ...]) -> tuple[Word, ...]:
    """Drop the near-zero-probability words a segment ends with: text the model invents after
    the speech (or a word cut off mid-way, which the next update hears whole)."""
    end = len(words)
    while end and words[end - 1].probability < 0.1:
        end -= 1
    return words[:end]


class Agreement:
    """The LocalAgreement buffer of one session: the last live hypothesis (after the committed
    words), which of its words have settled, and what a new hypothesis agrees with it on.

    Words near a window's end are unreliable (cut mid-word, no context after them): a word
    commits only when both hypotheses agree on it and it had settled in the older one (ended
    ``settle`` seconds before the speech its window heard ended). So the words at the very end
    of the speech are never committed by two greedy passes agreeing on the same audio: they are
    left to the utterance's closing pass, the stronger decode.
    """

    def __init__(self, settle: float) -> None:
        self._settle = settle
        self.hypothesis: list[Word] = []  # the previous hypothesis, after the committed words
        self._speech_end = 0.0  # seconds: end of the speech the previous hypothesis's window heard

    def agree(self, words: list[Word], trusted: bool, speech_end: float) -> list[Word]:
        """Take a new live hypothesis (``words``, after the committed ones); the words to commit
        now. ``trusted``: the hypothesis is anchored to the committed text (an unanchored one
        may have skipped words at its start: nothing of it commits). ``speech_end``: where the
        speech its window heard ends (seconds)."""
        settled = [w for w in self.hypothesis if w.end <= self._speech_end - self._settle]
        agreed = common_prefix(settled, words) if trusted else 0
        self.hypothesis = words[agreed:]
        self._speech_end = speech_end
        return words[:agreed]

    def clear(self) -> None:
        """Everything the hypothesis covered is committed (or gone): start afresh."""
        self.hypothesis = []
