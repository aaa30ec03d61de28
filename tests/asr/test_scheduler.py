"""scheduler.Scheduler with a fake transcribe function that sleeps a little in the worker thread."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TypeVar

import numpy as np
import pytest

from tests.support.fakes import FakeModel, job, run
from wirescribe.asr.scheduler import Scheduler, SchedulerClosed, SchedulerStats
from wirescribe.asr.types import DecodeOptions, Transcript

T = TypeVar("T")


async def started(scheduler: Scheduler) -> Scheduler:
    await scheduler.start()
    return scheduler


def test_results_reach_the_right_caller() -> None:
    model = FakeModel(delay=0.002)

    async def main() -> list[tuple[str, str, float]]:
        s = await started(Scheduler(model))
        try:

            async def call(i: int) -> tuple[str, str, float]:
                audio, options = job(f"job{i}", seconds=0.01 * (i + 1))
                result = await s.transcribe(audio, options)
                return f"job{i}", result.text, result.duration

            return await asyncio.gather(*(call(i) for i in range(30)))
        finally:
            await s.stop()

    for tag, text, duration in run(main):
        assert text == tag
        assert duration == pytest.approx(0.01 * (int(tag[3:]) + 1))
    assert sorted(model.calls) == sorted(f"job{i}" for i in range(30))


def test_model_runs_off_the_event_loop() -> None:
    model = FakeModel(delay=0.3)

    async def main() -> tuple[float, str]:
        s = await started(Scheduler(model))
        try:
            ticks: list[float] = []

            async def ticker() -> None:
                while True:
                    ticks.append(time.monotonic())
                    await asyncio.sleep(0.01)

            t = asyncio.create_task(ticker())
            await s.transcribe(*job("a"))
            t.cancel()
            return max(np.diff(ticks)), threading.current_thread().name
        finally:
            await s.stop()

    gap, loop_thread = run(main)
    assert gap < 0.25  # a model call on the loop would stall it for 0.3 s
    assert loop_thread not in model.threads and all(n.startswith("whisper") for n in model.threads)


def test_sessions_are_served_in_turn() -> None:
    """Three sessions, each with one request in flight at a time: the model serves them round-robin,
    none twice in a row while another waits."""
    model = FakeModel(delay=0.01)

    async def main() -> None:
        s = await started(Scheduler(model))
        try:

            async def session(name: str, n: int) -> None:
                for i in range(n):
                    result = await s.transcribe(*job(f"{name}{i}"))
                    assert result.text == f"{name}{i}"

            await asyncio.gather(session("a", 5), session("b", 5), session("c", 5))
        finally:
            await s.stop()

    run(main)
    order = [c[0] for c in model.calls]
    assert order[:15] == list("abc" * 5)


def test_queue_is_fifo() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()  # hold the first job while the others queue up

    async def main() -> list[str]:
        s = await started(Scheduler(model))
        try:
            tasks = [asyncio.create_task(s.transcribe(*job(f"j{i}"))) for i in range(8)]
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            assert s.stats().queued == 7 and s.stats().running == 1
            model.release.set()
            results = await asyncio.gather(*tasks)
            return [r.text for r in results]
        finally:
            await s.stop()

    assert run(main) == [f"j{i}" for i in range(8)]
    assert model.calls == [f"j{i}" for i in range(8)]


def test_one_worker_runs_one_job_at_a_time_and_two_run_two() -> None:
    for workers in (1, 2):
        model = FakeModel(delay=0.05)

        async def main(model: FakeModel = model, workers: int = workers) -> None:
            s = await started(Scheduler(model, workers=workers))
            try:
                await asyncio.gather(*(s.transcribe(*job(f"j{i}")) for i in range(6)))
            finally:
                await s.stop()

        run(main)
        assert model.max_running == workers


def test_a_cancelled_caller_does_not_break_the_worker() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()

    async def main() -> list[str]:
        s = await started(Scheduler(model))
        try:
            running = asyncio.create_task(s.transcribe(*job("running")))
            queued = asyncio.create_task(s.transcribe(*job("queued")))
            after = asyncio.create_task(s.transcribe(*job("after")))
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            running.cancel()  # its job is in the model already
            queued.cancel()  # its job is still waiting
            await asyncio.gather(running, queued, return_exceptions=True)
            model.release.set()
            result = await after
            again = await s.transcribe(*job("again"))
            assert s.stats().running == 0
            return [result.text, again.text]
        finally:
            await s.stop()

    assert run(main) == ["after", "again"]
    assert "queued" not in model.calls  # a job nobody waits for is skipped


def test_stop_fails_queued_jobs_with_scheduler_closed() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()

    async def main() -> list[object]:
        s = await started(Scheduler(model))
        tasks = [asyncio.create_task(s.transcribe(*job(f"j{i}"))) for i in range(4)]
        while not model.started.is_set():
            await asyncio.sleep(0.005)
        threading.Timer(0.1, model.release.set).start()
        await s.stop()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = run(main)
    for r in results[1:]:
        assert isinstance(r, SchedulerClosed)
    assert model.calls == ["j0"]


def test_transcribe_after_stop_raises() -> None:
    async def main() -> None:
        s = await started(Scheduler(FakeModel()))
        await s.stop()
        with pytest.raises(SchedulerClosed):
            await s.transcribe(*job("late"))

    run(main)


def test_stop_without_start() -> None:
    async def main() -> None:
        s = Scheduler(FakeModel())
        queued = asyncio.create_task(s.transcribe(*job("never")))
        await asyncio.sleep(0)
        await s.stop()
        with pytest.raises(SchedulerClosed):
            await queued

    run(main)


def test_stop_finishes_the_running_job() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()

    async def main() -> object:
        s = await started(Scheduler(model))
        running = asyncio.create_task(s.transcribe(*job("running")))
        while not model.started.is_set():
            await asyncio.sleep(0.005)
        threading.Timer(0.1, model.release.set).start()
        await s.stop()
        return (await asyncio.gather(running, return_exceptions=True))[0]

    result = run(main)
    assert isinstance(result, Transcript) and result.text == "running"


def test_stop_does_not_block_the_event_loop() -> None:
    """stop() waits for the running model call; other sessions' tasks must keep running meanwhile."""
    model = FakeModel(delay=0.0)
    model.release.clear()

    async def main() -> float:
        s = await started(Scheduler(model))
        running = asyncio.create_task(s.transcribe(*job("running")))
        while not model.started.is_set():
            await asyncio.sleep(0.005)
        ticks: list[float] = [time.monotonic()]

        async def ticker() -> None:
            while True:
                await asyncio.sleep(0.01)
                ticks.append(time.monotonic())

        t = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        threading.Timer(0.5, model.release.set).start()
        await s.stop()
        await asyncio.sleep(0.05)
        t.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return float(max(np.diff(ticks)))

    assert run(main) < 0.3  # stop() blocking the loop stalls it for the whole 0.5 s call


