"""What every decoder shares: the rate it decodes to, the two ways decoding fails, and what a
live session needs of a decoder.

A module of its own so that :mod:`wirescribe.audio.decode` (ffmpeg) and
:mod:`wirescribe.audio.raw` (raw PCM and G.711, no ffmpeg) both build on it without importing
each other; callers keep importing these names from :mod:`wirescribe.audio.decode`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000  # every decoder's output: mono float32 at this rate


class DecodeError(Exception):
    """The audio cannot be decoded (bad or truncated input); the message quotes ffmpeg."""


class DecoderFailure(Exception):
    """The decoder itself failed (ffmpeg missing, killed or hung) — not the client's fault."""


class StreamDecoder(Protocol):
    """What a live session needs of a decoder."""

    async def feed(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    async def aclose(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[np.ndarray]: ...
