"""Voice-activity detection for live sessions, one small object per session.

Speech probabilities come from faster-whisper's bundled Silero VAD, computed once per 32 ms
frame as audio arrives (so the cost per update does not grow with the window). The speech /
silence decision on top of them is pure and tested with fake probabilities.

:meth:`VoiceActivity.push` does all of it at once. A live session splits it in three, because
the model costs ~0.05 ms a frame — 2 % of the event loop at 12 real-time streams
(``bench/vad_cost.py``) — and must not run there: :meth:`~VoiceActivity.frame` (on the loop:
which samples make whole frames), :meth:`~VoiceActivity.score` (any thread: the model, no
state touched), :meth:`~VoiceActivity.accept` (on the loop: the flags).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from wirescribe.audio.buffer import GrowableBuffer

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


@dataclass(frozen=True)
class Frames:
    """New audio cut into whole frames for the probability function; made by :meth:`VoiceActivity.frame`."""

    seq: int  # which push this is: frames must be accepted in the order they were made
    audio: np.ndarray  # the frame before the new ones, then the new whole frames (empty: none)
    rest: np.ndarray  # samples short of a whole frame, kept for the next push

    @property
    def count(self) -> int:
        """New whole frames (the context frame not counted)."""
        return max(0, len(self.audio) // FRAME - 1)


@dataclass(frozen=True)
class Scored:
    """:class:`Frames` with their speech probabilities, ready for :meth:`VoiceActivity.accept`."""

    frames: Frames
    probabilities: np.ndarray  # one per new frame


class VadOrderError(RuntimeError):
    """Frames were accepted out of order (or twice): the flags would no longer match the audio."""


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
        # Speech flags by absolute frame index (frame k covers samples [k * FRAME, (k+1) * FRAME)).
        self._flags = GrowableBuffer(bool, capacity=1 << 10)
        self._in_speech = False
        self._pushes = 0  # pushes accepted so far: the ``seq`` the next Frames must carry

    @property
    def frames_end(self) -> int:
        """Absolute sample index up to which frames have been classified."""
        return self._flags.end * FRAME

    @property
    def frames_start(self) -> int:
        """Absolute sample index from which frames are still known (see :meth:`discard_before`)."""
        return self._flags.start * FRAME

    def push(self, audio: np.ndarray) -> None:
        """Classify every whole frame of new audio (the model runs here, in the caller's thread)."""
        self.accept(self.score(self.frame(audio)))

    def frame(self, audio: np.ndarray) -> Frames:
        """The whole frames ``audio`` completes, with the frame before them as context. Changes
        nothing: the next :meth:`accept` does (a second ``frame()`` before it is out of order)."""
        samples = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        whole = len(samples) // FRAME * FRAME
        if not whole:
            return Frames(self._pushes, np.zeros(0, dtype=np.float32), samples)
        return Frames(self._pushes, np.concatenate([self._context, samples[:whole]]), samples[whole:])

    def score(self, frames: Frames) -> Scored:
        """The model's speech probability for each new frame. Reads no state of this object, so
        it may run in a worker thread while the event loop goes on (Silero's ONNX session takes
        concurrent calls)."""
        if not frames.count:
            return Scored(frames, np.zeros(0, dtype=np.float32))
        return Scored(frames, self._probability(frames.audio)[1 : frames.count + 1])

    def accept(self, scored: Scored) -> None:
        """Turn probabilities into speech flags (hysteresis: ``threshold`` starts speech,
        ``neg_threshold`` ends it). :class:`VadOrderError` unless these frames follow the last."""
        frames = scored.frames
        if frames.seq != self._pushes:
            raise VadOrderError(f"frames of push {frames.seq} accepted after push {self._pushes - 1}")
        self._pushes += 1
        self._pending = frames.rest
        if not frames.count:
            return
        self._context = frames.audio[-FRAME:]
        probs = np.asarray(scored.probabilities)  # compared in their own precision (float32: Silero's)
        starts = (probs >= self._opts.threshold).tolist()
        stays = (probs >= self._opts.neg_threshold).tolist()
        flags = np.empty(frames.count, dtype=bool)
        in_speech = self._in_speech
        for i in range(frames.count):
            in_speech = stays[i] if in_speech else starts[i]
            flags[i] = in_speech
        self._in_speech = in_speech
        self._flags.append(flags)

    def discard_before(self, sample: int) -> None:
        """Forget frames that end before ``sample``."""
        self._flags.discard_before(sample // FRAME)

    def speech_bounds(self, start: int, end: int, min_speech: float | None = None) -> tuple[int, int] | None:
        """First speech onset and last speech end (samples) within ``[start, end)``, or None.

        Bursts shorter than ``min_speech`` seconds (default: the options') are ignored.
        """
        flags = self._frames(start, end)
        if flags is None:
            return None
        first, mask = flags
        runs = _runs(mask)
        seconds = self._opts.min_speech if min_speech is None else min_speech
        min_frames = max(1, round(seconds * 16000 / FRAME))
        runs = [(a, b) for a, b in runs if b - a >= min_frames]
        if not runs:
            return None
        return (first + runs[0][0]) * FRAME, (first + runs[-1][1]) * FRAME

    def speech_fraction(self, start: int, end: int) -> float | None:
        """Share of the frames in ``[start, end)`` classified as speech (None: not known)."""
        flags = self._frames(start, end)
        if flags is None:
            return None
        return float(np.count_nonzero(flags[1])) / len(flags[1])

    def _frames(self, start: int, end: int) -> tuple[int, np.ndarray] | None:
        """The first frame touching ``[start, end)`` that is still known, and the flags from it
        to the last frame touching it; None when no known frame does."""
        lo = max(start // FRAME, self._flags.start)
        hi = min(-(-end // FRAME), self._flags.end)
        if hi <= lo:
            return None
        return lo, self._flags.view(lo, hi)

    def has_speech(self, start: int, end: int, min_speech: float | None = None) -> bool:
        return self.speech_bounds(start, end, min_speech) is not None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, end)`` index pairs of the True runs in ``mask``."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))
