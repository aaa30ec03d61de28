"""The pure pieces of the cost limits: the audio floor a live session must keep up (a trickle
of bytes cannot hold a slot), how much audio a stream's bytes may decode to (a header lying
about its sample rate), and the per-client session count."""

from __future__ import annotations

from typing import Any, cast

import pytest

from wirescribe.api.lifecycle import LiveConnection
from wirescribe.api.limits import INPUT_SLACK_SECONDS, AudioFloor, AudioFloorWatch, audio_allowance
from wirescribe.api.state import AppState
from wirescribe.settings import Settings

FLOOR = AudioFloor(rate=0.5, window=60.0)


def first_shortfall(audio_at: Any, seconds: float = 600.0, floor: AudioFloor = FLOOR) -> float | None:
    """The first second at which a session decoding ``audio_at(t)`` seconds of audio by wall
    second ``t`` falls below ``floor`` (checked once a second), or None."""
    watch = AudioFloorWatch(floor, 0.0)
    for t in range(1, int(seconds) + 1):
        if watch.shortfall(audio_at(t), float(t)) is not None:
            return float(t)
    return None


def real_time(*spans: tuple[float, float]) -> Any:
    """Audio at real time during each ``(start, end)`` wall-clock span, none between them."""
    return lambda t: sum(max(0.0, min(t, end) - start) for start, end in spans)


def test_a_real_time_client_is_never_ended() -> None:
    assert first_shortfall(lambda t: t * 0.98) is None


def test_a_client_whose_audio_starts_late_is_not_ended() -> None:
    # frames from the start but no audio for 25 s (a slow encoder start), then real time; the
    # window opens at the first byte, so a client that sends nothing at first is not weighed
    assert first_shortfall(lambda t: max(0, t - 25)) is None


def test_a_network_stall_is_not_ended() -> None:
    # 25 s without audio in the middle, then the backlog arrives at once
    assert first_shortfall(lambda t: t if t < 100 or t >= 125 else 100) is None


def test_a_trickle_is_ended_after_one_window() -> None:
    assert first_shortfall(lambda t: t / 16000) == 62.0  # 2 bytes of pcm16 a second


def test_a_session_that_stops_decoding_later_is_ended_a_window_later() -> None:
    assert first_shortfall(lambda t: min(t, 300)) == 362.0


def test_a_client_that_kept_up_may_pause_for_a_window() -> None:
    # LiveKit's OpenAI plugin after 61.4 s of speech: its input ended, it waits for the last
    # transcript sending nothing; the idle timeout (60 s after that last frame) ends it first
    at = first_shortfall(lambda t: min(t, 61.4))
    assert at is not None and at > 61.4 + 60
    # a muted microphone (nothing, or keep-alives only) for 55 s, twice, real time between
    assert first_shortfall(real_time((0, 100), (155, 300), (355, 600))) is None


def test_pausing_a_window_at_a_time_needs_half_the_time_in_audio() -> None:
    # a minute of audio, a minute of nothing, and again: half the time pays the floor
    assert first_shortfall(real_time(*((s, s + 60) for s in range(0, 600, 120)))) is None
    # 20 s of audio then 50 s of nothing, over and over, does not: ended in its second pause
    assert first_shortfall(real_time(*((s, s + 20) for s in range(0, 600, 70)))) == 122.0
    # nor does a single pause longer than the window
    assert first_shortfall(real_time((0, 100), (162, 600))) == 162.0


def test_no_floor_never_ends() -> None:
    assert first_shortfall(lambda t: 0.0, floor=AudioFloor(rate=0, window=60)) is None


def test_shortfall_reports_the_audio_since_the_credit_was_full() -> None:
    watch = AudioFloorWatch(FLOOR, 0.0)
    assert watch.shortfall(1.0, 30.0) is None  # 1 s of audio buys 2 s more
    assert watch.shortfall(2.5, 66.0) is None  # its credit is gone, but by no more than a tick
    short = watch.shortfall(2.5, 67.0)
    assert short is not None and (short.audio, short.seconds) == (2.5, 67.0)
    assert "only 2.5 s of audio decoded in the last 67 s" in short.message


@pytest.mark.parametrize(
    ("name", "bits_per_second"),
    [
        ("Opus at its lowest bitrate", 6000),
        ("MP3 at 8 kbit/s", 8000),
        ("Speech in FLAC, silence after", 20000),
    ],
)
def test_honest_streams_stay_within_their_allowance(name: str, bits_per_second: int) -> None:
    for seconds in (1, 60, 3600):
        assert seconds <= audio_allowance(seconds * bits_per_second // 8, 2000.0), name


def test_a_lying_header_outgrows_its_allowance() -> None:
    # 8-bit WAV claiming 1 Hz: each byte is a second of audio; 100 KB sent at once
    assert audio_allowance(100_000, 2000.0) == INPUT_SLACK_SECONDS + 400
    assert audio_allowance(0, 2000.0) == INPUT_SLACK_SECONDS
    assert audio_allowance(10, 0.0) == float("inf")


def app_state(per_client: int, clients: list[str | None]) -> AppState:
    settings = Settings(max_sessions=100, max_sessions_per_client=per_client)
    none = cast(Any, None)
    state = AppState(settings, none, none, none, none, none)
    for i, client in enumerate(clients):
        state.sessions[str(i)] = LiveConnection(str(i), client)
    return state


def test_client_at_capacity_counts_that_address_only() -> None:
    state = app_state(2, ["10.0.0.1", "10.0.0.1", "10.0.0.2", None])
    assert state.client_at_capacity("10.0.0.1")
    assert not state.client_at_capacity("10.0.0.2")
    assert not state.client_at_capacity(None)  # unknown peer: not limited by address


def test_client_limit_zero_is_off() -> None:
    assert not app_state(0, ["10.0.0.1"] * 5).client_at_capacity("10.0.0.1")
