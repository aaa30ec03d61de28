"""What makes a live session's turn urgent (``streaming/urgency.py``), and that the scheduler
orders such turns by it: closing windows first, then the longest-waiting words; a refresh with
nothing new held back while others have work."""

from __future__ import annotations

import asyncio

from tests.support.fakes import FakeModel, job, run
from wirescribe.asr.scheduler import NORMAL, URGENT, Priority, Scheduler
from wirescribe.asr.types import Transcript
from wirescribe.streaming.urgency import Urgency


def test_a_closing_turn_is_urgent_and_never_deferred() -> None:
    closing: Priority = Urgency(closing=True, since=2.0, new_speech=False)
    assert (closing.rank, closing.since, closing.deferrable) == (URGENT, 2.0, False)


def test_a_refresh_is_deferrable_only_with_nothing_new_heard() -> None:
    assert (Urgency(since=1.0).rank, Urgency(since=1.0).deferrable) == (NORMAL, False)
    assert Urgency(since=1.0, new_speech=False).deferrable


def test_words_wait_from_when_they_were_heard_or_the_last_cut_if_later() -> None:
    def since(heard_at: float | None, last_cut: float | None) -> float | None:
        return Urgency.of_turn(closes=False, new_speech=True, heard_at=heard_at, last_cut=last_cut).since

    assert (since(1.0, None), since(1.0, 3.0), since(4.0, 3.0), since(None, 3.0)) == (1.0, 3.0, 4.0, None)


def test_finalize_or_the_end_of_input_makes_any_turn_closing_with_work() -> None:
    forced = Urgency.of_turn(closes=False, new_speech=False, heard_at=None, last_cut=None, forced=True)
    assert forced == Urgency(closing=True, since=None, new_speech=True)
    paused = Urgency.of_turn(closes=True, new_speech=False, heard_at=2.0, last_cut=None)
    assert paused == Urgency(closing=True, since=2.0, new_speech=False) and not paused.deferrable


def test_the_scheduler_serves_closing_then_waiting_then_quiet_turns() -> None:
    model = FakeModel(delay=0.0)
    urgencies = {
        "quiet": Urgency(since=0.5, new_speech=False),  # oldest words, but nothing new heard
        "talking": Urgency(since=2.0),
        "older": Urgency(since=1.0),
        "closing": Urgency(closing=True, since=3.0),
    }

    async def main() -> None:
        s = Scheduler(model)
        await s.start()
        try:
            model.release.clear()
            busy: asyncio.Task[Transcript] = asyncio.create_task(s.transcribe(*job("busy")))
            await asyncio.to_thread(model.started.wait, 5)
            tasks = [
                asyncio.create_task(
                    s.transcribe_latest(lambda t=tag: (*job(t), t), lambda u=urgency: u)  # type: ignore[misc]
                )
                for tag, urgency in urgencies.items()
            ]
            await asyncio.sleep(0.01)
            model.release.set()
            await asyncio.gather(busy, *tasks)
        finally:
            await s.stop()

    run(main)
    assert model.calls[1:] == ["closing", "older", "talking", "quiet"]
