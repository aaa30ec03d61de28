"""What Whisper invents: stock phrases on silence, text continued from the prompt into a pause,
repetition loops. Shared by the live policy and file transcription."""

from __future__ import annotations

import re

from wirescribe.asr.types import Segment

# Whisper's well-known inventions on silence and noise.
HALLUCINATIONS = frozenset({
    "thank you", "thanks for watching", "thank you for watching", "thank you very much",
    "you", "bye", "subtitles by the amaraorg community", "please subscribe",
    "thanks for watching and ill see you next time",
})  # fmt: skip


def normalize(word: str) -> str:
    """Lower case, letters and digits only: how two hypotheses' words are compared."""
    return re.sub(r"[^\w]", "", word.lower())


def phrase(text: str) -> str:
    """``text`` as normalised words, for comparing whole phrases."""
    return " ".join(filter(None, (normalize(w) for w in text.split())))


def is_hallucination(seg: Segment) -> bool:
    """Whisper's inventions: text continued from the prompt into a pause, loops, stock phrases.

    Invented segments come with near-zero word probabilities (often squeezed into zero-length
    words at the end of the window) and a low average log-probability.
    """
    if seg.words and sum(w.probability for w in seg.words) / len(seg.words) < 0.3:
        return True
    if seg.avg_logprob < -1.0 and seg.no_speech_prob > 0.2:
        return True
    if is_loop(seg):
        return True
    return _stock(seg)


def _stock(seg: Segment) -> bool:
    """A stock phrase ("Thank you.") said with poor scores."""
    return phrase(seg.text) in HALLUCINATIONS and (seg.no_speech_prob > 0.2 or seg.avg_logprob < -0.6)


def is_retry_invention(seg: Segment) -> bool:
    """What a second closing pass (over speech the first one did not hear) invents. It keeps
    every other word over speech — the first pass may have been dropped whole for unsure words,
    and those may be all there is of the utterance — but over the tail of a word it says "Thank
    you." (no_speech_prob 0.15, avg_logprob -1.16: seen live in tests/e2e/test_turns.py, 2 runs
    in 6) or what the decoder itself calls silence."""
    return is_loop(seg) or is_silence(seg) or _stock(seg)


def is_silence(seg: Segment) -> bool:
    """The decoder's own verdict that it heard no speech: a high no-speech probability with an
    improbable text (Whisper's rule, at faster-whisper's log-probability threshold). Over the
    0.37 s tail of "please?" offline, tiny.en's "Thank you." scored no_speech_prob 0.6 and
    avg_logprob -1.44."""
    return seg.no_speech_prob > 0.5 and seg.avg_logprob < -1.0


def is_loop(seg: Segment) -> bool:
    """A repetition loop: the text compresses too well to be speech."""
    return seg.compression_ratio > 2.4
