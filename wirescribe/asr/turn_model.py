"""The end-of-turn model: Smart Turn v3.2, the probability that a speaker's turn is complete.

Smart Turn v3.2 (Daily, BSD-2) is a Whisper-tiny encoder with a small classifier head, about 8 M
parameters, shipped as an 8.7 MB int8 ONNX graph. It hears the last 8 s of a turn (16 kHz mono)
as Whisper's 80-bin log-mel features, ``input_features`` of shape ``(batch, 80, 800)``, and
answers ``logits`` of shape ``(batch, 1)`` that are already probabilities (a sigmoid is part of
the graph; the name is the exporter's). The batch dimension is dynamic: several sessions' turns
are scored in one call.

**Input, as the model was trained** (pipecat's ``local_smart_turn_v3.py``, read, not copied):
the audio's *end* is kept — longer than 8 s, the last 8 s; shorter, zeros in *front* — then the
8 s buffer (its zeros included) is normalised to zero mean and unit variance, then Whisper's
log-mel (400-point FFT, hop 160, reflect-padded, the last frame dropped, floored 8 below the
maximum, ``(x + 4) / 4``). faster-whisper's own ``FeatureExtractor`` computes exactly that
log-mel when given the 128 000 normalised samples with no extra padding (``padding=0``): 80 mels,
800 frames; its float32 arithmetic differs from pipecat's float64 reference by under 5e-6 on
the project's speech, and the probabilities agree to seven digits. So this module imports
faster-whisper's feature extractor (an exception named in pyproject.toml's import contracts)
rather than carry a third copy of the mel filterbank. Both heavy imports (faster-whisper,
onnxruntime) happen in :func:`load_turn_model`, so importing this module stays light for the
streaming layer.

**Where the weights come from.** They are package data of the PyPI wheel ``pipecat-ai``
(``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``), the only registry package
that ships them. pipecat's own dependencies are heavy (numba, llvmlite, Pillow, resampy, …) and
pin ``soxr~=1.0`` against this project's soxr 1.1, and none of them is needed to read an ONNX
file, so the Makefile installs the one pinned wheel from ``requirements-turn.txt`` with
``--no-deps``, and this module finds the file through the package's installed metadata
(``importlib.metadata``) *without importing pipecat* (whose ``__init__`` would want those
dependencies). ``STT_TURN_MODEL`` names another file instead. Without either, start-up logs one
line and :func:`load_turn_model` returns ``None``: the caller ends turns on silence alone.

**Cost and threads.** One ONNX session, one intra-op thread and no inter-op pool: the machine's
cores belong to Whisper. A turn costs about 50 ms of one core here (2 cores; 5 ms of it the
log-mel features), whatever its length, since the model always hears 8 s; batching does not
make a turn cheaper on this CPU (batch 4 or 8: 51–57 ms a turn; ``bench/turn_model_cost.py``).
``InferenceSession.run`` is thread-safe and the feature extractor keeps no state between calls,
so one :class:`TurnModel` serves any number of threads. :class:`TurnScorer` gives the event loop
an awaitable: one dedicated worker thread, one turn per call by default (a batch would make the
first turn wait for the last at no saving), or batches of what is queued where that is cheaper.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # the model hears 16 kHz mono (the server's own rate: no resampling here)
WINDOW_SECONDS = 8  # the model hears at most the last 8 s of a turn
WINDOW = SAMPLE_RATE * WINDOW_SECONDS
N_MELS = 80
FRAMES = WINDOW // 160  # 800 log-mel frames (hop 160)
_NORM_EPS = 1e-7  # the variance floor of the waveform normalisation (as the model was trained)
_LOUDEST = 1e6  # |sample| clipped here: 8 s of it squared and summed stays finite in float32

DISTRIBUTION = "pipecat-ai"  # the wheel that ships the weights (requirements-turn.txt pins it)
PACKAGE_FILE = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
VERSION = "1.14.0"  # requirements-turn.txt pins it (tests/asr/test_turn_model.py keeps them equal)
INSTALL_HINT = f"make dev installs it; or pip install --no-deps {DISTRIBUTION}=={VERSION}"


def bundled_model_path() -> Path | None:
    """The Smart Turn ONNX file inside the installed ``pipecat-ai`` wheel, found through its
    metadata without importing pipecat; ``None`` when the wheel or the file is missing."""
    try:
        found = Path(str(metadata.distribution(DISTRIBUTION).locate_file(PACKAGE_FILE)))
    except metadata.PackageNotFoundError:
        return None
    return found if found.is_file() else None


def load_turn_model(path: str | os.PathLike[str] | None = None) -> TurnModel | None:
    """The end-of-turn model from ``path`` (``STT_TURN_MODEL``), or else the bundled one.

    Never raises for a missing or unreadable model: it logs one line saying why and what to do,
    and returns ``None`` (turn detection falls back to silence). Blocking (a few hundred ms):
    call it at start-up."""
    source = Path(path) if path else bundled_model_path()
    if source is None:
        log.warning(
            "end-of-turn model not found: %s is not installed (%s) and STT_TURN_MODEL is not set;"
            " turns end without it (on the transcript and silence)",
            DISTRIBUTION, INSTALL_HINT,
        )  # fmt: skip
        return None
    try:
        model = TurnModel.load(source)
    except (OSError, RuntimeError, ValueError) as e:
        log.warning(
            "end-of-turn model %s could not be loaded (%s); turns end without it (on the transcript"
            " and silence)",
            source, _one_line(e),
        )  # fmt: skip
        return None
    log.info("loaded end-of-turn model %s (%.1f MB)", source, source.stat().st_size / 1e6)
    return model


class TurnModel:
    """Smart Turn v3.2 in one ONNX session: :meth:`score` and :meth:`score_batch` are blocking,
    thread-safe, and take 16 kHz mono float32 audio ending where the turn would end."""

    def __init__(self, session: Any, extractor: Any, path: Path) -> None:
        self._session = session
        self._extractor = extractor
        self.path = path

    @classmethod
    def load(cls, path: Path, threads: int = 1) -> TurnModel:
        """Open ``path`` (``threads``: ONNX intra-op threads; the server keeps 1); ``OSError`` if
        it is missing, ``RuntimeError`` if onnxruntime refuses it or its inputs and outputs are
        not Smart Turn's."""
        import onnxruntime as ort
        from faster_whisper.feature_extractor import FeatureExtractor

        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 1: Whisper has the cores
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's errors (Fail, InvalidProtobuf, ...) derive from Exception
            raise RuntimeError(f"onnxruntime cannot open it: {_one_line(e)}") from e
        _expect_layout(session)
        return cls(session, FeatureExtractor(feature_size=N_MELS, chunk_length=WINDOW_SECONDS), path)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """The model's input for one turn: ``(80, 800)`` float32 log-mel of its last 8 s."""
        return np.asarray(self._extractor(window(audio), padding=0), dtype=np.float32)

    def score(self, audio: np.ndarray) -> float:
        """The probability (0–1) that the turn ending with ``audio``'s last sample is complete."""
        return self.score_batch([audio])[0]

    def score_batch(self, audios: Sequence[np.ndarray]) -> list[float]:
        """:meth:`score` of each, in one model call."""
        if not audios:
            return []
        batch = np.stack([self.features(a) for a in audios])
        (probs,) = self._session.run(["logits"], {"input_features": batch})
        return [float(p) for p in np.asarray(probs, dtype=np.float32).reshape(len(audios))]


