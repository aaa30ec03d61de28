"""Admission of live sessions by measured load: the next client gets ``busy``/1013 instead of a lag.

A fixed session limit is a guess about what sessions cost: six per model worker held dense
read speech within its targets on 2 cores, but short turns (a closing pass every few seconds)
cost more, and twelve sessions of them were all served seconds late. Here the limit follows
what the scheduler measures, so that a session admitted keeps its latency.

What a live session costs is not its share of the workers' busy time: a session asks for a
refresh whenever a quarter second of audio is new, so one session alone keeps a worker busy
most of the time on a slow machine, and a dozen share the same workers by coalescing. What
grows with each session is the **wait**: with ``n`` sessions each holding a turn, ``W``
workers and model calls of ``t`` seconds, a turn waits about ``t × (n/W - 1)``. So:

* **call time** ``t``: the workers' busy seconds per model call over the last ``window``
  seconds (the scheduler's counters, sampled at each decision), once they span ``min_span``
  (a session's first windows are short and get Whisper's full context: a burst of arrivals'
  first second is dearer than what follows); before, ``prior_call``; with no call in the
  window, the last one measured. It is what the machine does now: a machine shared with
  other work, or a bigger model, shows in it;
* **the limit**: ``W × (1 + target_wait / t)`` sessions, at most the fixed ceiling
  (``STT_MAX_SESSIONS``, auto: 6 per worker) — the sessions whose turns wait ``target_wait`` —
  and at least two per worker (two sessions take turns at one call's wait: a slow machine's
  long calls alone do not refuse the second session; lateness does);
* **late**: the sessions admitted are served late when the 90th percentile of their
  committed-word latency over the window passes ``max_commit_lag`` (once ``MIN_LAGS`` words are
  committed in it), or the queue age does ``max_queue_age`` (the mean queue time of the model
  calls of the window, or how long the oldest waiting turn has been queued, if longer). Then no
  new session is admitted (the limit is the sessions live), whatever the formula says.

With no session live one is always admitted, and the lateness of the sessions gone is forgotten
(the call time measured is kept: it is the machine's). The busy fraction of the workers is shown, not
used. With ``STT_ADMISSION=fixed`` only the ceiling counts, as before. Pure but for the clock
and the two sources it is handed (the scheduler's stats, the recent commit latencies), so the
tests drive it with fakes.
"""

from __future__ import annotations

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
    workers: int  # model calls at once
    mode: str = MEASURED  # or FIXED: the ceiling alone
    # seconds a turn may wait for a worker: what the limit is sized for (0.85: 10 sessions on 2 cores
    # at tiny.en's 0.2 s calls; bench/short_turn_bench.py: 8 kept a 1.73 s worst p90 on a quiet machine)
    target_wait: float = 0.85
    max_commit_lag: float = 3.0  # seconds, p90 of committed-word latency: no new session past it
    max_queue_age: float = 1.0  # seconds a model call waits for a worker: no new session past it
    window: float = 15.0  # seconds of history the signals are measured over
    prior_call: float = 0.2  # seconds per model call before one is measured (tiny.en on a CPU core)
    min_span: float = 3.0  # seconds of calls before they are measured: a new session's first are dearer
    min_per_worker: int = 2  # the formula's least: a worker serves two sessions in turn, a call's wait


@dataclass(frozen=True)
class Load:
    """What was measured at a decision."""

    busy: float | None  # fraction of the workers' time in the model over the window (None: unknown)
    call_seconds: float  # a model call's time over the window (measured, or the prior)
    measured: bool  # call_seconds was measured, not the prior
    commit_lag_p90: float | None  # seconds (None: too few words committed within the window)
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
    calls: int
    jobs: int
    waited_seconds: float


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
        commit latencies of the last ``within`` seconds (None: too few)."""
        if limits.mode not in MODES:
            raise ValueError(f"admission mode must be one of {', '.join(MODES)}, not {limits.mode!r}")
        self.limits = limits
        self._stats = stats
        self._commit_lag = commit_lag
        self._clock = clock
        self._samples: deque[_Sample] = deque()
        self._call: float | None = None  # the last call time measured
        self._quiet = -math.inf  # when no session was live last: lateness is measured since

    def state(self, sessions: int) -> AdmissionState:
        """Whether one more session is admitted now, with ``sessions`` live."""
        lim = self.limits
        if sessions == 0:  # the sessions measured so far are gone: so is their lateness
            self._quiet = self._clock()
            self._samples.clear()
        load = self._measure()
        if lim.mode == FIXED:
            admit = sessions < lim.ceiling
            reason = None if admit else f"the server is at its limit of {lim.ceiling} sessions"
            return AdmissionState(lim.mode, admit, lim.ceiling, sessions, lim.ceiling, reason, load)
        sized = math.floor(lim.workers * (1 + lim.target_wait / load.call_seconds))
        limit = min(lim.ceiling, max(lim.min_per_worker * lim.workers, sized))
        late = self._late(load) if sessions else None  # with none live, none is late now
        if late is not None:
            limit = min(limit, sessions)
        admit = sessions < limit
        reason = None
        if not admit and late is None and limit == lim.ceiling:
            reason = f"the server is at its limit of {lim.ceiling} sessions"
        elif not admit:
            why = late or f"model calls of {load.call_seconds:.2f} s on {lim.workers} worker(s)"
            reason = f"the server is at its measured capacity of {limit} sessions ({why})"
        return AdmissionState(lim.mode, admit, limit, sessions, lim.ceiling, reason, load)

    def _late(self, load: Load) -> str | None:
        """Which signal says the sessions admitted are served late (None: none)."""
        lim = self.limits
        if load.commit_lag_p90 is not None and load.commit_lag_p90 > lim.max_commit_lag:
            return f"commit latency p90 {load.commit_lag_p90:.1f} s, over {lim.max_commit_lag:g} s"
        if load.queue_age > lim.max_queue_age:
            return f"model calls wait {load.queue_age:.1f} s for a worker, over {lim.max_queue_age:g} s"
        return None

    def _measure(self) -> Load:
        lim = self.limits
        now = self._clock()
        stats = self._stats()
        sample = _Sample(now, stats.busy_seconds, stats.batches, stats.jobs_done, stats.waited_seconds)
        # The window's baseline: the newest sample at least a window old (older ones dropped).
        while len(self._samples) > 1 and self._samples[1].at <= now - lim.window:
            self._samples.popleft()
        if not self._samples or now - self._samples[-1].at >= 0.25:  # a burst of decisions: one sample
            self._samples.append(sample)
        first = self._samples[0]
        span = now - first.at
        busy = (stats.busy_seconds - first.busy_seconds) / (span * lim.workers) if span > 0 else None
        calls = stats.batches - first.calls
        if calls > 0 and span >= lim.min_span:
            self._call = (stats.busy_seconds - first.busy_seconds) / calls
        jobs = stats.jobs_done - first.jobs
        queue_age = (stats.waited_seconds - first.waited_seconds) / jobs if jobs > 0 else 0.0
        return Load(
            busy=busy,
            call_seconds=max(self._call or lim.prior_call, 1e-3),
            measured=self._call is not None,
            commit_lag_p90=self._commit_lag(min(lim.window, now - self._quiet)),
            queue_age=max(queue_age, stats.oldest_queued),
        )
