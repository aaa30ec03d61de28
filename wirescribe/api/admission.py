"""Admission of live sessions by measured load: the next client gets ``busy``/1013 instead of a lag.

A fixed session limit is a guess about what sessions cost: six per model worker held dense
read speech within its targets on 2 cores, but short turns (a closing pass every few seconds)
cost more, and twelve sessions of them were all served seconds late. Here the limit follows
what the scheduler measures, so that a session admitted keeps its latency:

* **busy fraction**: seconds the workers spent in the model per second, per worker, over the
  last ``window`` seconds (the scheduler's ``busy_seconds``, sampled at each decision);
* **cost per session**: that busy time divided by the sessions live meanwhile — what one more
  session will add. Before anything is measured (or while little is) the ``prior_cost``
  stands; a measured cost is held as a peak that decays with ``cost_memory`` seconds, so a
  lull (sessions in silence) does not open the door to more than a busy minute can serve;
* **commit lag**: the 90th percentile of live sessions' committed-word latency over the window;
* **queue age**: the mean queue time of the model calls run over the window, or how long the
  oldest waiting turn has been queued, whichever is longer.

The **limit** is ``target_busy × workers / cost`` sessions, at most the fixed ceiling
(``STT_MAX_SESSIONS``, auto: 6 per worker). A new session is refused when the sessions live
reach it, or when any signal says the sessions already admitted are late (commit lag, queue
age or busy fraction past its bound; the lag once ``MIN_LAGS`` words are committed in the
window): then the limit is the sessions live. With no session live, one is always admitted. With
``STT_ADMISSION=fixed`` only the ceiling counts, as before.

Pure but for the clock and the two sources it is handed (the scheduler's stats, the recent
commit latencies), so the tests drive it with fakes.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass

from wirescribe.asr.load import SchedulerStats

__all__ = ["MIN_LAGS", "Admission", "AdmissionLimits", "AdmissionState", "Load", "RecentValues"]

Clock = Callable[[], float]
MEASURED, FIXED = "measured", "fixed"
MODES = (MEASURED, FIXED)
MIN_LAGS = 20  # committed words in the window before their latency's p90 counts (one sentence's few do not)


class RecentValues:
    """Values observed over the last ``horizon`` seconds (a live session's commit latencies),
    for a quantile of the recent ones. Bounded: at most ``cap`` kept."""

    def __init__(self, horizon: float = 30.0, clock: Clock = time.monotonic, cap: int = 4096) -> None:
        self._horizon = horizon
        self._clock = clock
        self._values: deque[tuple[float, float]] = deque(maxlen=cap)

    def add(self, value: float) -> None:
        self._values.append((self._clock(), value))

    def quantile(self, q: float, within: float, at_least: int = 1) -> float | None:
        """The ``q`` quantile of the values of the last ``within`` seconds (None: fewer than
        ``at_least`` of them)."""
        now = self._clock()
        while self._values and self._values[0][0] < now - self._horizon:
            self._values.popleft()
        recent = sorted(v for t, v in self._values if t >= now - within)
        if not recent or len(recent) < at_least:
            return None
        return recent[min(len(recent) - 1, math.ceil(q * len(recent)) - 1)]


@dataclass(frozen=True)
class AdmissionLimits:
    """The bounds of measured admission (see the module's docstring)."""

    ceiling: int  # the fixed limit (STT_MAX_SESSIONS, resolved): never more sessions than this
    workers: int  # model calls at once: the capacity busy time is measured against
    mode: str = MEASURED  # or FIXED: the ceiling alone
    target_busy: float = 0.75  # the busy fraction the limit is sized for
    max_busy: float = 0.92  # past it the workers are saturated: no new session
    max_commit_lag: float = 3.0  # seconds, p90 of committed-word latency: no new session past it
    max_queue_age: float = 1.0  # seconds a model call waits for a worker: no new session past it
    window: float = 15.0  # seconds of history the signals are measured over
    min_span: float = 5.0  # seconds of history before a cost is measured (the prior until then)
    prior_cost: float = 0.15  # fraction of one worker a live session costs, before it is measured
    min_cost: float = 0.02  # a measured cost is at least this (sessions all silent cost ~0)
    cost_memory: float = 60.0  # seconds over which a measured peak cost decays to the present


@dataclass(frozen=True)
class Load:
    """What was measured at a decision."""

    busy: float | None  # fraction of the workers' time in the model over the window (None: unknown)
    cost_per_session: float  # fraction of one worker one live session costs (measured or prior)
    measured: bool  # cost_per_session comes from measurement, not the prior
    commit_lag_p90: float | None  # seconds (None: no word committed within the window)
    queue_age: float  # seconds


@dataclass(frozen=True)
class AdmissionState:
    """The admission decision now: for the edge (``admit``, ``reason``), ``/health`` and ``/metrics``."""

    mode: str
    admit: bool
    limit: int  # sessions admitted at most now (the sessions live when a signal says no)
    sessions: int
    ceiling: int
    reason: str | None  # why a new session is refused (None: admitted)
    load: Load

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["load"] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out["load"].items()}
        return out


@dataclass(frozen=True)
class _Sample:
    at: float
    busy_seconds: float
    jobs: int
    waited_seconds: float
    sessions: int


class Admission:
    """Decides whether one more live session fits (see the module's docstring)."""

    def __init__(
        self,
        limits: AdmissionLimits,
        stats: Callable[[], SchedulerStats],
        commit_lag: Callable[[float], float | None],
        clock: Clock = time.monotonic,
    ) -> None:
        """``stats``: the scheduler's counters now; ``commit_lag(within)``: the p90 of the
        commit latencies of the last ``within`` seconds (None: none)."""
        if limits.mode not in MODES:
            raise ValueError(f"admission mode must be one of {', '.join(MODES)}, not {limits.mode!r}")
        self.limits = limits
        self._stats = stats
        self._commit_lag = commit_lag
        self._clock = clock
        self._samples: deque[_Sample] = deque()
        self._cost: tuple[float, float] | None = None  # (peak measured cost, when measured)

    def state(self, sessions: int) -> AdmissionState:
        """Whether one more session is admitted now, with ``sessions`` live."""
        lim = self.limits
        load = self._measure(sessions)
        if lim.mode == FIXED:
            admit = sessions < lim.ceiling
            reason = None if admit else f"the server is at its limit of {lim.ceiling} sessions"
            return AdmissionState(lim.mode, admit, lim.ceiling, sessions, lim.ceiling, reason, load)
        limit = min(lim.ceiling, max(1, math.floor(lim.target_busy * lim.workers / load.cost_per_session)))
        late = self._late(load) if sessions else None  # with none live, none is late now
        if late is not None:
            limit = min(limit, sessions)
        admit = sessions < limit
        reason = None
        if not admit and late is None and limit == lim.ceiling:
            reason = f"the server is at its limit of {lim.ceiling} sessions"
        elif not admit:
            why = late or f"{load.cost_per_session:.2f} of a model worker each, {lim.workers} worker(s)"
            reason = f"the server is at its measured capacity of {limit} sessions ({why})"
        return AdmissionState(lim.mode, admit, limit, sessions, lim.ceiling, reason, load)

    def _late(self, load: Load) -> str | None:
        """Which signal says the sessions admitted are served late (None: none)."""
        lim = self.limits
        if load.commit_lag_p90 is not None and load.commit_lag_p90 > lim.max_commit_lag:
            return f"commit latency p90 {load.commit_lag_p90:.1f} s, over {lim.max_commit_lag:g} s"
        if load.queue_age > lim.max_queue_age:
            return f"model calls wait {load.queue_age:.1f} s for a worker, over {lim.max_queue_age:g} s"
        if load.busy is not None and load.busy > lim.max_busy:
            return f"the model is busy {load.busy:.0%} of the time"
        return None

    def _measure(self, sessions: int) -> Load:
        lim = self.limits
        now = self._clock()
        stats = self._stats()
        sample = _Sample(now, stats.busy_seconds, stats.jobs_done, stats.waited_seconds, sessions)
        # The window's baseline: the newest sample at least a window old (older ones dropped).
        while len(self._samples) > 1 and self._samples[1].at <= now - lim.window:
            self._samples.popleft()
        if not self._samples or now - self._samples[-1].at >= 0.25:  # a burst of decisions: one sample
            self._samples.append(sample)
        first = self._samples[0]
        span = now - first.at
        busy = (stats.busy_seconds - first.busy_seconds) / (span * lim.workers) if span > 0 else None
        jobs = stats.jobs_done - first.jobs
        queue_age = (stats.waited_seconds - first.waited_seconds) / jobs if jobs > 0 else 0.0
        live = self._mean_sessions(sample)
        measured = busy is not None and span >= lim.min_span and live >= 1
        if measured:
            assert busy is not None
            self._hold(max(lim.min_cost, busy * lim.workers / live), now)
        cost = self._held_cost(now)
        return Load(
            busy=busy,
            cost_per_session=cost if cost is not None else lim.prior_cost,
            measured=cost is not None,
            commit_lag_p90=self._commit_lag(lim.window),
            queue_age=max(queue_age, stats.oldest_queued),
        )

    def _mean_sessions(self, last: _Sample) -> float:
        """Sessions live over the samples' span, each interval counted at its end's count (the
        count is known only at the samples; a burst of arrivals counts from the last one)."""
        points = [*self._samples, last] if self._samples[-1] is not last else list(self._samples)
        span = points[-1].at - points[0].at
        if span <= 0:
            return float(last.sessions)
        return sum(b.sessions * (b.at - a.at) for a, b in itertools.pairwise(points)) / span

    def _hold(self, cost: float, now: float) -> None:
        held = self._held_cost(now)
        if held is None or cost >= held:
            self._cost = (cost, now)

    def _held_cost(self, now: float) -> float | None:
        """The peak measured cost, decayed toward the present over ``cost_memory`` seconds."""
        if self._cost is None:
            return None
        peak, at = self._cost
        return peak * math.exp(-(now - at) / self.limits.cost_memory)
