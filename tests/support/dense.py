"""Dense speech: whole clips with short seeded gaps, for the loss benchmark and its e2e test.

Shared by ``bench/loss_bench.py`` and ``tests/e2e/test_no_loss.py``. A stream is whole clips
(the LibriVox utterances and the short support-call prompts of ``tests/data/prompts``) in a
seeded order, with a seeded gap after each, optionally over a low white-noise floor; it
remembers where each clip sits and where its speech ends (the clip's end less its trailing
silence): the clock of ``utterance_end`` delays.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from wirescribe.audio.decode import SAMPLE_RATE, decode_file

DATA = Path(__file__).resolve().parents[1] / "data"
DENSE_GAPS = (0.25, 0.9)  # as bench/_common.py: the gaps of dense speech (s), a meeting or a call
_FRAME = 320  # 20 ms at 16 kHz: the energy frame that finds where a clip's speech ends


@dataclass(frozen=True)
class Clip:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    text: str
    speech_end: int  # sample where its speech ends (its trailing silence starts)


def speech_end(audio: np.ndarray) -> int:
    """The end of the last 20 ms frame louder than both 40 dB under the loudest frame and 8 dB
    over the clip's noise floor (its 5th-percentile frame): LibriVox's room tone sits ~30 dB
    under the voice, so the first bound alone would count it as speech. On the project's clips
    this falls within 0.1 s of where Silero VAD ends the speech (where Silero ends it before the
    clip's last sample)."""
    n = len(audio) // _FRAME
    if n == 0:
        return len(audio)
    frames = audio[: n * _FRAME].reshape(n, _FRAME).astype(np.float64)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    threshold = max(level.max() - 40.0, np.percentile(level, 5) + 8.0)
    loud = np.nonzero(level > threshold)[0]
    return int((loud[-1] + 1) * _FRAME) if len(loud) else len(audio)


def _clip(name: str, path: Path, text: str) -> Clip:
    audio = decode_file(path)
    return Clip(name, audio, text, speech_end(audio))


@cache
def librivox_clips() -> tuple[Clip, ...]:
    """The five LibriVox utterances (read speech, 3–7 s, 8–22 words)."""
    folder = DATA / "librivox"
    return tuple(
        _clip(w.stem.rsplit("-", 1)[-1], w, w.with_suffix(".txt").read_text().strip())
        for w in sorted(folder.glob("*.wav"))
    )


@cache
def prompt_clips() -> tuple[Clip, ...]:
    """The twelve support-call prompts (synthetic, 1.2–3.6 s, 4–10 words)."""
    folder = DATA / "prompts"
    manifest = json.loads((folder / "manifest.json").read_text())
    return tuple(_clip(Path(e["file"]).stem, folder / e["file"], e["text"]) for e in manifest)


def clips(kinds: Sequence[str] = ("librivox", "prompts")) -> tuple[Clip, ...]:
    by_kind = {"librivox": librivox_clips, "prompts": prompt_clips}
    return tuple(c for k in kinds for c in by_kind[k]())


@dataclass(frozen=True)
class Placed:
    clip: Clip
    first: int  # sample where the clip starts in the stream
    speech_end: int  # sample where its speech ends
    end: int  # sample where the clip ends (its gap follows)
    gap: float  # seconds of pause after it

    @property
    def seconds(self) -> tuple[float, float]:
        """(start, speech end) in seconds of stream audio."""
        return self.first / SAMPLE_RATE, self.speech_end / SAMPLE_RATE


@dataclass(frozen=True)
class DenseSpeech:
    audio: np.ndarray
    placed: tuple[Placed, ...]
    seed: int
    noise_dbfs: float | None  # None: digital silence between clips

    @property
    def texts(self) -> list[str]:
        return [p.clip.text for p in self.placed]

    @property
    def reference(self) -> str:
        return " ".join(self.texts)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def build_dense(
    pool: Sequence[Clip],
    seconds: float,
    *,
    gaps: tuple[float, float] = DENSE_GAPS,
    seed: int = 0,
    noise_dbfs: float | None = None,
) -> DenseSpeech:
    """Whole clips until the stream is at least ``seconds`` long: each round of the pool in a
    seeded order (never the same clip twice in a row, so a repeat in a transcript is an error,
    not the reference), a gap uniform in ``gaps`` after each. ``noise_dbfs``: white noise of
    that RMS under the whole stream (a quiet microphone), so no pause is digital silence."""
    rng = random.Random(seed)
    order: list[Clip] = []
    total = 0.0
    while total < seconds:
        round_ = list(pool)
        rng.shuffle(round_)
        if order and len(round_) > 1 and round_[0] is order[-1]:
            round_[0], round_[-1] = round_[-1], round_[0]
        for c in round_:
            if total >= seconds:
                break
            order.append(c)
            total += len(c.audio) / SAMPLE_RATE + sum(gaps) / 2
    parts: list[np.ndarray] = []
    placed: list[Placed] = []
    at = 0
    for c in order:
        gap = rng.uniform(*gaps)
        pause = int(gap * SAMPLE_RATE)
        placed.append(Placed(c, at, at + c.speech_end, at + len(c.audio), gap))
        parts += [c.audio, np.zeros(pause, dtype=np.float32)]
        at += len(c.audio) + pause
    audio = np.concatenate(parts).astype(np.float32)
    if noise_dbfs is not None:
        noise = np.random.default_rng(seed).standard_normal(len(audio)) * 10 ** (noise_dbfs / 20)
        audio = np.clip(audio + noise.astype(np.float32), -1.0, 1.0)
    return DenseSpeech(audio, tuple(placed), seed, noise_dbfs)
