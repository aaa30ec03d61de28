"""The strong decode under load (``asr/load.py``): a closing window is lightened only while other
turns wait with work, and the scheduler's counters show it; with a fake model, no timing."""

from __future__ import annotations

import asyncio

from tests.support.fakes import FakeModel, job, run
from wirescribe.asr.load import NO_LIGHTENING, LoadedSearch
from wirescribe.asr.scheduler import NORMAL, URGENT, JobTiming, PlainPriority, Scheduler
from wirescribe.asr.types import DecodeOptions

CLOSING = DecodeOptions(beam_size=5, context_seconds=None)


def test_alone_a_closing_window_gets_what_it_asked_for() -> None:
    rule = LoadedSearch()
    assert rule.options(CLOSING, urgent=True, backlog=0, workers=2) is CLOSING


def test_one_turn_waiting_shortens_the_context_and_keeps_the_beam() -> None:
    lighter = LoadedSearch(context=12.0).options(CLOSING, urgent=True, backlog=1, workers=2)
    assert lighter.context_seconds == 12.0 and lighter.beam_size == 5


def test_a_workers_worth_waiting_makes_it_greedy() -> None:
    lighter = LoadedSearch(context=12.0).options(CLOSING, urgent=True, backlog=2, workers=2)
    assert lighter.context_seconds == 12.0 and lighter.beam_size == 1
    assert lighter.temperature == CLOSING.temperature  # the fallback stays


def test_a_shorter_context_than_the_rule_stays() -> None:
    short = DecodeOptions(beam_size=5, context_seconds=6.0)
    assert LoadedSearch(context=12.0).options(short, urgent=True, backlog=1, workers=2) is short


def test_refreshes_uploads_and_the_off_switch_are_never_lightened() -> None:
    greedy = DecodeOptions(beam_size=1, context_seconds=None)
    assert LoadedSearch().options(greedy, urgent=True, backlog=9, workers=1) is greedy
    upload = DecodeOptions(beam_size=5)  # a file chunk: beam 5, but not urgent
    assert LoadedSearch().options(upload, urgent=False, backlog=9, workers=1) is upload
    assert NO_LIGHTENING.options(CLOSING, urgent=True, backlog=9, workers=1) is CLOSING


def test_the_scheduler_lightens_a_closing_window_only_behind_a_backlog() -> None:
    """One worker held busy; a closing turn and two refreshes queued: the closing turn goes first
    and, with two turns behind it, is decoded greedy with a short context. Then, alone, a second
    closing turn gets beam 5 and the full context. The stats and listeners count one."""
    model = FakeModel(delay=0.0)
    seen: list[tuple[str | None, int, float | None]] = []
    timings: list[JobTiming] = []

    def recording(audio: object, options: DecodeOptions) -> object:
        seen.append((options.prompt, options.beam_size, options.context_seconds))
        return model(audio, options)  # type: ignore[arg-type]

    async def main() -> int:
        s = Scheduler(recording, search=LoadedSearch(context=8.0))  # type: ignore[arg-type]
        s.add_listener(timings.append)
        await s.start()
        try:
            model.release.clear()
            busy = asyncio.create_task(s.transcribe(*job("busy")))
            await asyncio.to_thread(model.started.wait, 5)

            def turn(tag: str, options: DecodeOptions, rank: int) -> asyncio.Task[object]:
                audio = job(tag)[0]
                return asyncio.create_task(
                    s.transcribe_latest(lambda: (audio, options, tag), lambda: PlainPriority(rank))
                )

            closing = DecodeOptions(prompt="close", beam_size=5)
            tasks = [turn("close", closing, URGENT), turn("r1", DecodeOptions(prompt="r1"), NORMAL),
                     turn("r2", DecodeOptions(prompt="r2"), NORMAL)]  # fmt: skip
            await asyncio.sleep(0.01)
            model.release.set()
            await asyncio.gather(busy, *tasks)
            await turn("again", DecodeOptions(prompt="again", beam_size=5), URGENT)
            return s.stats().lightened
        finally:
            await s.stop()

    lightened = run(main)
    assert seen[1] == ("close", 1, 8.0)  # two refreshes behind it, one worker: greedy, short context
    assert seen[-1] == ("again", 5, None)  # alone: what it asked for
    assert lightened == 1 and [t.lightened for t in timings].count(True) == 1


