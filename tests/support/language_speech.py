"""The project's real speech in other languages (tests/data/multilingual): Spanish, Japanese,
Swedish, each with its transcript, and the error rate each is scored by (characters where words
are not separated by spaces)."""

from __future__ import annotations

import unicodedata

import numpy as np

from tests.support.speech import ROOT
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.wer import word_error_rate

DATA = ROOT / "tests" / "data" / "multilingual"
SAMPLES = {
    "es": ("es_mls_13697_11991_000000",),
    "ja": ("ja_common_voice_24511055",),
    "sv": ("sv_nst_u0016002", "sv_nst_u0016003", "sv_nst_u0016004"),
}
CHARACTER_SCORED = ("ja", "zh", "th", "lo", "my", "km", "yue")  # no spaces between words


def language_sample(language: str, pause: float = 1.0) -> tuple[np.ndarray, str]:
    """The language's recordings joined, ``pause`` s of silence after each, and their transcript."""
    parts: list[np.ndarray] = []
    texts: list[str] = []
    for name in SAMPLES[language]:
        parts += [decode_file(DATA / f"{name}.wav"), np.zeros(int(pause * SAMPLE_RATE), np.float32)]
        texts.append((DATA / f"{name}.txt").read_text(encoding="utf-8").strip())
    return np.concatenate(parts), " ".join(texts)


def _characters(text: str) -> str:
    """Letters and digits one by one (NFKC: full-width forms as their plain ones), spaced."""
    return " ".join(c for c in unicodedata.normalize("NFKC", text).lower() if c.isalnum())


def error_rate(language: str, reference: str, hypothesis: str) -> float:
    """WER, or CER for a language written without spaces between words."""
    if language in CHARACTER_SCORED:
        return word_error_rate(_characters(reference), _characters(hypothesis))
    return word_error_rate(reference, hypothesis)


def metric(language: str) -> str:
    return "CER" if language in CHARACTER_SCORED else "WER"
