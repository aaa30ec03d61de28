"""The one place that decides which session's window the shared model sees next.

Model calls run on a small pool of worker threads, never on the event loop. Each session has at
most one request in flight (it awaits the result before building its next window from its newest
audio), so a session whose audio outruns the model coalesces instead of queueing, and the FIFO
queue here serves sessions round-robin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from transcriber import DecodeOptions, Transcript

log = logging.getLogger(__name__)

TranscribeFn = Callable[[np.ndarray, DecodeOptions], Transcript]


class SchedulerClosed(Exception):
    """The scheduler is shutting down and takes no more work."""


@dataclass(frozen=True)
class SchedulerStats:
    queued: int
    running: int
    jobs_done: int
    busy_seconds: float


@dataclass(frozen=True)
class JobTiming:
    """How one model call went: for metrics (see :meth:`Scheduler.add_listener`)."""

    waited: float  # seconds queued before a worker took it
    ran: float  # seconds in the model
    audio_seconds: float
    failed: bool


JobListener = Callable[[JobTiming], None]


@dataclass
class _Job:
    audio: np.ndarray
    options: DecodeOptions
    future: asyncio.Future[Transcript]
    queued_at: float


class Scheduler:
    """Fair, coalescing front of the shared model."""

    def __init__(self, transcribe: TranscribeFn, workers: int = 1) -> None:
        self._transcribe = transcribe
        self._workers = max(1, workers)
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="whisper")
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._done = 0
        self._busy = 0.0
        self._closed = False
        self._listeners: list[JobListener] = []

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
        return SchedulerStats(self._queue.qsize(), self._running, self._done, self._busy)

    async def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        """Queue one window and wait for its transcript."""
        if self._closed:
            raise SchedulerClosed("server shutting down")
        future: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(audio, options, future, time.perf_counter()))
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._queue.get()
            if job is None:  # stop()
                return
            if job.future.done():  # its session went away while it waited
                continue
            started = time.perf_counter()
            self._running += 1
            failed = True
            try:
                result = await loop.run_in_executor(self._pool, self._transcribe, job.audio, job.options)
                failed = False
            except Exception as e:  # noqa: BLE001 - handed to the waiting session, not swallowed
                if not job.future.done():
                    job.future.set_exception(e)
            else:
                if not job.future.done():
                    job.future.set_result(result)
            finally:
                ran = time.perf_counter() - started
                self._running -= 1
                self._done += 1
                self._busy += ran
                timing = JobTiming(started - job.queued_at, ran, len(job.audio) / 16000, failed)
                for listener in self._listeners:
                    listener(timing)
