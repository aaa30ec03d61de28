"""Voice-activity detection for live sessions, one small object per session.

Speech probabilities come from faster-whisper's bundled Silero VAD, computed once per 32 ms
frame as audio arrives (so the cost per update does not grow with the window). The speech /
silence decision on top of them is pure and tested with fake probabilities.

Silero is recurrent (an LSTM) and reads 64 samples of the frame before each frame. faster-whisper's
``SileroVADModel.__call__`` starts from a zero state on every call, so scoring a stream block by
block made what counts as speech depend on how the audio was cut (a 100 ms block: three frames
heard by a model that had just forgotten everything). :class:`SileroVad` carries that state —
the LSTM's memory and the last 64 samples — from block to block, and feeds the model exactly
the rows faster-whisper builds for a whole file, so any split of the same audio gives the same
probabilities as one call over all of it. The state is an immutable value passed in and out,
never kept in the model object, so one model serves every session and every thread.

:meth:`VoiceActivity.push` does all of it at once. A live session splits it in three, because
the model costs ~0.05 ms a frame — 2 % of the event loop at 12 real-time streams
(``bench/vad_cost.py``) — and must not run there: :meth:`~VoiceActivity.frame` (on the loop:
which samples make whole frames, and the scorer's state before them),
:meth:`~VoiceActivity.score` (any thread: the model, from that state; nothing of the session
touched), :meth:`~VoiceActivity.accept` (on the loop: the flags, and the state after the
frames). ``accept`` takes each push's frames once and in order, so the state advances exactly
once per frame, in order, wherever ``score`` ran.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np

from wirescribe.audio.buffer import GrowableBuffer

FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the frame before that Silero reads with each frame (faster-whisper's)
_ROWS_PER_RUN = 10_000  # frames per ONNX run, as faster-whisper batches a long file

ProbabilityFn = Callable[[np.ndarray], np.ndarray]
"""Stateless: maps ``n * FRAME`` samples (with one frame of context first) to ``n + 1``
probabilities, each call on its own. :class:`VoiceActivity` feeds it the frame before as
context; a :class:`FrameScorer` (Silero's) is given its state instead."""

S = TypeVar("S")
Memory = tuple[np.ndarray, ...]  # a recurrent model's memory arrays


@runtime_checkable
class FrameScorer(Protocol[S]):
    """Scores frames in order, remembering what it heard in an explicit, immutable state.

    ``score_frames(audio, state)`` returns one probability per frame of ``audio`` (whole frames)
    and the state after them; it must not keep anything itself, so one scorer can serve many
    sessions from many threads, each session holding its own state."""

    def initial_state(self) -> S: ...

    def score_frames(self, audio: np.ndarray, state: S) -> tuple[np.ndarray, S]: ...


@dataclass(frozen=True)
class SileroState:
    """What Silero remembers between frames: its recurrent memory and the last samples heard."""

    memory: Memory  # v6: the LSTM's (h, c), each (1, 1, 128); v5: its (2, 1, 128) state
    context: np.ndarray  # the last CONTEXT samples (zeros before the first frame)

    @property
    def nbytes(self) -> int:
        """What one session's state costs (a little over 1 KiB)."""
        return sum(m.nbytes for m in self.memory) + self.context.nbytes


class SileroVad:
    """faster-whisper's bundled Silero model, scored frame by frame with its state carried.

    Each frame is given to the model as faster-whisper's ``SileroVADModel.__call__`` gives it:
    the last :data:`CONTEXT` samples before it (zeros at the start), then its :data:`FRAME`
    samples; the recurrent memory runs on from the frame before. Works with the two layouts
    faster-whisper has shipped: v6 (1.2: one ONNX graph with ``h``/``c`` inputs) and v5 (1.1:
    an encoder per frame, then a decoder carrying ``state``)."""

    def __init__(self, model: Any) -> None:
        if hasattr(model, "session"):  # silero_vad_v6.onnx
            self._v6 = model.session
            _expect_inputs(self._v6, ("input", "h", "c"))
            self._zero: Memory = (np.zeros((1, 1, 128), np.float32),) * 2
        elif hasattr(model, "encoder_session") and hasattr(model, "decoder_session"):  # v5
            self._v6 = None
            self._encoder, self._decoder = model.encoder_session, model.decoder_session
            _expect_inputs(self._encoder, ("input",))
            _expect_inputs(self._decoder, ("input", "state"))
            self._zero = (np.zeros((2, 1, 128), np.float32),)
        else:
            raise RuntimeError(f"unknown Silero VAD model layout in faster-whisper: {type(model).__name__}")

    def initial_state(self) -> SileroState:
        return SileroState(self._zero, np.zeros(CONTEXT, np.float32))

    def score_frames(self, audio: np.ndarray, state: SileroState) -> tuple[np.ndarray, SileroState]:
        """One probability per whole frame of ``audio``, and the state after the last."""
        frames = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1, FRAME)
        if not len(frames):
            return np.zeros(0, np.float32), state
        before = np.empty((len(frames), CONTEXT), np.float32)
        before[0] = state.context
        before[1:] = frames[:-1, -CONTEXT:]
        rows = np.concatenate([before, frames], axis=1)  # faster-whisper's rows, context first
        memory, probs = state.memory, []
        for i in range(0, len(rows), _ROWS_PER_RUN):
            p, memory = self._run(rows[i : i + _ROWS_PER_RUN], memory)
            probs.append(p)
        return np.concatenate(probs), SileroState(memory, frames[-1, -CONTEXT:].copy())

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """As a :data:`ProbabilityFn` (from a fresh state, like faster-whisper's own call): for
        callers that score a file on their own, such as the file chunker."""
        return self.score_frames(audio, self.initial_state())[0]

    def _run(self, rows: np.ndarray, memory: Memory) -> tuple[np.ndarray, Memory]:
        if self._v6 is not None:
            probs, h, c = self._v6.run(None, {"input": rows, "h": memory[0], "c": memory[1]})
            return np.asarray(probs, np.float32).reshape(-1), (h, c)
        features = np.asarray(self._encoder.run(None, {"input": rows})[0]).reshape(len(rows), -1)
        (carried,), out = memory, []
        for row in features:  # the decoder is the recurrent part: one frame at a time
            p, carried = self._decoder.run(None, {"input": row[None], "state": carried})
            out.append(np.asarray(p, np.float32).reshape(-1))
        return np.concatenate(out), (carried,)


