"""ffmpeg and bytes -> float32, as the design names it (``from audio_decode import decode_file``).

A thin entry point: the decoders live in :mod:`wirescribe.audio.decode`.
"""

from __future__ import annotations

from wirescribe.audio.decode import (
    SAMPLE_RATE,
    DecodeError,
    DecoderFailure,
    FfmpegStreamDecoder,
    RawStreamDecoder,
    StreamDecoder,
    decode_file,
    encode_audio,
    find_ffmpeg,
    open_decoder,
)

__all__ = [
    "SAMPLE_RATE",
    "DecodeError",
    "DecoderFailure",
    "FfmpegStreamDecoder",
    "RawStreamDecoder",
    "StreamDecoder",
    "decode_file",
    "encode_audio",
    "find_ffmpeg",
    "open_decoder",
]
