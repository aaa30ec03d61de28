"""Prometheus metrics at ``GET /metrics``, one registry per app.

The app's start-up (``wirescribe.api.app``) builds one :class:`Metrics` into its
:class:`~wirescribe.api.state.AppState` and attaches :meth:`Metrics.observe` to the scheduler as a
listener, so every model call is timed; the ``/metrics`` route serves :meth:`Metrics.exposition`.
What the app already knows is read when Prometheus scrapes (live sessions, the scheduler's queue
and busy time, the model and its load time); what only the edges know they count themselves
through the app state's metrics (:meth:`Metrics.count_audio`, :meth:`Metrics.count_error`,
:meth:`Metrics.count_early_commits`), and live sessions report their lag and commit latency to
it as their observer.

Fairness between sessions shows without a label per session: every live session reports its
updates' lag and its committed words' latency into two shared histograms (a session falling
behind fills their upper buckets), and ``stt_scheduler_oldest_wait_seconds`` is how long the
session that has waited longest for its words has waited, at scrape time.

A registry per app, not prometheus_client's global one: tests build many apps in one process,
and two apps registering the same metric names in one registry would collide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wirescribe.api.admission import MIN_LAGS, RecentValues
from wirescribe.asr.scheduler import JobTiming

if TYPE_CHECKING:
    from wirescribe.api.state import AppState

StateSource = Callable[[], "AppState | None"]


class PolicyCounts(Protocol):
    """What a live session's streaming policy counted, read once at its end."""

    early_words: int  # words committed by agreement that a closing pass re-read
    early_disagreed: int  # ... and heard differently
    interrupted_closings: int  # closing passes the resumed speech interrupted


CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: a live update on a CPU takes ~0.1-1 s, a 30 s file chunk a few seconds.
_CALL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Seconds a live session is behind: ~0.2-1 s when the model keeps up, more under load.
_LIVE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 20.0)


