"""How much audio a live stream's bytes may decode to: the guard against decompression bombs.

Here, below the streaming and api layers, because both use it: the live session stops a stream
that decodes past its allowance (``streaming/session.py``), and ``api/limits.py`` re-exports it
beside the other per-session limits. Pure.
"""

from __future__ import annotations

__all__ = ["INPUT_SLACK_SECONDS", "audio_allowance"]

INPUT_SLACK_SECONDS = 10.0  # audio any stream may decode before its first bytes are weighed


def audio_allowance(bytes_in: int, min_bitrate: float) -> float:
    """The most audio ``bytes_in`` bytes of a live stream may decode to, in seconds, when every
    second of audio must carry at least ``min_bitrate`` bits (0: unlimited).

    The whole stream may reach ffmpeg before its audio comes out, so the bytes of a bomb count
    in full: a 100 KB WAV claiming 1 Hz (28 h) is refused once it decodes past 10 s + 400 s at
    the default 2000 bit/s, which is a third of Opus's lowest bitrate (6 kbit/s; MP3 and AAC go
    no lower than 8). Only pure digital silence in FLAC (~100 bit/s) compresses further: a long
    stretch of it, alone, is refused too."""
    if min_bitrate <= 0:
        return float("inf")
    return INPUT_SLACK_SECONDS + bytes_in * 8 / min_bitrate
