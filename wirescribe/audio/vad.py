"""Voice-activity detection for live sessions, one small object per session.

Speech probabilities come from faster-whisper's bundled Silero VAD, computed once per 32 ms
frame as audio arrives (so the cost per update does not grow with the window). The speech /
silence decision on top of them is pure and tested with fake probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)

ProbabilityFn = Callable[[np.ndarray], np.ndarray]
"""Maps ``n * FRAME`` samples (with one frame of context first) to ``n + 1`` probabilities."""


def silero_probability() -> ProbabilityFn:
    """Speech probability per frame from faster-whisper's bundled Silero model (no download)."""
    from faster_whisper.vad import get_vad_model

    model = get_vad_model()
    return lambda audio: np.asarray(model(audio), dtype=np.float32).reshape(-1)


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5  # a frame at or above this starts speech
    neg_threshold: float = 0.35  # inside speech, frames stay speech down to this
    min_speech: float = 0.1  # shorter bursts (clicks, a cough's edge) are not speech


class VoiceActivity:
    """Per-frame speech flags for the recent part of one session's audio.

    Sample indices are absolute (from the start of the session); history before
    ``discard_before()`` is forgotten so memory stays bounded.
    """

    def __init__(self, probability: ProbabilityFn, options: VadOptions = VadOptions()) -> None:
        self._probability = probability
        self._opts = options
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet a whole frame
        self._context = np.zeros(FRAME, dtype=np.float32)  # the frame before the next one
        self._speech = np.zeros(0, dtype=bool)
        self._first_frame = 0  # absolute index of _speech[0]
        self._in_speech = False

    @property
    def frames_end(self) -> int:
        """Absolute sample index up to which frames have been classified."""
        return (self._first_frame + len(self._speech)) * FRAME

    def push(self, audio: np.ndarray) -> None:
        """Classify every whole frame of new audio."""
        samples = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        whole = len(samples) // FRAME * FRAME
        self._pending = samples[whole:]
        if not whole:
            return
        frames = samples[:whole]
        probs = self._probability(np.concatenate([self._context, frames]))[1:]
        self._context = frames[-FRAME:]
        flags = np.empty(len(probs), dtype=bool)
        for i, p in enumerate(probs):
            limit = self._opts.neg_threshold if self._in_speech else self._opts.threshold
            self._in_speech = bool(p >= limit)
            flags[i] = self._in_speech
        self._speech = np.concatenate([self._speech, flags])

    def discard_before(self, sample: int) -> None:
        """Forget frames that end before ``sample``."""
        drop = min(max(0, sample // FRAME - self._first_frame), len(self._speech))
        self._speech = self._speech[drop:]
        self._first_frame += drop

    def speech_bounds(self, start: int, end: int, min_speech: float | None = None) -> tuple[int, int] | None:
        """First speech onset and last speech end (samples) within ``[start, end)``, or None.

        Bursts shorter than ``min_speech`` seconds (default: the options') are ignored.
        """
        lo = max(start // FRAME - self._first_frame, 0)
        hi = min(-(-end // FRAME) - self._first_frame, len(self._speech))
        if hi <= lo:
            return None
        runs = _runs(self._speech[lo:hi])
        seconds = self._opts.min_speech if min_speech is None else min_speech
        min_frames = max(1, round(seconds * 16000 / FRAME))
        runs = [(a, b) for a, b in runs if b - a >= min_frames]
        if not runs:
            return None
        base = (self._first_frame + lo) * FRAME
        return base + runs[0][0] * FRAME, base + runs[-1][1] * FRAME

    def speech_fraction(self, start: int, end: int) -> float | None:
        """Share of the frames in ``[start, end)`` classified as speech (None: not known)."""
        lo = max(start // FRAME - self._first_frame, 0)
        hi = min(-(-end // FRAME) - self._first_frame, len(self._speech))
        if hi <= lo:
            return None
        return float(np.count_nonzero(self._speech[lo:hi])) / (hi - lo)

    def has_speech(self, start: int, end: int, min_speech: float | None = None) -> bool:
        return self.speech_bounds(start, end, min_speech) is not None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index pairs of the True runs in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