def window(audio: np.ndarray) -> np.ndarray:
    """The 8 s the model hears, normalised: the last :data:`WINDOW` samples, zeros in front of a
    shorter turn, then zero mean and unit variance over the whole buffer (the zeros included).
    A hostile float stream cannot break the arithmetic: non-finite samples count as silence,
    and samples beyond ±:data:`_LOUDEST` (a million times full scale) are clipped there, so the
    variance cannot overflow float32 (real audio, even a float decoder's overshoot, is kept)."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"turn audio must be one channel (1-D), not shape {x.shape}")
    out = np.zeros(WINDOW, np.float32)
    tail = x[-WINDOW:]
    out[WINDOW - len(tail) :] = tail
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(out, -_LOUDEST, _LOUDEST, out=out)
    return (out - out.mean()) / np.sqrt(out.var() + _NORM_EPS)


def _expect_layout(session: Any) -> None:
    """Fail at load, naming what changed, if the file is not Smart Turn v3's layout."""
    inputs = [(i.name, list(i.shape)[1:]) for i in session.get_inputs()]
    outputs = [(o.name, list(o.shape)[1:]) for o in session.get_outputs()]
    if inputs != [("input_features", [N_MELS, FRAMES])] or outputs != [("logits", [1])]:
        raise RuntimeError(f"not a Smart Turn v3 model: inputs {inputs}, outputs {outputs}")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300] or type(e).__name__


class BatchScorer(Protocol):
    """What :class:`TurnScorer` drives: a :class:`TurnModel`, or a fake in tests."""

    def score_batch(self, audios: Sequence[np.ndarray]) -> list[float]: ...


@dataclass(frozen=True)
class _Request:
    audio: np.ndarray
    future: Future[float]


class TurnScorer:
    """Scores turns off the event loop, in the order asked, on one dedicated worker thread.

    The worker takes the first queued request, then up to ``max_batch - 1`` others already
    queued, and scores them in one :meth:`BatchScorer.score_batch` call. ``max_batch`` is 1 by
    default: on this project's CPU a batch costs as much per turn as single calls (see the
    module's docstring), so batching would only make the first session wait for the others;
    where a batch is cheaper (a faster runtime, a GPU), sessions that pause together share a
    call. A request cancelled before its call starts is skipped. The model's error reaches
    every caller of that call. :meth:`close` scores what is queued, then stops the thread."""

    def __init__(self, model: BatchScorer, *, max_batch: int = 1) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._model = model
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # orders submit() against close()'s end marker
        self._closed = False
        self.calls = 0  # model calls made (read from any thread: metrics, tests)
        self.scored = 0  # turns scored in them
        self._thread = threading.Thread(target=self._work, name="turn-scorer", daemon=True)
        self._thread.start()

    def submit(self, audio: np.ndarray) -> Future[float]:
        """Queue one turn (16 kHz mono float32, ending where the turn would end); from any thread."""
        request = _Request(audio, Future())
        with self._lock:
            if self._closed:
                raise RuntimeError("the turn scorer is closed")
            self._queue.put(request)
        return request.future

    async def score(self, audio: np.ndarray) -> float:
        """:meth:`submit`, awaited on the running loop without blocking it."""
        return await asyncio.wrap_future(self.submit(audio))

    def close(self, timeout: float | None = None) -> None:
        """Refuse new requests, score those queued, and stop the worker (waiting ``timeout``)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = [first], False
            while len(batch) < self._max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        if not live:
            return
        self.calls += 1
        self.scored += len(live)
        try:
            probs = self._model.score_batch([r.audio for r in live])
            if len(probs) != len(live):
                raise RuntimeError(f"the turn model gave {len(probs)} scores for {len(live)} turns")
        except Exception as e:  # noqa: BLE001 - handed to every caller of this batch, not swallowed
            for r in live:
                r.future.set_exception(e)
            return
        for r, p in zip(live, probs, strict=True):
            r.future.set_result(p)
