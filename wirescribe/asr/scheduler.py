"""The one place that decides which caller's window the shared model sees next.

Model calls run on a small pool of worker threads, never on the event loop. Each caller (a live
session, an upload) has at most one turn queued or running (it awaits the result before asking
again), so a caller whose audio outruns the model coalesces instead of queueing.

A caller hands over not a window but a way to build one (:meth:`Scheduler.transcribe_latest`):
the worker builds it when its turn comes, from the newest audio (a window cut at enqueue time
reached the model stale: four streams, ~0.8 s more commit latency).

**Which turn goes next.** A caller also hands over a way to read its turn's :class:`Priority`,
read each time a worker frees (what a turn holds changes while it waits). What makes a turn
urgent is the streaming layer's business (``streaming/urgency.py``); here a worker takes the
turn with the lowest ``rank`` (:data:`URGENT` first: for a live session, a window that commits
words its client waits for), then the earliest ``since`` (scheduler clock: since when its caller
has waited; without one, from when it was queued), then the first queued.

**Shedding.** A ``deferrable`` turn (it can do little now: for a live session, a refresh with
nothing new heard since its last window) is held back while other turns have work and no worker
is idle for it: it keeps its place, coalesces, and runs once the model has room. **Lightening**:
an urgent turn asking for beam search is decoded lighter while others wait with work (``load.py``).

With ``batch_size`` > 1 a worker takes the first turn and, in the same order, the next ones
waiting, up to ``batch_size``, and hands them to ``batch_fn`` in one call (``adapter.py``): on a
GPU a batch costs little more than one window. On a CPU only closing windows lightened to greedy
are, up to ``closing_batch`` (``load.py``). Each caller still gets its own result or error.

The clock (``time.monotonic`` unless given) is the scheduler's own, :attr:`Scheduler.clock`:
callers stamp ``since`` with it, and tests hand in a simulated one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import numpy as np

from wirescribe.asr.load import (
    CPU_CLOSING_BATCH,
    NO_LIGHTENING,
    JobTiming,
    LoadedSearch,
    SchedulerStats,
    default_batch_size,
)
from wirescribe.asr.types import BatchItem, DecodeOptions, ModelBackend, Transcript

__all__ = [  # the load's vocabulary lives in load.py; re-exported for the scheduler's callers
    "NORMAL", "URGENT", "JobTiming", "LoadedSearch", "PlainPriority", "Priority", "Scheduler",
    "SchedulerClosed", "SchedulerStats", "default_batch_size",
]  # fmt: skip

log = logging.getLogger(__name__)

TranscribeFn = Callable[[np.ndarray, DecodeOptions], Transcript]
BatchFn = Callable[[list[BatchItem]], list[Transcript]]
Clock = Callable[[], float]


class SchedulerClosed(Exception):
    """The scheduler is shutting down and takes no more work."""


URGENT = 0  # the rank of a turn that goes before every other (counted in ``closing_jobs``)
NORMAL = 1  # the rank of every other turn


class Priority(Protocol):
    """A queued turn's place in the order, as its caller sees it now (see the module's docstring):
    ``rank`` (lower goes first), ``since`` (scheduler clock; None: from when it was queued) and
    ``deferrable`` (it can do little now: held back while other turns have work)."""

    @property
    def rank(self) -> int: ...
    @property
    def since(self) -> float | None: ...
    @property
    def deferrable(self) -> bool: ...


@dataclass(frozen=True)
class PlainPriority:
    """A :class:`Priority` that is nothing but its three values (the default of a turn queued
    without one: a normal rank, counted from when it was queued, never held back)."""

    rank: int = NORMAL
    since: float | None = None
    deferrable: bool = False


PriorityFn = Callable[[], Priority]


JobListener = Callable[[JobTiming], None]


T = TypeVar("T")


@dataclass
class _Job:
    build: Callable[[], tuple[np.ndarray, DecodeOptions, Any] | None]
    future: asyncio.Future[tuple[Any, Transcript] | None]
    queued_at: float
    priority: PriorityFn | None = None
    seq: int = 0
    built: tuple[np.ndarray, DecodeOptions, Any] | None = None  # set when a worker builds it
    now: Priority = field(default_factory=PlainPriority)  # the priority read at the last pick
    deferred: bool = False  # held back at least once (deferrable, under load)
    lightened: bool = False  # a closing window decoded lighter under load

    def read_priority(self) -> bool:
        """Read the turn's priority into :attr:`now`; False (the caller gets the error) when the
        caller's callable fails."""
        if self.priority is None:
            self.now = PlainPriority()
            return True
        try:
            self.now = self.priority()
        except Exception as e:  # noqa: BLE001 - the caller's own error, handed back to it
            self.future.set_exception(e)
            return False
        return True

    def key(self) -> tuple[int, float, int]:
        """The order of turns: the lowest rank, then the longest wait, then first come."""
        since = self.now.since if self.now.since is not None else self.queued_at
        return (self.now.rank, since, self.seq)

    @property
    def urgent(self) -> bool:
        return self.now.rank <= URGENT

    @property
    def has_work(self) -> bool:
        return not self.now.deferrable

    def prepare(self) -> bool:
        """Build the window now; False (and the caller gets None) when there is nothing to do
        or the build failed (the caller gets its error)."""
        try:
            built = self.build()
        except Exception as e:  # noqa: BLE001 - the caller's own error, handed back to it
            self.future.set_exception(e)
            return False
        if built is None:
            self.future.set_result(None)
            return False
        self.built = built
        return True

    @property
    def request(self) -> tuple[np.ndarray, DecodeOptions]:
        """(audio, options) of the window :meth:`prepare` built."""
        assert self.built is not None, "a job runs only once prepared"
        return self.built[0], self.built[1]

    @property
    def tag(self) -> Any:
        assert self.built is not None, "a job runs only once prepared"
        return self.built[2]


