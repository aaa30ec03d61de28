"""The scheduler's batches, with a fake batch function: who is batched with whom, what each caller
gets, and what a failing batch does. (The real batch call, ``Transcriber.transcribe_batch``, is
tested against single calls in ``test_adapter.py``.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from tests.support.fakes import FakeModel, FakeTranscriber, job, run
from wirescribe.asr.scheduler import Scheduler, default_batch_size
from wirescribe.asr.types import BatchItem, Transcript


def test_default_batch_size_by_device() -> None:
    assert default_batch_size("cpu") == 1
    assert default_batch_size("cuda") == 8
    fake = FakeTranscriber()
    assert Scheduler.for_transcriber(fake).batch_size == 1  # type: ignore[arg-type]
    fake.device = "cuda"
    assert Scheduler.for_transcriber(fake).batch_size == 8  # type: ignore[arg-type]
    assert Scheduler.for_transcriber(fake, batch_size=3).batch_size == 3  # type: ignore[arg-type]


def test_the_servers_scheduler_hands_batches_to_the_transcriber() -> None:
    """``for_transcriber`` sends a batch to ``transcribe_batch`` in one call, and a lone window
    to ``transcribe``."""
    fake = FakeTranscriber()
    calls: list[int] = []
    batch_call = fake.transcribe_batch

    def counting(items: Sequence[BatchItem]) -> list[Transcript]:
        calls.append(len(items))
        return batch_call(items)

    fake.transcribe_batch = counting  # type: ignore[method-assign]
    fake.device = "cuda"

    async def main() -> None:
        s = Scheduler.for_transcriber(fake)  # type: ignore[arg-type]
        await s.start()
        try:
            audio = np.zeros(1600, dtype=np.float32)
            await s.transcribe(*job("alone"))
            results = await asyncio.gather(*(s.transcribe(audio, job(f"j{i}")[1]) for i in range(3)))
            assert all(r.text == "Hello there, general Kenobi." for r in results)
        finally:
            await s.stop()

    run(main)
    assert len(fake.options) == 4
    assert calls == [3]  # the three queued together went in one call; the lone one alone


class FakeBatch:
    """A batch function over FakeModel: records the tags of each batch it is given."""

    def __init__(self, model: FakeModel, fail_on: str | None = None) -> None:
        self.model = model
        self.fail_on = fail_on
        self.batches: list[list[str]] = []

    def __call__(self, items: list[BatchItem]) -> list[Transcript]:
        tags = [o.prompt or "" for _, o in items]
        self.batches.append(tags)
        if self.fail_on in tags:
            raise RuntimeError(f"batch failed on {self.fail_on}")
        return [self.model(a, o) for a, o in items]


def test_scheduler_batches_queued_jobs_and_each_caller_gets_its_own() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()  # hold the first call while the others queue up
    batch = FakeBatch(model)

    async def main() -> list[str]:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:
            tasks = [
                asyncio.create_task(s.transcribe(*job(f"j{i}", seconds=0.1 * (i + 1)))) for i in range(8)
            ]
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            threading.Timer(0.05, model.release.set).start()
            results = await asyncio.gather(*tasks)
            for i, r in enumerate(results):
                assert r.duration == pytest.approx(0.1 * (i + 1))
            stats = s.stats()
            assert (stats.jobs_done, stats.batches, stats.largest_batch) == (8, 2, 4)
            assert stats.mean_batch_size == 4.0
            return [r.text for r in results]
        finally:
            await s.stop()

    assert run(main) == [f"j{i}" for i in range(8)]
    # All eight were queued before the worker woke: two batches of four, in queue order.
    assert batch.batches == [["j0", "j1", "j2", "j3"], ["j4", "j5", "j6", "j7"]]


def test_sessions_never_have_two_windows_in_one_batch() -> None:
    """Each session asks again only after its answer came: its windows coalesce, never queue
    twice, and each batch holds one window of each waiting session."""
    model = FakeModel(delay=0.005)
    batch = FakeBatch(model)
    queued: list[int] = []

    async def main() -> None:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:

            async def session(name: str, n: int) -> None:
                for i in range(n):
                    queued.append(s.stats().queued)
                    result = await s.transcribe(*job(f"{name}{i}"))
                    assert result.text == f"{name}{i}"

            await asyncio.gather(*(session(name, 6) for name in "abcde"))
        finally:
            await s.stop()

    run(main)
    assert max(len(b) for b in batch.batches) > 1
    assert all(len(b) <= 4 for b in batch.batches)
    for b in batch.batches:
        sessions = [tag[0] for tag in b]
        assert len(sessions) == len(set(sessions)), b
    assert max(queued) <= 4  # never more than the other sessions' one window each
    for name in "abcde":
        assert [c for c in model.calls if c[0] == name] == [f"{name}{i}" for i in range(6)]


def test_a_failing_window_fails_only_its_caller() -> None:
    model = FakeModel(delay=0.0, fail_on="bad")
    model.release.clear()
    batch = FakeBatch(model, fail_on="bad")

    async def main() -> None:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:
            first = asyncio.create_task(s.transcribe(*job("first")))
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            tasks = [asyncio.create_task(s.transcribe(*job(tag))) for tag in ("good1", "bad", "good2")]
            await asyncio.sleep(0.02)
            model.release.set()
            assert (await first).text == "first"
            with pytest.raises(RuntimeError, match="model failed on bad"):
                await tasks[1]
            assert [(await tasks[0]).text, (await tasks[2]).text] == ["good1", "good2"]
        finally:
            await s.stop()

    run(main)
    assert batch.batches == [["good1", "bad", "good2"]]  # then retried one by one
    assert model.calls == ["first", "good1", "bad", "good2"]


def test_batch_size_one_never_batches() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()
    batch = FakeBatch(model)

    async def main() -> None:
        s = Scheduler(model, batch_size=1, batch_fn=batch)
        await s.start()
        try:
            tasks = [asyncio.create_task(s.transcribe(*job(f"j{i}"))) for i in range(4)]
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            model.release.set()
            await asyncio.gather(*tasks)
            assert s.stats().batches == 4 and s.stats().largest_batch == 1
        finally:
            await s.stop()

    run(main)
    assert batch.batches == []
    assert model.calls == [f"j{i}" for i in range(4)]
