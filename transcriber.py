"""The shared faster-whisper model, as the design names it (``from transcriber import Transcriber``).

A thin entry point: the model lives in :mod:`wirescribe.asr.model`.
"""

from __future__ import annotations

from wirescribe.asr.model import (
    DecodeOptions,
    ModelConfig,
    ModelLoadError,
    Segment,
    Transcriber,
    Transcript,
    Word,
    load_models,
)

__all__ = [
    "DecodeOptions", "ModelConfig", "ModelLoadError", "Segment", "Transcriber", "Transcript", "Word",
    "load_models",
]  # fmt: skip