class Scheduler:
    """Fair, coalescing front of the shared model."""

    def __init__(
        self,
        transcribe: TranscribeFn,
        workers: int = 1,
        *,
        batch_size: int = 1,
        batch_fn: BatchFn | None = None,
        clock: Clock = time.monotonic,
        search: LoadedSearch = NO_LIGHTENING,
        closing_batch: int = 1,
    ) -> None:
        """``batch_fn`` decodes several windows in one call (default: ``transcribe`` on each in
        turn, in one thread call); it is used only with ``batch_size`` > 1, when more than one
        window waits. A batch that fails is retried window by window, so an error reaches only
        the caller whose window caused it. ``clock``: the time a :class:`Priority`'s ``since``
        is stamped in. ``closing_batch``: urgent turns one call takes when ``batch_size`` is less."""
        self._transcribe = transcribe
        self._workers = max(1, workers)
        self._batch_size = max(1, batch_size)
        self._batch_fn = batch_fn
        self.clock = clock
        self._waiting: list[_Job] = []
        self._arrived = asyncio.Event()  # set when a turn is queued or the scheduler stops
        self._seq = itertools.count()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="whisper")
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._done = 0
        self._urgent_done = 0
        self._deferred = 0
        self._busy = 0.0
        self._closed = False
        self._batches = 0
        self._largest_batch = 0
        self._listeners: list[JobListener] = []
        self._search = search
        self._closing_batch = max(1, closing_batch) if batch_fn is not None else 1
        self._waited = 0.0  # queue time of every turn run, summed
        self._lightened = 0

    @classmethod
    def for_transcriber(cls, transcriber: ModelBackend, workers: int = 1, batch_size: int = 0) -> Scheduler:
        """The server's scheduler in front of ``transcriber``; ``batch_size`` 0 picks the
        device's default (8 on CUDA, 1 on a CPU, where batching gains nothing)."""
        size = batch_size or default_batch_size(transcriber.device)
        return cls(transcriber.transcribe, workers, batch_size=size, batch_fn=transcriber.transcribe_batch,
                   search=LoadedSearch(), closing_batch=CPU_CLOSING_BATCH)  # fmt: skip

    @property
    def batch_size(self) -> int:
        """The most windows one model call takes."""
        return self._batch_size

    @property
    def workers(self) -> int:
        """Model calls run at once."""
        return self._workers

    def add_listener(self, listener: JobListener) -> None:
        """Call ``listener`` (on the event loop, so it must be quick) after every model call."""
        self._listeners.append(listener)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        """Fail the queued jobs, let the running ones finish, then release the threads."""
        self._closed = True
        waiting, self._waiting = self._waiting, []
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(SchedulerClosed("server shutting down"))
        self._arrived.set()  # wakes each idle worker so it can exit
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def stats(self) -> SchedulerStats:
        now = self.clock()
        waits = [now - j.now.since for j in self._waiting if j.now.since is not None]
        waits += [now - j.queued_at for j in self._waiting if j.now.since is None and j.priority is None]
        queued = max((now - j.queued_at for j in self._waiting if not j.future.done()), default=0.0)
        return SchedulerStats(
            len(self._waiting), self._running, self._done, self._busy, self._batches, self._largest_batch,
            self._urgent_done, self._deferred, max(waits, default=0.0), self._waited, queued, self._lightened,
        )  # fmt: skip

    async def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        """Queue one window and wait for its transcript (in turn with the others, by the time
        it was queued: a file chunk)."""
        done = await self.transcribe_latest(lambda: (audio, options, None))
        assert done is not None
        return done[1]

    async def transcribe_latest(
        self,
        build: Callable[[], tuple[np.ndarray, DecodeOptions, T] | None],
        priority: PriorityFn | None = None,
    ) -> tuple[T, Transcript] | None:
        """Queue a turn; when a worker reaches it, ``build()`` (on the event loop) makes the
        window from the newest audio: (audio, options, tag), or None when there is nothing to
        transcribe. Returns (tag, transcript), or None when ``build`` returned None.

        ``priority()`` (on the event loop, each time a worker chooses; it must be quick) says
        where the turn stands now; without it the turn waits its turn from when it was queued."""
        if self._closed:
            raise SchedulerClosed("server shutting down")
        future: asyncio.Future[tuple[Any, Transcript] | None] = asyncio.get_running_loop().create_future()
        job = _Job(build, future, self.clock(), priority, next(self._seq))
        job.read_priority()
        self._waiting.append(job)
        self._arrived.set()
        return await future

    def _pick(self, urgent_only: bool = False) -> _Job | None:
        """The turn that goes next (module docstring), or None: none waits (or, ``urgent_only``, it
        is not urgent). Turns nobody waits for are dropped; a deferrable one is held back."""
        live = [j for j in self._waiting if not j.future.done() and j.read_priority()]
        if not live:
            self._waiting = []
            return None
        working = [j for j in live if j.has_work]
        if len(working) >= self._workers - self._running:  # no idle worker is left for the others
            for j in live:
                if not j.has_work and not j.deferred:
                    j.deferred = True
                    self._deferred += 1
        best = min(working or live, key=_Job.key)
        self._waiting = [j for j in live if j is not best or (urgent_only and not best.urgent)]
        return best if best.urgent or not urgent_only else None

    async def _next(self) -> list[_Job] | None:
        """The next turns to run together (built, at least one), or None once stopped."""
        while not self._closed:
            job = self._pick()
            if job is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if not job.prepare():  # no window: its turn is over, and costs no model call
                continue
            return [job, *self._more_jobs(job, self._lighten(job))]
        return None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while (jobs := await self._next()) is not None:
            started = time.perf_counter()
            waited = [self.clock() - j.queued_at for j in jobs]
            self._running += len(jobs)
            outcomes: list[Transcript | Exception | None] = [None] * len(jobs)  # None: never ran
            try:
                items = [j.request for j in jobs]
                outcomes[:] = await loop.run_in_executor(self._pool, self._run, items)
            finally:
                self._finish(jobs, outcomes, started, waited)

    def _finish(
        self,
        jobs: list[_Job],
        outcomes: list[Transcript | Exception | None],
        started: float,
        waited: list[float],
    ) -> None:
        """Hand each caller its result or error, count the model call, tell the listeners."""
        ran = time.perf_counter() - started
        self._running -= len(jobs)
        self._done += len(jobs)
        self._urgent_done += sum(j.urgent for j in jobs)
        self._busy += ran
        self._waited += sum(waited)
        self._batches += 1
        self._largest_batch = max(self._largest_batch, len(jobs))
        for job, outcome, wait in zip(jobs, outcomes, waited, strict=True):
            if not job.future.done():
                if isinstance(outcome, Exception):
                    job.future.set_exception(outcome)
                elif outcome is not None:
                    job.future.set_result((job.tag, outcome))
            failed = outcome is None or isinstance(outcome, Exception)
            seconds = len(job.request[0]) / 16000
            timing = JobTiming(wait, ran, seconds, failed, len(jobs), job.urgent, job.lightened)
            for listener in self._listeners:
                listener(timing)

    def _more_jobs(self, first: _Job, backlog: int) -> list[_Job]:
        """Up to ``batch_size`` - 1 more turns, in order, to run with ``first``; after a greedy
        urgent one (lightened), up to ``closing_batch`` - 1 urgent ones, lightened alike."""
        closing = first.urgent and first.request[1].beam_size == 1 and self._closing_batch > self._batch_size
        size = self._closing_batch if closing else self._batch_size
        more: list[_Job] = []
        while len(more) < size - 1 and (job := self._pick(urgent_only=closing)) is not None:
            if job.prepare():
                self._lighten(job, backlog)
                more.append(job)
        return more

    def _lighten(self, job: _Job, backlog: int | None = None) -> int:
        """Lighten a closing window by the backlog (``load.py``; a batch's mates by its first's)."""
        audio, options = job.request
        if backlog is None:
            backlog = sum(1 for j in self._waiting if j.has_work and not j.future.done())
        lighter = self._search.options(options, urgent=job.urgent, backlog=backlog, workers=self._workers)
        if lighter is not options:
            job.built = (audio, lighter, job.tag)
            job.lightened = True
            self._lightened += 1
        return backlog

    def _run(self, items: list[tuple[np.ndarray, DecodeOptions]]) -> list[Transcript | Exception]:
        """In a worker thread: each window's transcript, or the error that is its caller's."""
        if len(items) == 1 or self._batch_fn is None:
            return [self._run_one(*item) for item in items]
        try:
            results = self._batch_fn(items)
            if len(results) != len(items):
                raise RuntimeError(f"a batch of {len(items)} windows gave {len(results)} results")
            return list(results)
        except Exception as e:  # noqa: BLE001 - each window is retried alone, its error kept
            log.warning("a batch of %d windows failed (%s); running them one by one", len(items), e)
            return [self._run_one(*item) for item in items]

    def _run_one(self, audio: np.ndarray, options: DecodeOptions) -> Transcript | Exception:
        try:
            return self._transcribe(audio, options)
        except Exception as e:  # noqa: BLE001 - handed to the waiting caller, not swallowed
            return e