def test_an_exception_in_transcribe_reaches_the_caller() -> None:
    model = FakeModel(delay=0.0, fail_on="bad")

    async def main() -> None:
        s = await started(Scheduler(model))
        try:
            good1 = asyncio.create_task(s.transcribe(*job("good1")))
            bad = asyncio.create_task(s.transcribe(*job("bad")))
            good2 = asyncio.create_task(s.transcribe(*job("good2")))
            with pytest.raises(RuntimeError, match="model failed on bad"):
                await bad
            assert (await good1).text == "good1"
            assert (await good2).text == "good2"
            assert (await s.transcribe(*job("after"))).text == "after"  # the worker lives on
        finally:
            await s.stop()

    run(main)


def test_stats() -> None:
    model = FakeModel(delay=0.02)

    async def main() -> tuple[SchedulerStats, SchedulerStats]:
        s = await started(Scheduler(model))
        try:
            before = s.stats()
            await asyncio.gather(*(s.transcribe(*job(f"j{i}")) for i in range(3)))
            return before, s.stats()
        finally:
            await s.stop()

    before, after = run(main)
    assert before == SchedulerStats(0, 0, 0, 0.0)
    assert after.queued == 0 and after.running == 0 and after.jobs_done == 3
    assert after.busy_seconds >= 3 * 0.02


def test_a_turn_builds_its_window_when_the_model_is_free() -> None:
    """``transcribe_latest`` cuts the window when a worker reaches the turn: audio that arrived
    while other sessions' calls ran is in it (a window cut at enqueue time would be stale)."""
    model = FakeModel(delay=0.0)
    model.release.clear()
    audio = {"b": 0.1}  # seconds of audio session b has

    def build_b() -> tuple[np.ndarray, DecodeOptions, str]:
        return (*job("b", audio["b"]), f"window of {audio['b']} s")

    async def main() -> tuple[str, Transcript] | None:
        s = await started(Scheduler(model))
        try:
            a = asyncio.create_task(s.transcribe(*job("a")))
            await asyncio.to_thread(model.started.wait, 5)  # a is in the model
            b = asyncio.create_task(s.transcribe_latest(build_b))
            await asyncio.sleep(0.05)
            audio["b"] = 0.5  # more audio arrives while b waits for its turn
            model.release.set()
            await a
            return await b
        finally:
            await s.stop()

    done = run(main)
    assert done is not None
    tag, result = done
    assert tag == "window of 0.5 s" and result.duration == pytest.approx(0.5)


def test_a_turn_with_nothing_to_do_costs_no_model_call() -> None:
    model = FakeModel(delay=0.0)

    async def main() -> tuple[object, SchedulerStats]:
        s = await started(Scheduler(model))
        try:
            return await s.transcribe_latest(lambda: None), s.stats()
        finally:
            await s.stop()

    done, stats = run(main)
    assert done is None and model.calls == [] and stats.jobs_done == 0


def test_a_failing_build_fails_only_its_caller() -> None:
    model = FakeModel(delay=0.0)

    def broken() -> tuple[np.ndarray, DecodeOptions, str]:
        raise RuntimeError("no window")

    async def main() -> str:
        s = await started(Scheduler(model))
        try:
            bad = asyncio.create_task(s.transcribe_latest(broken))
            good = asyncio.create_task(s.transcribe(*job("good")))
            with pytest.raises(RuntimeError, match="no window"):
                await bad
            return (await good).text
        finally:
            await s.stop()

    assert run(main) == "good"
