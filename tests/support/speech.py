"""The project's real speech: five LibriVox utterances (public domain) with their transcripts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wirescribe.audio.decode import SAMPLE_RATE, decode_file

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "librivox"


@dataclass(frozen=True)
class Utterance:
    name: str
    wav: Path
    text: str


def librivox_utterances() -> list[Utterance]:
    wavs = sorted(DATA.glob("*.wav"))
    return [Utterance(w.stem, w, w.with_suffix(".txt").read_text().strip()) for w in wavs]


def join_utterances(utterances: list[Utterance], pause: float = 1.0) -> tuple[np.ndarray, str]:
    """Utterances joined with ``pause`` seconds of silence after each, and their reference text."""
    parts: list[np.ndarray] = []
    for u in utterances:
        parts += [decode_file(u.wav), np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)]
    return np.concatenate(parts), " ".join(u.text for u in utterances)