def _expect_inputs(session: Any, names: tuple[str, ...]) -> None:
    """Fail at load, naming the change, if a faster-whisper upgrade reshaped the model."""
    found = tuple(i.name for i in session.get_inputs())
    if found != names:
        raise RuntimeError(f"faster-whisper's Silero VAD takes {found}, expected {names}")


def silero_probability() -> SileroVad:
    """faster-whisper's bundled Silero model (no download). Given to :class:`VoiceActivity` it is
    scored with its state carried across blocks; called directly it is a stateless
    :data:`ProbabilityFn`."""
    from faster_whisper.vad import get_vad_model

    return SileroVad(get_vad_model())


@dataclass(frozen=True)
class _Stateless:
    """A :data:`ProbabilityFn` as a :class:`FrameScorer`: its state is the frame before, which it
    is given as context (a fake, or any function that needs nothing more)."""

    probability: ProbabilityFn

    def initial_state(self) -> np.ndarray:
        return np.zeros(FRAME, np.float32)

    def score_frames(self, audio: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = len(audio) // FRAME
        probs = np.asarray(self.probability(np.concatenate([state, audio])))[1 : count + 1]
        return probs, audio[-FRAME:].copy()


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5  # a frame at or above this starts speech
    neg_threshold: float = 0.35  # inside speech, frames stay speech down to this
    min_speech: float = 0.1  # shorter bursts (clicks, a cough's edge) are not speech

    @classmethod
    def at(cls, threshold: float) -> VadOptions:
        """Options that start speech at ``threshold`` (0–1), ending it 0.15 below, as Silero's
        and faster-whisper's own ``neg_threshold`` does (the defaults are ``at(0.5)``)."""
        return cls(threshold=threshold, neg_threshold=max(threshold - 0.15, 0.01))


@dataclass(frozen=True)
class Frames:
    """New audio cut into whole frames for the scorer; made by :meth:`VoiceActivity.frame`."""

    seq: int  # which push this is: frames must be accepted in the order they were made
    audio: np.ndarray  # the new whole frames (empty: none)
    rest: np.ndarray  # samples short of a whole frame, kept for the next push
    state: Any  # the scorer's state before these frames

    @property
    def count(self) -> int:
        """New whole frames."""
        return len(self.audio) // FRAME


@dataclass(frozen=True)
class Scored:
    """:class:`Frames` with their speech probabilities, ready for :meth:`VoiceActivity.accept`."""

    frames: Frames
    probabilities: np.ndarray  # one per new frame
    state: Any  # the scorer's state after these frames


class VadOrderError(RuntimeError):
    """Frames were accepted out of order (or twice): the flags would no longer match the audio."""


class VoiceActivity:
    """Per-frame speech flags for the recent part of one session's audio.

    Sample indices are absolute (from the start of the session); history before
    ``discard_before()`` is forgotten so memory stays bounded. What else a session keeps is
    fixed in size: under one frame of pending samples and the scorer's state.
    """

    def __init__(
        self, probability: ProbabilityFn | FrameScorer[Any], options: VadOptions = VadOptions()
    ) -> None:
        self._scorer: FrameScorer[Any] = (
            probability if isinstance(probability, FrameScorer) else _Stateless(probability)
        )
        self._opts = options
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet a whole frame
        self._state: Any = self._scorer.initial_state()  # after the last accepted frame
        # Speech flags by absolute frame index (frame k covers samples [k * FRAME, (k+1) * FRAME)).
        self._flags = GrowableBuffer(bool, capacity=1 << 10)
        self._in_speech = False
        self._pushes = 0  # pushes accepted so far: the ``seq`` the next Frames must carry

    @property
    def options(self) -> VadOptions:
        return self._opts

    def retune(self, options: VadOptions) -> None:
        """Decide frames accepted from now on with ``options`` (a client changed its threshold
        mid-session); frames already flagged keep their flags."""
        self._opts = options

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
        """The whole frames ``audio`` completes, with the scorer's state before them. Changes
        nothing: the next :meth:`accept` does (a second ``frame()`` before it is out of order)."""
        samples = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        whole = len(samples) // FRAME * FRAME
        # the rest is copied: a view would keep all of ``samples`` alive until the next push
        return Frames(self._pushes, samples[:whole], samples[whole:].copy(), self._state)

    def score(self, frames: Frames) -> Scored:
        """The model's speech probability for each new frame, from the state the frames carry.
        Reads no state of this object, so it may run in a worker thread while the event loop goes
        on (Silero's ONNX session takes concurrent calls)."""
        if not frames.count:
            return Scored(frames, np.zeros(0, dtype=np.float32), frames.state)
        probs, state = self._scorer.score_frames(frames.audio, frames.state)
        return Scored(frames, probs, state)

    def accept(self, scored: Scored) -> None:
        """Turn probabilities into speech flags (hysteresis: ``threshold`` starts speech,
        ``neg_threshold`` ends it) and take the scorer's state after them. :class:`VadOrderError`
        unless these frames follow the last."""
        frames = scored.frames
        if frames.seq != self._pushes:
            raise VadOrderError(f"frames of push {frames.seq} accepted after push {self._pushes - 1}")
        self._pushes += 1
        self._pending = frames.rest
        if not frames.count:
            return
        self._state = scored.state
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
