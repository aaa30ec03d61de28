"""What a live session tells the scheduler about each turn (its Urgency) and what it reports to
its observer (each update's lag, each committed word's latency)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from tests.support.fakes import run
from tests.support.sessions import FakeDecoder, hello, make_session
from wirescribe.asr.model import DecodeOptions
from wirescribe.asr.scheduler import PriorityFn, Scheduler
from wirescribe.streaming.urgency import Urgency


class SpyScheduler(Scheduler):
    """The real scheduler, recording each turn's urgency as queued."""

    def __init__(self) -> None:
        super().__init__(hello)
        self.urgencies: list[Urgency | None] = []

    async def transcribe_latest(self, build: Callable[[], Any], priority: PriorityFn | None = None) -> Any:
        got = priority() if priority is not None else None
        assert got is None or isinstance(got, Urgency)
        self.urgencies.append(got)
        return await super().transcribe_latest(build, priority)


class Observer:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.latencies: list[float] = []

    def observe_lag(self, seconds: float) -> None:
        self.lags.append(seconds)

    def observe_commit_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)


def speech(seconds: float) -> bytes:
    return np.zeros(int(seconds * 16000), dtype="<i2").tobytes()  # the fake VAD calls it speech


def test_turns_carry_when_the_sessions_words_began_to_wait_and_the_last_closes() -> None:
    async def main() -> list[Urgency | None]:
        scheduler = SpyScheduler()
        await scheduler.start()
        decoder = FakeDecoder()
        try:
            async with make_session(decoder, scheduler) as session:
                worker = asyncio.create_task(session.run())
                for _ in range(10):
                    await session.feed(speech(0.2))
                    await asyncio.sleep(0.02)
                await session.end_input()
                await asyncio.wait_for(worker, 5)
        finally:
            await scheduler.stop()
        return scheduler.urgencies

    urgencies = [u for u in run(main) if u is not None]
    live, last = urgencies[:-1], urgencies[-1]
    assert live and all(u.since is not None for u in live)  # speech waits from when it was decoded
    assert all(not u.closing for u in live[:2])  # a refresh, not a closing window
    assert last.closing and last.new_speech  # the end of input goes before every refresh


def test_the_observer_sees_lag_and_commit_latency() -> None:
    observer = Observer()

    async def main() -> str:
        scheduler = Scheduler(hello)
        await scheduler.start()
        decoder = FakeDecoder()
        try:
            session = make_session(decoder, scheduler)
            session._observer = observer  # make_session builds it without one
            async with session:
                worker = asyncio.create_task(session.run())
                await session.feed(speech(2.0))
                await session.end_input()
                final = await asyncio.wait_for(worker, 5)
                return final.text
        finally:
            await scheduler.stop()

    text = run(main)
    assert "hello" in text
    assert observer.lags and all(lag >= 0 for lag in observer.lags)
    assert len(observer.latencies) == len(text.split()) and all(x >= 0 for x in observer.latencies)


def test_a_file_chunk_queues_without_an_urgency() -> None:
    """Plain ``transcribe`` (file chunks) is ordered by queue time: no urgency to read."""
    scheduler = SpyScheduler()

    async def main() -> None:
        await scheduler.start()
        try:
            await scheduler.transcribe(np.zeros(1600, dtype=np.float32), DecodeOptions())
        finally:
            await scheduler.stop()

    run(main)
    assert scheduler.urgencies == [None]
