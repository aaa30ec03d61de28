"""The shared faster-whisper model: loading it, and transcription into plain data.

Nothing here knows about sockets or sessions, nor how a window is decoded: every call goes
through the one adapter (``adapter.py``, the only module that knows faster-whisper's
internals). ``Transcriber.transcribe`` and ``transcribe_batch`` are blocking (call them from a
worker thread). The data types live in ``types.py``, the configuration in ``config.py``; both
are re-exported here. Importing this module loads faster-whisper (through the adapter): what
needs only the types or the configuration imports those modules instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from wirescribe.asr.adapter import WhisperAdapter
from wirescribe.asr.base_model import BASE_MODEL, BaseModelError, base_model_dir
from wirescribe.asr.config import (
    EMBEDDED_MODEL,
    ModelConfig,
    resolve_compute_type,
    resolve_device,
    resolve_model_source,
)
from wirescribe.asr.registry import ModelSet, ModelSpec, check_memory
from wirescribe.asr.types import BatchItem, DecodeOptions, ModelBackend, Segment, Transcript, Word

__all__ = [
    "EMBEDDED_MODEL",
    "BatchItem",
    "DecodeOptions",
    "ModelConfig",
    "ModelLoadError",
    "Segment",
    "TranscribeFn",
    "Transcriber",
    "Transcript",
    "Word",
    "load_models",
    "resolve_device",
    "resolve_model_source",
]

log = logging.getLogger(__name__)

_DEFAULT_OPTIONS = DecodeOptions()


class ModelLoadError(Exception):
    """The configured model could not be loaded; the message names what was tried."""


class Transcriber:
    """One loaded faster-whisper model, shared by every session of the process."""

    def __init__(
        self, model: Any, name: str, device: str, compute_type: str, load_seconds: float | None = None
    ) -> None:
        self.adapter = WhisperAdapter(model)  # every decode goes through it
        self.name = name
        self.device = device
        self.compute_type = compute_type
        self.load_seconds = load_seconds  # how long :meth:`load` took (None: built another way)

    @classmethod
    def load(cls, config: ModelConfig) -> Transcriber:
        """Load the model named by ``config``; :class:`ModelLoadError` says what was tried.
        ``base`` is the multilingual model assembled from its PyPI parts (``base_model.py``),
        offline; a directory or another faster-whisper name as :func:`resolve_model_source` says."""
        if config.model == BASE_MODEL and not Path(config.model).is_dir():
            try:
                name, source = BASE_MODEL, str(base_model_dir())
            except BaseModelError as e:
                raise ModelLoadError(str(e)) from None
        else:
            name, source = resolve_model_source(config.model)
        try:
            device = resolve_device(config.device)
            compute_type = resolve_compute_type(config.compute_type, device)
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
        return self.adapter.supported_languages

    @property
    def default_language(self) -> str | None:
        """English for ``*.en`` models; ``None`` (detect) for multilingual ones."""
        return None if self.adapter.multilingual else "en"

    def transcribe(self, audio: np.ndarray, options: DecodeOptions = _DEFAULT_OPTIONS) -> Transcript:
        """Blocking: transcribe ``audio`` (16 kHz mono float32) completely: a batch of one."""
        return self.adapter.decode([(audio, options)])[0]

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[Transcript]:
        """Blocking: transcribe several windows in one model call (the scheduler's batches);
        results in the order of ``items``; an error in any window raises for the whole call."""
        return self.adapter.decode(items)


def load_models(config: ModelConfig, extra: Sequence[ModelSpec] = (), memory_mb: int = 0) -> ModelBackend:
    """The default model of ``config`` and the ``extra`` ones (``STT_MODELS``): the default
    alone as a :class:`Transcriber` when there are none (the English path as it always was),
    else a :class:`ModelSet` of all, after checking that they fit ``memory_mb`` (0: the machine).
    Each model gets its own budget of workers (its spec's, else ``config.num_workers``)."""
    specs = [ModelSpec(config.model, config.num_workers)] + [s for s in extra if s.name != config.model]
    if len(specs) == 1:
        return Transcriber.load(config)
    try:
        check_memory(specs, config.num_workers or 1, memory_mb)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    models: dict[str, ModelBackend] = {}
    budgets: dict[str, int] = {}
    for spec in specs:
        workers = spec.workers or config.num_workers or 1
        loaded = Transcriber.load(replace(config, model=spec.name, num_workers=workers))
        if loaded.name in models:
            raise ModelLoadError(f"two models are called {loaded.name!r} (STT_MODEL, STT_MODELS)")
        models[loaded.name] = loaded
        budgets[loaded.name] = spec.workers
    return ModelSet(models, next(iter(models)), budgets)


TranscribeFn = Callable[[np.ndarray, DecodeOptions], Transcript]