class Metrics:
    """The metric objects of one app; increment them from anywhere that has the app."""

    def __init__(self, state: StateSource) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.audio_seconds = Counter(
            "stt_audio_seconds", "Seconds of audio received and decoded", ["source"], registry=r
        )  # source: live (WebSocket sessions) or file (uploads)
        self.errors = Counter(
            "stt_errors", "Errors reported to clients, by protocol error code", ["code"], registry=r
        )
        self.model_call_seconds = Histogram(
            "stt_model_call_seconds",
            "Time in the model per call (a live update or a file chunk)",
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.model_call_failures = Counter("stt_model_call_failures", "Model calls that raised", registry=r)
        self.early_commit_words = Counter(
            "stt_early_commit_words",
            "Words committed before their utterance ended that the closing pass re-read, by whether"
            " it heard them the same (they stay committed either way)",
            ["closing_pass"],
            registry=r,
        )  # closing_pass: agreed or disagreed
        self.interrupted_closings = Counter(
            "stt_closing_passes_interrupted",
            "Closing passes decoded early in a pause that the speech then resumed over: they committed"
            " their words but ended no utterance",
            registry=r,
        )
        self.model_windows = Counter(
            "stt_model_windows",
            "Windows the model transcribed, by kind: closing (ends an utterance: the strong decode)"
            " or other (a tentative refresh, a window cut for length, a file chunk)",
            ["kind"],
            registry=r,
        )
        self.session_lag_seconds = Histogram(
            "stt_session_lag_seconds",
            "Live sessions, per update: seconds of audio decoded that the update's window did not"
            " cover yet when its result was applied",
            buckets=_LIVE_BUCKETS,
            registry=r,
        )
        self.commit_latency_seconds = Histogram(
            "stt_commit_latency_seconds",
            "Live sessions, per committed word: seconds from decoding the audio of its end to committing it",
            buckets=_LIVE_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "stt_scheduler_wait_seconds",
            "Time a model call waited in the scheduler's queue",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.sessions_opened = Counter(
            "stt_sessions", "Live sessions accepted (past the token, origin and capacity checks)", registry=r
        )
        self.file_transcriptions = Counter(
            "stt_file_transcriptions", "Files transcribed through /v1/audio/transcriptions", registry=r
        )
        self.file_transcriptions_in_progress = Gauge(
            "stt_file_transcriptions_in_progress", "Uploads being received or transcribed now", registry=r
        )
        self.file_transcriptions_waiting = Gauge(
            "stt_file_transcriptions_waiting",
            "Uploads waiting for their turn (STT_MAX_FILE_JOBS)",
            registry=r,
        )
        self.recent_commit_latency = RecentValues()  # for admission by measured load (admission.py)
        r.register(_StateCollector(state))

    def observe(self, timing: JobTiming) -> None:
        """A scheduler listener: one finished model call."""
        self.model_call_seconds.observe(timing.ran)
        self.queue_wait_seconds.observe(timing.waited)
        self.model_windows.labels("closing" if timing.closing else "other").inc()
        if timing.failed:
            self.model_call_failures.inc()

    def observe_lag(self, seconds: float) -> None:
        """A live update was applied this far behind the session's decoded audio."""
        self.session_lag_seconds.observe(seconds)

    def observe_commit_latency(self, seconds: float) -> None:
        """A live session committed a word this long after the audio of its end was decoded."""
        self.commit_latency_seconds.observe(seconds)
        self.recent_commit_latency.add(seconds)

    def commit_lag_p90(self, within: float) -> float | None:
        """The 90th percentile of the commit latencies of the last ``within`` seconds (None: none)."""
        return self.recent_commit_latency.quantile(0.9, within, MIN_LAGS)

    def count_early_commits(self, words: int, disagreed: int) -> None:
        """A session's words committed early, and how many its closing passes heard otherwise."""
        self.early_commit_words.labels("agreed").inc(words - disagreed)
        self.early_commit_words.labels("disagreed").inc(disagreed)

    def count_session(self, policy: PolicyCounts) -> None:
        """A live session's policy counts, at its end (the edge's one call)."""
        self.count_early_commits(policy.early_words, policy.early_disagreed)
        self.count_interrupted_closings(policy.interrupted_closings)

    def count_interrupted_closings(self, passes: int) -> None:
        """A session's closing passes that the resumed speech interrupted (counted at its end)."""
        if passes > 0:
            self.interrupted_closings.inc(passes)

    def count_error(self, code: str) -> None:
        """One error reported to a client (``code``: the protocol's error codes)."""
        self.errors.labels(code=code).inc()

    def count_audio(self, seconds: float, source: str = "live") -> None:
        """``seconds`` of audio received and decoded (``source``: live or file)."""
        if seconds > 0:
            self.audio_seconds.labels(source=source).inc(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Reads the app's state at scrape time: nothing to keep in step, nothing to hook."""

    def __init__(self, state: StateSource) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state()
        if state is None:  # still starting
            return
        yield GaugeMetricFamily(
            "stt_live_sessions", "Open /ws/transcribe sessions", value=len(state.sessions)
        )
        stats = state.scheduler.stats()
        yield GaugeMetricFamily(
            "stt_scheduler_queue_depth", "Model calls waiting for a worker", value=stats.queued
        )
        yield GaugeMetricFamily("stt_scheduler_running", "Model calls running now", value=stats.running)
        yield CounterMetricFamily(
            "stt_scheduler_busy_seconds", "Seconds the workers spent in the model", value=stats.busy_seconds
        )
        yield CounterMetricFamily("stt_scheduler_jobs", "Model calls finished", value=stats.jobs_done)
        yield GaugeMetricFamily(
            "stt_scheduler_oldest_wait_seconds",
            "How long the queued turn that has waited longest for its words has waited",
            value=stats.oldest_wait,
        )
        yield CounterMetricFamily(
            "stt_scheduler_deferred",
            "Refreshes held back under load for having no new speech (shed before other work)",
            value=stats.deferred,
        )
        yield CounterMetricFamily(
            "stt_scheduler_lightened",
            "Closing windows decoded lighter (shorter context, greedy) while other turns waited",
            value=stats.lightened,
        )
        yield from _admission(state)
        model = state.transcriber
        info = GaugeMetricFamily(
            "stt_model_info", "The loaded model (always 1)", labels=["model", "device", "compute_type"]
        )
        info.add_metric([str(model.name), str(model.device), str(model.compute_type)], 1)
        yield info
        if model.load_seconds is not None:
            yield GaugeMetricFamily(
                "stt_model_load_seconds", "Time loading the model took", value=model.load_seconds
            )


def _admission(state: AppState) -> Iterator[Metric]:
    """The admission of live sessions now (``admission.py``): what it measured and decided."""
    a = state.admission_state()
    yield GaugeMetricFamily(
        "stt_admission_open",
        "1 while a new live session is admitted, 0 while it gets busy",
        value=int(a.admit),
    )
    yield GaugeMetricFamily(
        "stt_admission_limit",
        "Live sessions admitted at most now (measured, or the fixed limit)",
        value=a.limit,
    )
    yield GaugeMetricFamily(
        "stt_admission_ceiling", "The fixed session limit (STT_MAX_SESSIONS)", value=a.ceiling
    )
    load = a.load
    yield GaugeMetricFamily(
        "stt_admission_call_seconds",
        "A model call's time over the window (measured, or the prior): what the limit is sized by",
        value=load.call_seconds,
    )
    if load.busy is not None:
        yield GaugeMetricFamily(
            "stt_admission_busy_fraction",
            "Workers' time in the model over the window, per worker",
            value=load.busy,
        )
    if load.commit_lag_p90 is not None:
        yield GaugeMetricFamily(
            "stt_admission_commit_lag_p90_seconds",
            "90th percentile of committed-word latency over the window",
            value=load.commit_lag_p90,
        )
    yield GaugeMetricFamily(
        "stt_admission_queue_age_seconds",
        "Mean queue time of the model calls of the window, or the oldest queued call's age if longer",
        value=load.queue_age,
    )
