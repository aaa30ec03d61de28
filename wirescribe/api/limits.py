"""Per-session rate limiting of audio: a token bucket over decoded audio seconds.

A client may send ``burst`` seconds of audio at once (a recorded clip as fast as possible);
after that the sustained rate is at most ``rate`` audio seconds per wall-clock second. The
server applies it as backpressure: the receive loop sleeps for :meth:`AudioRateGate.delay`
seconds, reading nothing from the socket meanwhile, so a fast client's sends block instead of
filling the server's memory. Pure: the caller passes the clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

# The bytes-to-audio allowance lives below the api (the live session uses it); re-exported here.
from wirescribe.audio.allowance import INPUT_SLACK_SECONDS, audio_allowance

__all__ = [
    "INPUT_SLACK_SECONDS", "AudioFloor", "AudioFloorWatch", "AudioRate", "AudioRateGate", "audio_allowance",
]  # fmt: skip


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


@dataclass(frozen=True)
class AudioFloor:
    """The least audio a live session must decode: ``rate`` audio seconds per wall second over
    every ``window`` seconds (0: no floor). A slot is paid for with audio: a client that keeps a
    session open with a trickle of bytes that decode to (almost) nothing — which the idle
    timeout does not see, since frames keep arriving — is ended after about one window.

    A real-time client decodes ~1 s per second, silence included, so the default floor (0.5)
    leaves room for network stalls and a slow start; the first window is the grace period."""

    rate: float = 0.5
    window: float = 60.0


class AudioFloorWatch:
    """Checks a session's decoded audio against an :class:`AudioFloor` over a sliding window.
    Pure: the caller passes the clock and the session's decoded audio seconds."""

    def __init__(self, floor: AudioFloor, now: float) -> None:
        self._floor = floor
        self._start = now
        self._marks: deque[tuple[float, float]] = deque([(now, 0.0)])  # (time, audio seconds), oldest first

    def shortfall(self, audio_seconds: float, now: float) -> float | None:
        """None while the session keeps up; else the audio seconds it decoded in the last window
        (less than ``rate × window``)."""
        floor = self._floor
        self._marks.append((now, audio_seconds))
        if floor.rate <= 0 or now - self._start < floor.window:
            return None
        # The window's baseline: the newest mark at least one window old (older ones are dropped).
        while len(self._marks) > 1 and self._marks[1][0] <= now - floor.window:
            self._marks.popleft()
        gained = audio_seconds - self._marks[0][1]
        return gained if gained < floor.rate * (now - self._marks[0][0]) else None
