"""Per-session rate limiting of audio: a token bucket over decoded audio seconds.

A client may send ``burst`` seconds of audio at once (a recorded clip as fast as possible);
after that the sustained rate is at most ``rate`` audio seconds per wall-clock second. The
server applies it as backpressure: the receive loop sleeps for :meth:`AudioRateGate.delay`
seconds, reading nothing from the socket meanwhile, so a fast client's sends block instead of
filling the server's memory. Its other side, :class:`AudioFloor`, is the least audio a session
must send to keep its slot. Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

# The bytes-to-audio allowance lives below the api (the live session uses it); re-exported here.
from wirescribe.audio.allowance import INPUT_SLACK_SECONDS, audio_allowance

__all__ = [
    "INPUT_SLACK_SECONDS", "AudioFloor", "AudioFloorWatch", "AudioRate", "AudioRateGate", "Shortfall",
    "audio_allowance",
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
    """The least audio a live session must decode: ``rate`` audio seconds per wall second, with
    ``window`` seconds of slack (0 rate: no floor). A slot is paid for with audio: a client that
    keeps a session open with a trickle of bytes that decode to (almost) nothing — which the
    idle timeout does not see, since frames keep arriving — is ended about one window after it
    stops sending audio (or after its first window, if it never sent any).

    Kept as a credit (:class:`AudioFloorWatch`): ``rate × window`` seconds at the first byte,
    earned by decoded audio, spent at ``rate`` per wall second, never more than at the start.
    So a client that has kept up may pause — send nothing, or only keep-alives — for a whole
    window: what a voice agent does when its input is muted or ended while it waits for the last
    transcript (LiveKit's OpenAI plugin stops sending at the end of its input and keeps the
    socket open). The sliding window this replaces ended such a client after half a window of
    quiet (30 s), earlier than the idle timeout (60 s) that the same server grants a silent socket.

    A real-time client decodes ~1 s per second, silence included, so the default floor (0.5)
    leaves room for network stalls and a slow start."""

    rate: float = 0.5
    window: float = 60.0

    @property
    def tick(self) -> float:
        """How often the credit is checked: a tenth of the window, at most a second. A session
        is ended once its credit is more than a tick's worth below zero, so the floor judges a
        client that stopped sending after the idle timeout does (when that is at most a window):
        a silent socket is the idle timeout's to end, not the floor's."""
        return min(1.0, self.window / 10)


@dataclass(frozen=True)
class Shortfall:
    """A session below the floor: it decoded ``audio`` seconds over the last ``seconds`` wall
    seconds (since its credit was last full), less than ``rate × (seconds − window)``."""

    audio: float
    seconds: float
    floor: AudioFloor

    @property
    def message(self) -> str:
        return (
            f"only {self.audio:.1f} s of audio decoded in the last {self.seconds:.0f} s: a session must"
            f" send at least {self.floor.rate:g} s of audio per second, pausing at most"
            f" {self.floor.window:g} s (silence counts)"
        )


class AudioFloorWatch:
    """Checks a session's decoded audio against an :class:`AudioFloor`, as a credit (see there).
    Pure: the caller passes the clock and the session's decoded audio seconds."""

    def __init__(self, floor: AudioFloor, now: float) -> None:
        self._floor = floor
        self._cap = floor.rate * floor.window
        self._credit = self._cap
        self._at, self._audio = now, 0.0
        self._full_at, self._full_audio = now, 0.0  # when the credit was last full

    def shortfall(self, audio_seconds: float, now: float) -> Shortfall | None:
        """None while the session keeps up; else what it decoded since its credit was last full."""
        rate = self._floor.rate
        if rate <= 0:
            return None
        self._credit += max(0.0, audio_seconds - self._audio) - rate * (now - self._at)
        self._at, self._audio = now, max(audio_seconds, self._audio)
        if self._credit >= self._cap:
            self._credit = self._cap
            self._full_at, self._full_audio = now, self._audio
        if self._credit >= -rate * self._floor.tick:
            return None
        return Shortfall(self._audio - self._full_audio, now - self._full_at, self._floor)
