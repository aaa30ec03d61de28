"""The one place that decides which session's window the shared model sees next.

Model calls run on a small pool of worker threads, never on the event loop. Each session has at
most one request in flight (it awaits the result before building its next window from its newest
audio), so a session whose audio outruns the model coalesces instead of queueing, and the FIFO
queue here serves sessions round-robin.

A session hands over not a window but a way to build one (:meth:`Scheduler.transcribe_latest`):
the worker builds it when its turn comes, from the newest audio. A window cut at enqueue time
would wait behind the other sessions' calls and reach the model already stale (with four streams,
by three calls' time: the benchmark measured ~0.8 s of extra commit latency).

With ``batch_size`` > 1 a worker takes the oldest queued window and every other one waiting, up
to ``batch_size``, and hands them to ``batch_fn`` in one call (``Transcriber.transcribe_batch``,
see ``adapter.py``): on a GPU a batch costs little more than one window. The queued windows are
of different sessions, since each session has one at a time; each caller still gets its own
result or error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from wirescribe.asr.model import BatchItem, DecodeOptions, Transcriber, Transcript

log = logging.getLogger(__name__)

TranscribeFn = Callable[[np.ndarray, DecodeOptions], Transcript]
BatchFn = Callable[[list[BatchItem]], list[Transcript]]

CUDA_BATCH_SIZE = 8


def default_batch_size(device: str) -> int:
    """Windows per model call when the setting is 0 (auto): a GPU batches; a CPU runs workers
    side by side instead, which answers each window sooner (see ``adapter.py``)."""
    return CUDA_BATCH_SIZE if device == "cuda" else 1


class SchedulerClosed(Exception):
    """The scheduler is shutting down and takes no more work."""


@dataclass(frozen=True)
class SchedulerStats:
    queued: int
    running: int
    jobs_done: int
    busy_seconds: float
    batches: int = 0  # model calls (a batch of one included)
    largest_batch: int = 0

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


JobListener = Callable[[JobTiming], None]


T = TypeVar("T")


@dataclass
class _Job:
    build: Callable[[], tuple[np.ndarray, DecodeOptions, Any] | None]
    future: asyncio.Future[tuple[Any, Transcript] | None]
    queued_at: float
    built: tuple[np.ndarray, DecodeOptions, Any] | None = None  # set when a worker builds it

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
    ) -> None:
        """``batch_fn`` decodes several windows in one call (default: ``transcribe`` on each in
        turn, in one thread call); it is used only with ``batch_size`` > 1, when more than one
        window waits. A batch that fails is retried window by window, so an error reaches only
        the caller whose window caused it."""
        self._transcribe = transcribe
        self._workers = max(1, workers)
        self._batch_size = max(1, batch_size)
        self._batch_fn = batch_fn
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="whisper")
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._done = 0
        self._busy = 0.0
        self._closed = False
        self._batches = 0
        self._largest_batch = 0
        self._listeners: list[JobListener] = []

    @classmethod
    def for_transcriber(cls, transcriber: Transcriber, workers: int = 1, batch_size: int = 0) -> Scheduler:
        """The server's scheduler in front of ``transcriber``; ``batch_size`` 0 picks the
        device's default (8 on CUDA, 1 on a CPU, where batching gains nothing)."""
        size = batch_size or default_batch_size(transcriber.device)
        return cls(transcriber.transcribe, workers, batch_size=size, batch_fn=transcriber.transcribe_batch)

    @property
    def batch_size(self) -> int:
        """The most windows one model call takes."""
        return self._batch_size

    def add_listener(self, listener: JobListener) -> None:
        """Call ``listener`` (on the event loop, so it must be quick) after every model call."""
        self._listeners.append(listener)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]

    async def stop(self) -> None:
        """Fail the queued jobs, let the running ones finish, then release the threads."""
        self._closed = True
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(SchedulerClosed("server shutting down"))
        for _ in self._tasks:
            self._queue.put_nowait(None)  # wakes each idle worker so it can exit
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def stats(self) -> SchedulerStats:
        return SchedulerStats(
            self._queue.qsize(), self._running, self._done, self._busy, self._batches, self._largest_batch
        )

    async def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        """Queue one window and wait for its transcript."""
        done = await self.transcribe_latest(lambda: (audio, options, None))
        assert done is not None
        return done[1]

    async def transcribe_latest(
        self, build: Callable[[], tuple[np.ndarray, DecodeOptions, T] | None]
    ) -> tuple[T, Transcript] | None:
        """Queue a turn; when a worker reaches it, ``build()`` (on the event loop) makes the
        window from the newest audio: (audio, options, tag), or None when there is nothing to
        transcribe. Returns (tag, transcript), or None when ``build`` returned None."""
        if self._closed:
            raise SchedulerClosed("server shutting down")
        future: asyncio.Future[tuple[Any, Transcript] | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(build, future, time.perf_counter()))
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            if job is None:  # stop()
                return
            if job.future.done() or not job.prepare():  # its session went away, or has no window
                continue
            jobs = [job, *self._more_jobs()]
            started = time.perf_counter()
            self._running += len(jobs)
            outcomes: list[Transcript | Exception | None] = [None] * len(jobs)  # None: never ran
            try:
                items = [j.request for j in jobs]
                outcomes[:] = await loop.run_in_executor(self._pool, self._run, items)
            finally:
                self._finish(jobs, outcomes, started)

    def _finish(
        self, jobs: list[_Job], outcomes: list[Transcript | Exception | None], started: float
    ) -> None:
        """Hand each caller its result or error, count the model call, tell the listeners."""
        ran = time.perf_counter() - started
        self._running -= len(jobs)
        self._done += len(jobs)
        self._busy += ran
        self._batches += 1
        self._largest_batch = max(self._largest_batch, len(jobs))
        for job, outcome in zip(jobs, outcomes, strict=True):
            if not job.future.done():
                if isinstance(outcome, Exception):
                    job.future.set_exception(outcome)
                elif outcome is not None:
                    job.future.set_result((job.tag, outcome))
            failed = outcome is None or isinstance(outcome, Exception)
            timing = JobTiming(started - job.queued_at, ran, len(job.request[0]) / 16000, failed, len(jobs))
            for listener in self._listeners:
                listener(timing)

    def _more_jobs(self) -> list[_Job]:
        """Up to ``batch_size`` - 1 more queued jobs, oldest first, to run with the one taken."""
        more: list[_Job] = []
        while len(more) < self._batch_size - 1 and not self._queue.empty():
            job = self._queue.get_nowait()
            if job is None:  # stop(): leave it for a worker to find after this batch
                self._queue.put_nowait(None)
                break
            if not job.future.done() and job.prepare():
                more.append(job)
        return more

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
        except Exception as e:  # noqa: BLE001 - handed to the waiting session, not swallowed
            return e
