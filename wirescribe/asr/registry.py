"""Several models loaded by name, one of them the default: which one a window goes to.

``STT_MODEL`` names the default model; ``STT_MODELS`` adds more (``tiny.en,base:2``: a name, or
a faster-whisper name or a directory, with an optional worker budget after a colon). A session
chooses among them by name (``model=``); the window's :class:`~wirescribe.asr.types.DecodeOptions`
carries the name to :class:`ModelSet`, which hands each window to its model. The scheduler in
front of the set is the one every session shares: sessions of different models take turns by
the same rules, and a model's budget bounds how many of its calls run at once (a ``base`` call
costs about 1.5 times a ``tiny.en`` one: a budget keeps it from taking every worker).

Before anything is loaded, :func:`check_memory` adds up what the models will take and refuses
a set that does not fit the limit (``STT_MODELS_MEMORY_MB``; the machine's memory by default):
one line naming the models, not an out-of-memory kill an hour later.

Importable without faster-whisper (``settings.py`` parses ``STT_MODELS`` with it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wirescribe.asr.types import BatchItem, DecodeOptions, ModelBackend, Transcript

__all__ = [
    "ModelSet", "ModelSpec", "UnknownModel", "check_memory", "estimate_bytes", "models_of", "parse_models",
]  # fmt: skip

_MB = 1 << 20
# What a model's weights take (MB, float16 files as CTranslate2 ships them; int8 on a CPU takes
# less): for names whose files are not here to measure before loading.
KNOWN_SIZES_MB = {
    "tiny": 75, "tiny.en": 75, "base": 145, "base.en": 145, "small": 484, "small.en": 484,
    "distil-small.en": 332, "medium": 1530, "medium.en": 1530, "distil-medium.en": 789,
    "large-v1": 3090, "large-v2": 3090, "large-v3": 3090, "large": 3090, "distil-large-v2": 1510,
    "distil-large-v3": 1510, "large-v3-turbo": 1620, "turbo": 1620,
}  # fmt: skip
UNKNOWN_SIZE_MB = 3090  # a name not known: counted as the largest, to be safe
WORKER_OVERHEAD_MB = 150  # one worker's buffers, features and decoder state, beside the weights


class UnknownModel(KeyError):
    """A session asked for a model that is not loaded; the message lists the loaded ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelSpec:
    """One model to load: its name (or directory) and its worker budget (0: the scheduler's)."""

    name: str
    workers: int = 0


def parse_models(raw: str) -> tuple[ModelSpec, ...]:
    """``STT_MODELS``: ``name[:workers]`` separated by commas; ``ValueError`` says what is wrong."""
    specs: list[ModelSpec] = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        name, _, workers = item.rpartition(":") if item.rpartition(":")[2].isdigit() else (item, "", "")
        if not name.strip():
            raise ValueError(f"{item!r} names no model")
        if workers and not 1 <= int(workers) <= 64:
            raise ValueError(f"{item!r}: a model's workers must be 1-64")
        if any(s.name == name.strip() for s in specs):
            raise ValueError(f"{name.strip()!r} is named twice")
        specs.append(ModelSpec(name.strip(), int(workers or 0)))
    return tuple(specs)


def estimate_bytes(name: str, workers: int = 1) -> int:
    """What loading ``name`` with ``workers`` workers will take, about: its ``model.bin`` when it
    is a directory here, else the size known for the name."""
    path = Path(name).expanduser() / "model.bin"
    weights = path.stat().st_size if path.is_file() else KNOWN_SIZES_MB.get(name, UNKNOWN_SIZE_MB) * _MB
    return weights + max(1, workers) * WORKER_OVERHEAD_MB * _MB


def machine_memory() -> int:
    """Bytes of memory this machine has (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(specs: Sequence[ModelSpec], default_workers: int, limit_mb: int = 0) -> None:
    """``ValueError`` (one line) when the models will not fit ``limit_mb`` (0: the machine's memory)."""
    limit = limit_mb * _MB if limit_mb else machine_memory()
    if not limit:
        return
    need = sum(estimate_bytes(s.name, s.workers or default_workers) for s in specs)
    if need > limit:
        names = ", ".join(s.name for s in specs)
        raise ValueError(
            f"the models {names} need about {need // _MB} MB, more than the {limit // _MB} MB allowed"
            " (STT_MODELS_MEMORY_MB): load fewer or smaller models, or give them fewer workers"
        )


class ModelSet:
    """The loaded models by name; a :class:`ModelBackend` itself, answering as its default model
    does (name, languages) and handing each window to the model its options name."""

    def __init__(
        self, models: Mapping[str, ModelBackend], default: str, budgets: Mapping[str, int] | None = None
    ) -> None:
        if default not in models:
            raise ValueError(f"the default model {default!r} is not among {list(models)}")
        self.models = dict(models)
        self.default = default
        self._gates = {n: threading.BoundedSemaphore(w) for n, w in (budgets or {}).items() if w > 0}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.models)

    def get(self, name: str | None) -> ModelBackend:
        """The model called ``name`` (None: the default); :class:`UnknownModel` if not loaded."""
        if name is None or name == self.default:
            return self.models[self.default]
        try:
            return self.models[name]
        except KeyError:
            loaded = ", ".join(self.models)
            raise UnknownModel(f"model {name!r} is not loaded here (loaded: {loaded})") from None

    def resolve(self, name: str | None) -> str:
        """The loaded name ``name`` stands for (None: the default); :class:`UnknownModel` if none."""
        self.get(name)
        return name or self.default

    @property
    def name(self) -> str:
        return self.models[self.default].name

    @property
    def device(self) -> str:
        return self.models[self.default].device

    @property
    def compute_type(self) -> str:
        return self.models[self.default].compute_type

    @property
    def supported_languages(self) -> list[str]:
        return self.models[self.default].supported_languages

    @property
    def default_language(self) -> str | None:
        return self.models[self.default].default_language

    @property
    def load_seconds(self) -> float | None:
        times = [m.load_seconds for m in self.models.values() if m.load_seconds is not None]
        return sum(times) if times else None

    def transcribe(self, audio: np.ndarray, options: DecodeOptions = DecodeOptions()) -> Transcript:  # noqa: B008
        return self.transcribe_batch([(audio, options)])[0]

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[Transcript]:
        """Each model's windows in one call of that model (within its budget), results in order."""
        groups: dict[str, list[int]] = {}
        for i, (_, options) in enumerate(items):
            groups.setdefault(self.resolve(options.model), []).append(i)
        out: list[Transcript | None] = [None] * len(items)
        for name, indices in groups.items():
            gate = self._gates.get(name)
            if gate is not None:
                gate.acquire()
            try:
                results = self.models[name].transcribe_batch([items[i] for i in indices])
            finally:
                if gate is not None:
                    gate.release()
            for i, result in zip(indices, results, strict=True):
                out[i] = result
        return [t for t in out if t is not None]


def models_of(backend: ModelBackend) -> ModelSet:
    """``backend`` as a set: itself when it is one, else a set of that one model (the server
    with only ``STT_MODEL`` keeps its one model unwrapped, so its windows take the same path)."""
    if isinstance(backend, ModelSet):
        return backend
    return ModelSet({backend.name: backend}, backend.name)