def test_on_a_cpu_greedy_closing_windows_waiting_together_share_a_call() -> None:
    """batch_size 1 with closing_batch 2: two urgent turns queued behind a busy worker, with
    refreshes behind them, are lightened to greedy and go in one call, alike; a refresh is
    never batched with them."""
    model = FakeModel(delay=0.0)
    batches: list[list[tuple[str | None, float | None]]] = []

    def batch_fn(items: list[tuple[object, DecodeOptions]]) -> list[object]:
        batches.append([(o.prompt, o.context_seconds) for _, o in items])
        return [model(a, o) for a, o in items]  # type: ignore[arg-type]

    async def main() -> None:
        s = Scheduler(model, batch_fn=batch_fn, closing_batch=2, search=LoadedSearch(context=8.0))  # type: ignore[arg-type]
        await s.start()
        try:
            model.release.clear()
            busy = asyncio.create_task(s.transcribe(*job("busy")))
            await asyncio.to_thread(model.started.wait, 5)

            def turn(tag: str, beam: int, rank: int) -> asyncio.Task[object]:
                audio, options = job(tag)[0], DecodeOptions(prompt=tag, beam_size=beam)
                return asyncio.create_task(
                    s.transcribe_latest(lambda: (audio, options, tag), lambda: PlainPriority(rank))
                )

            tasks = [
                turn("c1", 5, URGENT),
                turn("r1", 1, NORMAL),
                turn("c2", 5, URGENT),
                turn("r2", 1, NORMAL),
            ]
            await asyncio.sleep(0.01)
            model.release.set()
            await asyncio.gather(busy, *tasks)
        finally:
            await s.stop()

    run(main)
    assert batches == [[("c1", 8.0), ("c2", 8.0)]]  # the refreshes ran alone, after
    assert model.calls[1:] == ["c1", "c2", "r1", "r2"]


def test_closing_windows_that_keep_their_beam_are_not_batched() -> None:
    """Two workers held busy, two closing turns queued: each sees one turn waiting (a short
    context, beam 5 kept), so each runs alone, not batched."""
    model = FakeModel(delay=0.0)
    batches: list[int] = []
    seen: list[tuple[str | None, int, float | None]] = []

    def batch_fn(items: list[tuple[object, DecodeOptions]]) -> list[object]:
        batches.append(len(items))
        return [model(a, o) for a, o in items]  # type: ignore[arg-type]

    def single(audio: object, options: DecodeOptions) -> object:
        seen.append((options.prompt, options.beam_size, options.context_seconds))
        return model(audio, options)  # type: ignore[arg-type]

    async def main() -> None:
        s = Scheduler(single, 2, batch_fn=batch_fn, closing_batch=2, search=LoadedSearch(context=8.0))  # type: ignore[arg-type]
        await s.start()
        try:
            model.release.clear()
            busy = [asyncio.create_task(s.transcribe(*job(f"busy{i}"))) for i in range(2)]
            while model.running < 2:
                await asyncio.sleep(0.005)

            def turn(tag: str) -> asyncio.Task[object]:
                audio, options = job(tag)[0], DecodeOptions(prompt=tag, beam_size=5)
                return asyncio.create_task(
                    s.transcribe_latest(lambda: (audio, options, tag), lambda: PlainPriority(URGENT))
                )

            tasks = [turn("c1"), turn("c2")]
            await asyncio.sleep(0.01)
            model.release.set()
            await asyncio.gather(*busy, *tasks)
        finally:
            await s.stop()

    run(main)
    assert batches == []
    assert ("c1", 5, 8.0) in seen  # the first saw the second waiting: a short context, beam 5
