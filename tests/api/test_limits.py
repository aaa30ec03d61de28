"""limits.py: the audio rate gate (token bucket over decoded audio seconds)."""

from __future__ import annotations

import pytest

from wirescribe.api.limits import AudioRate, AudioRateGate


def simulate(gate: AudioRateGate, chunk: float, speed: float | None, total: float) -> float:
    """A client sending ``chunk``-second frames at ``speed`` x real time (None: as fast as it can),
    honouring the gate's delays; returns the wall-clock seconds it took."""
    now, sent = 0.0, 0.0
    while sent < total - 1e-9:
        sent += chunk
        if speed is not None:
            now = max(now, sent / speed)
        now += gate.delay(sent, now)
    return now


def test_real_time_is_never_delayed() -> None:
    gate = AudioRateGate(AudioRate(rate=4.0, burst=30.0), now=0.0)
    now = 0.0
    for i in range(1, 36000):  # one hour of 100 ms frames
        now = i * 0.1
        assert gate.delay(i * 0.1, now) == 0.0


def test_a_short_clip_as_fast_as_possible_fits_the_burst() -> None:
    gate = AudioRateGate(AudioRate(rate=4.0, burst=30.0), now=0.0)
    assert simulate(gate, chunk=0.02, speed=None, total=8.0) == 0.0


def test_sustained_fast_sending_is_held_to_the_rate() -> None:
    gate = AudioRateGate(AudioRate(rate=4.0, burst=30.0), now=0.0)
    took = simulate(gate, chunk=0.25, speed=None, total=630.0)
    assert took == pytest.approx((630.0 - 30.0) / 4.0, abs=0.1)


def test_credit_is_capped_at_the_burst() -> None:
    """A client quiet for an hour may not then send an hour of audio at once."""
    gate = AudioRateGate(AudioRate(rate=4.0, burst=30.0), now=0.0)
    assert gate.delay(0.0, now=3600.0) == 0.0
    assert gate.delay(30.0, now=3600.0) == 0.0
    assert gate.delay(70.0, now=3600.0) == pytest.approx(10.0)


def test_delay_covers_the_overshoot_once() -> None:
    gate = AudioRateGate(AudioRate(rate=2.0, burst=2.0), now=0.0)
    assert gate.delay(6.0, now=0.0) == pytest.approx(2.0)
    assert gate.delay(6.0, now=2.0) == 0.0  # waited it out; the same audio is not charged twice


def test_zero_rate_means_unlimited() -> None:
    gate = AudioRateGate(AudioRate(rate=0.0, burst=0.0), now=0.0)
    assert gate.delay(1e6, now=0.0) == 0.0
