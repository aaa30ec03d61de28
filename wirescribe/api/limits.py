"""Per-session rate limiting of audio: a token bucket over decoded audio seconds.

A client may send ``burst`` seconds of audio at once (a recorded clip as fast as possible);
after that the sustained rate is at most ``rate`` audio seconds per wall-clock second. The
server applies it as backpressure: the receive loop sleeps for :meth:`AudioRateGate.delay`
seconds, reading nothing from the socket meanwhile, so a fast client's sends block instead of
filling the server's memory. Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AudioRate:
    rate: float  # audio seconds per wall-clock second, sustained (0: unlimited)
    burst: float  # audio seconds a session may send at once, and at most store up while slow


class AudioRateGate:
    """Token bucket: ``burst`` seconds of credit, refilled at ``rate`` per second, spent by
    each newly decoded second of audio. A real-time client (rate ≥ 1) never waits."""

    def __init__(self, limit: AudioRate, now: float) -> None:
        self._limit = limit
        self._credit = limit.burst
        self._at = now
        self._seen = 0.0

    def delay(self, audio_seconds: float, now: float) -> float:
        """Seconds to wait before reading more, given the session's decoded ``audio_seconds``."""
        rate = self._limit.rate
        if rate <= 0:
            return 0.0
        self._credit = min(self._limit.burst, self._credit + (now - self._at) * rate)
        self._at = now
        if audio_seconds > self._seen:
            self._credit -= audio_seconds - self._seen
            self._seen = audio_seconds
        return -self._credit / rate if self._credit < 0 else 0.0
