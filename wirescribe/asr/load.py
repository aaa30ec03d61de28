"""What the scheduler measures of its load, and the strong decode it can afford under it.

Kept apart from ``scheduler.py`` (the order and the threads): the counters the app reads
(:class:`SchedulerStats`, for ``/metrics`` and the admission of new sessions in
``api/admission.py``), what each model call reports to its listeners (:class:`JobTiming`), and
the rule that lightens a strong decode when the queue is backed up (:class:`LoadedSearch`).
``scheduler.py`` re-exports every name.

**The strong decode where it pays.** A turn at the urgent rank asking for beam search is a live
session's closing pass: its words are committed whole, and its client waits for them. Alone it
gets what it asked for. When other turns wait with work (the queue is backed up), every second
it spends is a second they wait: it is decoded lighter, so the whole queue stays on time.
``bench/batch_bench.py`` (tiny.en int8, 2 workers of 1 thread, the support-call prompts' closing
windows, 1.5–4 s): the encoder's context is the big cost — a window under 3.5 s is given the
full 30 s (``streaming/decoding.py``) and took 0.50 s a call (4.2 windows/s), with a 12 s
context 0.19 s (9.0 windows/s), the same words; greedy instead of beam 5 gains ~40 % more
(12.4 windows/s). So with one turn waiting a closing window gets a short context; with a
worker's worth of turns waiting, the greedy search too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from wirescribe.asr.types import DecodeOptions

__all__ = [
    "CPU_CLOSING_BATCH",
    "CUDA_BATCH_SIZE",
    "JobTiming",
    "LoadedSearch",
    "SchedulerStats",
    "default_batch_size",
]

CUDA_BATCH_SIZE = 8
# Closing windows one call takes on a CPU, once lightened to greedy (the scheduler batches no
# other). bench/batch_bench.py, 2 workers of 1 thread, the prompts' closing windows with a 12 s
# context, windows/s one by one -> two per call: greedy 6.57 -> 8.52 (load ~4), 2.10 -> 2.38
# (load ~10); beam 5 gains little (5.97 -> 6.22 at load ~4, 1.96 -> 1.99 at ~10: its five
# hypotheses are a batch already) for nearly twice each call's time, so it is not batched; four
# per call did worse than one. A stream alone is never batched: its latency is a single call's.
CPU_CLOSING_BATCH = 2


def default_batch_size(device: str) -> int:
    """Windows per model call when the setting is 0 (auto): a GPU batches; a CPU runs workers
    side by side instead, which answers each window sooner (see ``adapter.py``)."""
    return CUDA_BATCH_SIZE if device == "cuda" else 1


@dataclass(frozen=True)
class SchedulerStats:
    queued: int
    running: int
    jobs_done: int
    busy_seconds: float
    batches: int = 0  # model calls (a batch of one included)
    largest_batch: int = 0
    closing_jobs: int = 0  # turns run at rank URGENT (of jobs_done): a live session's closing windows
    deferred: int = 0  # deferrable turns held back at least once, under load
    oldest_wait: float = 0.0  # seconds the longest-waiting queued turn has waited, by its ``since``
    waited_seconds: float = 0.0  # queue time of every turn run, summed (from queued to taken)
    oldest_queued: float = 0.0  # seconds the longest-queued turn now waiting has been queued
    lightened: int = 0  # strong decodes (closing windows) decoded lighter under load

    @property
    def mean_batch_size(self) -> float:
        """Windows per model call, on average (0.0 before the first)."""
        return self.jobs_done / self.batches if self.batches else 0.0


@dataclass(frozen=True)
class JobTiming:
    """How one model call went: for metrics (see :meth:`Scheduler.add_listener`)."""

    waited: float  # seconds queued before a worker took it
    ran: float  # seconds in the model
    audio_seconds: float
    failed: bool
    batch_size: int = 1  # windows in the model call that ran it
    closing: bool = False  # it ran at rank URGENT (a live session's closing window)
    lightened: bool = False  # a strong decode decoded lighter under load (see LoadedSearch)


@dataclass(frozen=True)
class LoadedSearch:
    """How a strong decode (an urgent turn asking for beam > 1) is lightened when ``backlog``
    other turns with work wait for ``workers`` model workers (see the module's docstring).

    ``backlog`` ≥ ``context_at``: an encoder context of ``context`` seconds instead of a longer
    one or the full 30 s (the window's audio always fits: ``windows.context_frames``);
    ``backlog`` ≥ ``greedy_at`` × ``workers``: beam 1 too (the temperature fallback stays: it
    runs only for a window whose text fails the checks). ``context_at`` 0: never lightened."""

    context: float = 12.0
    context_at: int = 1
    greedy_at: float = 1.0

    def options(self, options: DecodeOptions, *, urgent: bool, backlog: int, workers: int) -> DecodeOptions:
        """``options`` as the load allows (the same object when nothing changes)."""
        if not urgent or options.beam_size <= 1 or self.context_at <= 0 or backlog < self.context_at:
            return options
        context = options.context_seconds
        if context is None or context > self.context:
            context = self.context
        beam = 1 if backlog >= self.greedy_at * max(1, workers) else options.beam_size
        if context == options.context_seconds and beam == options.beam_size:
            return options
        return replace(options, context_seconds=context, beam_size=beam)


NO_LIGHTENING = LoadedSearch(context_at=0)
