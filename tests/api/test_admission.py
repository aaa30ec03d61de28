"""Admission by measured load (``api/admission.py``), with a fake scheduler and a simulated clock:
the limit follows the measured model call time, late sessions close the door, the fixed limit
stays for operators; and the app state's refusal is what the edge sends as ``busy``."""

from __future__ import annotations

from typing import Any, cast

import pytest

from wirescribe.api.admission import FIXED, MIN_LAGS, Admission, AdmissionLimits, RecentValues
from wirescribe.api.lifecycle import LiveConnection
from wirescribe.api.metrics import Metrics
from wirescribe.api.state import AppState
from wirescribe.asr.load import SchedulerStats
from wirescribe.settings import Settings


class World:
    """A clock, the scheduler's counters and the recent commit lag, all set by the test."""

    def __init__(self) -> None:
        self.now = 100.0
        self.busy = 0.0
        self.calls = 0
        self.waited = 0.0
        self.oldest_queued = 0.0
        self.lag: float | None = None

    def clock(self) -> float:
        return self.now

    def stats(self) -> SchedulerStats:
        return SchedulerStats(0, 0, self.calls, self.busy, batches=self.calls, waited_seconds=self.waited,
                              oldest_queued=self.oldest_queued)  # fmt: skip

    def commit_lag(self, within: float) -> float | None:
        return self.lag

    def run(self, seconds: float, *, call: float, calls: int = 20, wait: float = 0.0) -> None:
        """``seconds`` pass with ``calls`` model calls of ``call`` s that waited ``wait`` s each."""
        self.now += seconds
        self.busy += call * calls
        self.calls += calls
        self.waited += wait * calls


def admission(world: World, **limits: Any) -> Admission:
    lim = AdmissionLimits(**{"ceiling": 12, "workers": 2, **limits})
    return Admission(lim, world.stats, world.commit_lag, world.clock)


def test_before_anything_is_measured_the_prior_call_sizes_the_limit() -> None:
    world = World()
    a = admission(world, prior_call=0.2, target_wait=0.75)
    state = a.state(0)
    assert state.admit and not state.load.measured
    assert state.limit == 9  # 2 workers x (1 + 0.75 / 0.2)
    refused = a.state(9)
    assert not refused.admit and "measured capacity of 9" in (refused.reason or ""), refused.reason


def test_the_measured_call_time_raises_or_lowers_the_limit() -> None:
    """A quick machine admits up to the ceiling; the same machine busy with other work (calls
    four times slower) admits fewer, before any session is late."""
    world = World()
    a = admission(world)
    a.state(4)
    world.run(10, call=0.12)
    quick = a.state(4)
    assert quick.load.measured and quick.load.call_seconds == pytest.approx(0.12)
    assert quick.limit == 12  # 14 by the wait, held at the ceiling
    world.run(20, call=0.5)  # a window and more of slow calls
    slow = a.state(4)
    assert slow.limit == 5 and slow.admit  # 2 x (1 + 0.75 / 0.5)
    assert not a.state(5).admit


def test_an_idle_window_keeps_the_last_call_time() -> None:
    world = World()
    a = admission(world)
    a.state(1)
    world.run(10, call=0.5)
    assert a.state(1).limit == 5
    world.run(60, call=0.0, calls=0)  # nobody spoke for a minute
    idle = a.state(1)
    assert idle.load.measured and idle.limit == 5


@pytest.mark.parametrize(
    ("signal", "words"), [("lag", "commit latency p90 4.5 s"), ("queue", "wait 1.5 s for a worker")]
)
def test_late_sessions_close_the_door(signal: str, words: str) -> None:
    world = World()
    a = admission(world)
    a.state(3)
    if signal == "lag":
        world.lag = 4.5
        world.run(10, call=0.1)
    else:
        world.run(10, call=0.1, wait=1.5)
    state = a.state(3)
    assert not state.admit and state.limit == 3, state
    assert words in (state.reason or ""), state.reason


def test_a_busy_model_alone_is_not_late() -> None:
    """One session keeps a worker busy with refreshes: busy, not late; the door stays open."""
    world = World()
    a = admission(world)
    a.state(1)
    world.run(10, call=0.2, calls=50)  # 10 busy seconds in 10: half of two workers, back to back
    state = a.state(1)
    assert state.admit and state.load.busy == pytest.approx(0.5)


def test_the_oldest_queued_turn_counts_as_queue_age() -> None:
    world = World()
    a = admission(world)
    world.oldest_queued = 2.0
    assert not a.state(1).admit


def test_the_fixed_mode_is_the_ceiling_alone() -> None:
    world = World()
    a = admission(world, mode=FIXED, ceiling=3)
    world.lag = 20.0
    assert a.state(2).admit  # late, but under the fixed limit
    refused = a.state(3)
    assert not refused.admit and refused.reason == "the server is at its limit of 3 sessions"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="admission mode"):
        admission(World(), mode="guess")


def test_recent_values_forget_old_ones() -> None:
    world = World()
    recent = RecentValues(horizon=30.0, clock=world.clock)
    for v in (5.0, 5.0, 5.0):
        recent.add(v)
    world.now += 20
    for v in (1.0, 1.0, 2.0):
        recent.add(v)
    assert recent.quantile(0.9, within=10) == 2.0
    assert recent.quantile(0.9, within=60) == 5.0
    world.now += 100
    assert recent.quantile(0.9, within=60) is None


def app_state(settings: Settings, world: World, sessions: int) -> AppState:
    none = cast(Any, None)
    state = AppState(settings, none, cast(Any, world), none, Metrics(lambda: None), none)
    state.admission = Admission(
        state.admission.limits, world.stats, state.metrics.commit_lag_p90, world.clock
    )
    for i in range(sessions):
        state.sessions[str(i)] = LiveConnection(str(i), None)
    return state


def test_the_app_states_refusal_follows_the_measured_load() -> None:
    """The edge sends ``state.refusal()`` as ``busy``: the metrics' commit latencies reach it."""
    world = World()
    settings = Settings(max_sessions=12, scheduler_workers=2, admission="measured")
    state = app_state(settings, world, 2)
    assert state.refusal() is None and not state.at_capacity
    for _ in range(MIN_LAGS):
        state.metrics.observe_commit_latency(6.0)  # the sessions admitted commit 6 s late
    assert state.at_capacity and "commit latency" in (state.refusal() or "")
    exposition = state.metrics.exposition().decode()
    assert "stt_admission" not in exposition  # no state source: nothing read at scrape


def test_the_app_states_fixed_limit() -> None:
    state = app_state(Settings(max_sessions=2, admission=FIXED), World(), 2)
    assert state.refusal() == "the server is at its limit of 2 sessions"


@pytest.mark.parametrize(("max_sessions", "mode"), [(0, "measured"), (5, "fixed")])
def test_auto_admission_is_fixed_for_an_operators_own_limit(max_sessions: int, mode: str) -> None:
    """STT_ADMISSION=auto: the automatic limit is measured, an explicit STT_MAX_SESSIONS fixed."""
    assert Settings(max_sessions=max_sessions).resolved(cores=2).admission == mode
    assert Settings(max_sessions=max_sessions, admission="measured").resolved(cores=2).admission == "measured"
    assert app_state(Settings(max_sessions=max_sessions), World(), 0).admission.limits.mode == mode


def test_at_the_ceiling_the_refusal_names_the_fixed_limit() -> None:
    refused = admission(World(), ceiling=6, prior_call=0.1).state(6)
    assert refused.reason == "the server is at its limit of 6 sessions"


def test_with_no_session_live_one_is_admitted_however_late_the_last_ones_were() -> None:
    world = World()
    a = admission(world)
    world.lag = 9.0
    world.oldest_queued = 5.0
    assert a.state(0).admit
    assert not a.state(1).admit


def test_a_few_words_make_no_commit_lag() -> None:
    world = World()
    recent = RecentValues(clock=world.clock)
    for _ in range(5):
        recent.add(8.0)
    assert recent.quantile(0.9, within=15, at_least=20) is None
    assert recent.quantile(0.9, within=15) == 8.0


def test_the_lateness_of_sessions_gone_is_forgotten_but_not_the_call_time() -> None:
    world = World()
    a = admission(world)
    a.state(3)
    world.run(10, call=0.5, wait=2.0)
    assert not a.state(3).admit  # late
    assert a.state(0).admit  # everyone left
    world.run(1, call=0.5, calls=0)
    again = a.state(1)
    assert again.admit and again.load.queue_age == 0.0 and again.limit == 5  # 2 x (1 + 0.75 / 0.5)


def test_long_calls_alone_still_admit_two_sessions_per_worker() -> None:
    world = World()
    a = admission(world)
    a.state(1)
    world.run(10, call=3.0)  # a very slow machine, nobody late yet
    assert a.state(3).admit and a.state(4).limit == 4 and not a.state(4).admit


def test_a_bursts_first_second_of_calls_is_not_yet_the_measure() -> None:
    world = World()
    a = admission(world, min_span=3.0, prior_call=0.2)
    a.state(0)
    world.run(1, call=1.0)  # the first sessions' first windows: short, full context, dear
    early = a.state(4)
    assert not early.load.measured and early.limit == 10  # 2 × (1 + 0.85 / 0.2), the prior call
    world.run(3, call=1.0)
    assert a.state(4).load.measured and a.state(4).limit == 4
