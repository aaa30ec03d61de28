"""The scheduler's order of turns and its shedding, with a fake model and a simulated clock:
urgent turns first (a live session's closing windows), then the caller that has waited longest;
deferrable turns (a refresh with nothing new) held back while other turns have work; no session
starved under a saturated model. The priorities here are plain values: what makes a live
session's turn urgent is tested with the streaming layer (``tests/streaming/test_urgency.py``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from tests.support.fakes import FakeModel, job, run
from wirescribe.asr.scheduler import NORMAL, URGENT, PlainPriority, Scheduler
from wirescribe.asr.types import DecodeOptions, Transcript


class SimClock:
    """Simulated time: advanced by the fake model's calls (and by the tests), never by waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def urgent(since: float) -> PlainPriority:
    return PlainPriority(URGENT, since)


def normal(since: float) -> PlainPriority:
    return PlainPriority(NORMAL, since)


def deferrable(since: float) -> PlainPriority:
    return PlainPriority(NORMAL, since, deferrable=True)


def turn(tag: str, priority: PlainPriority) -> tuple[object, object]:
    audio, options = job(tag)
    return (lambda: (audio, options, tag)), (lambda: priority)


async def hold_the_worker(s: Scheduler, model: FakeModel) -> asyncio.Task[Transcript]:
    """Occupy the one worker with a call held in the model, so the turns queued next wait."""
    model.release.clear()
    busy = asyncio.create_task(s.transcribe(*job("busy")))
    await asyncio.to_thread(model.started.wait, 5)
    return busy


def served_order(priorities: dict[str, PlainPriority]) -> list[str]:
    """Queue one turn per tag while the worker is busy, then release it: the order served."""
    model = FakeModel(delay=0.0)
    clock = SimClock()

    async def main() -> None:
        s = Scheduler(model, clock=clock)
        await s.start()
        try:
            busy = await hold_the_worker(s, model)
            tasks: list[asyncio.Task[object]] = []
            for tag, priority in priorities.items():
                build, read = turn(tag, priority)
                tasks.append(asyncio.create_task(s.transcribe_latest(build, read)))  # type: ignore[arg-type]
                await asyncio.sleep(0)
            model.release.set()
            await asyncio.gather(busy, *tasks)
        finally:
            await s.stop()

    run(main)
    return model.calls[1:]


def test_an_urgent_turn_goes_before_normal_ones() -> None:
    order = served_order({
        "refresh-old": normal(1.0),
        "refresh-older": normal(0.5),
        "closing": urgent(3.0),
        "eof": urgent(2.0),
    })  # fmt: skip
    assert order == ["eof", "closing", "refresh-older", "refresh-old"]


def test_the_rank_is_a_sort_key_not_two_classes() -> None:
    order = served_order(
        {"late": PlainPriority(2, 0.0), "normal": normal(5.0), "first": PlainPriority(-1, 9.0)}
    )
    assert order == ["first", "normal", "late"]


def test_the_turn_that_waited_longest_goes_first_not_the_first_queued() -> None:
    order = served_order({"c": normal(3.0), "a": normal(1.0), "b": normal(2.0)})
    assert order == ["a", "b", "c"]


def test_turns_without_a_priority_keep_their_queue_order() -> None:
    model = FakeModel(delay=0.0)
    clock = SimClock()

    async def main() -> None:
        s = Scheduler(model, clock=clock)
        await s.start()
        try:
            busy = await hold_the_worker(s, model)
            tasks: list[asyncio.Task[object]] = []
            for i in range(4):
                clock.now = float(i)
                tasks.append(asyncio.create_task(s.transcribe(*job(f"file{i}"))))
                await asyncio.sleep(0)
            model.release.set()
            await asyncio.gather(busy, *tasks)
        finally:
            await s.stop()

    run(main)
    assert model.calls[1:] == ["file0", "file1", "file2", "file3"]


def test_the_priority_is_read_when_a_worker_frees_not_when_the_turn_was_queued() -> None:
    """A turn queued as a refresh whose session meanwhile reached a pause goes first."""
    model = FakeModel(delay=0.0)
    state = {"a": normal(1.0), "b": normal(2.0)}

    async def main() -> None:
        s = Scheduler(model, clock=SimClock())
        await s.start()
        try:
            busy = await hold_the_worker(s, model)
            tasks = [
                asyncio.create_task(s.transcribe_latest(lambda t=t: (*job(t), t), lambda t=t: state[t]))  # type: ignore[misc]
                for t in ("a", "b")
            ]
            await asyncio.sleep(0.01)
            state["b"] = urgent(2.0)  # b's pause came while it waited
            model.release.set()
            await asyncio.gather(busy, *tasks)
        finally:
            await s.stop()

    run(main)
    assert model.calls[1:] == ["b", "a"]


def test_a_deferrable_turn_is_held_back_while_others_have_work() -> None:
    order = served_order({
        "quiet": deferrable(0.5),  # the oldest wait, but it can do little now
        "talking": normal(2.0),
        "closing": urgent(3.0),
    })  # fmt: skip
    assert order == ["closing", "talking", "quiet"]  # held back, not dropped: served once idle


def test_a_deferrable_turn_runs_at_once_on_an_idle_model() -> None:
    model = FakeModel(delay=0.0)

    async def main() -> int:
        s = Scheduler(model, clock=SimClock())
        await s.start()
        try:
            build, read = turn("quiet", deferrable(0.0))
            await s.transcribe_latest(build, read)  # type: ignore[arg-type]
            return s.stats().deferred
        finally:
            await s.stop()

    assert run(main) == 0
    assert model.calls == ["quiet"]


def test_stats_show_the_longest_wait_urgent_turns_and_deferred_ones() -> None:
    model = FakeModel(delay=0.0)
    clock = SimClock()

    async def main() -> tuple[float, int, int, int]:
        s = Scheduler(model, clock=clock)
        await s.start()
        try:
            busy = await hold_the_worker(s, model)
            priorities = {"c": urgent(4.0), "w": normal(1.0), "q": deferrable(3.0)}
            tasks: list[asyncio.Task[object]] = []
            for tag, priority in priorities.items():
                build, read = turn(tag, priority)
                tasks.append(asyncio.create_task(s.transcribe_latest(build, read)))  # type: ignore[arg-type]
            await asyncio.sleep(0.01)
            clock.now = 5.0
            oldest = s.stats().oldest_wait
            model.release.set()
            await asyncio.gather(busy, *tasks)
            stats = s.stats()
            return oldest, stats.closing_jobs, stats.deferred, stats.jobs_done
        finally:
            await s.stop()

    oldest, urgent_done, deferred, done = run(main)
    assert oldest == 4.0  # "w": waited since 1.0
    assert (urgent_done, deferred, done) == (1, 1, 4)  # closing_jobs counts the urgent turns


# -- a saturated model -----------------------------------------------------------------------


@dataclass
class SimSession:
    """A live session over a simulated clock: speech is heard continuously; each call commits
    the words its previous window covered (two passes agree), unless the session is
    ``stubborn`` (its hypotheses never agree); every ``pause_every``-th turn closes an utterance."""

    name: str
    clock: SimClock
    stubborn: bool = False
    pause_every: int = 0
    oldest: float = 0.0  # when its oldest uncommitted speech was heard
    last_cut: float | None = None
    turns: int = 0
    served_at: list[float] = field(default_factory=list)
    commit_waits: list[float] = field(default_factory=list)  # how long committed speech had waited

    def closing(self) -> bool:
        return bool(self.pause_every) and self.turns % self.pause_every == self.pause_every - 1

    def priority(self) -> PlainPriority:
        since = self.oldest if self.last_cut is None else max(self.oldest, self.last_cut)
        return PlainPriority(URGENT if self.closing() else NORMAL, since)

    def build(self) -> tuple[np.ndarray, DecodeOptions, str]:
        tag = f"{self.name}:{'closing' if self.closing() else 'refresh'}"
        cut, self.last_cut = self.last_cut, self.clock()
        self.served_at.append(self.clock())
        if self.closing():
            self.commit_waits.append(self.clock() - self.oldest)
            self.oldest = self.clock()
        elif cut is not None and not self.stubborn:
            self.commit_waits.append(self.clock() - self.oldest)
            self.oldest = cut
        self.turns += 1
        audio, options = job(tag)
        return audio, options, tag


class TimedModel(FakeModel):
    """A fake model whose calls advance the simulated clock: 0.1 s a refresh, 0.4 s a closing
    window (the strong decode)."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__(delay=0.0)
        self.clock = clock

    def __call__(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        self.clock.now += 0.4 if (options.prompt or "").endswith(":closing") else 0.1
        return super().__call__(audio, options)


def saturate(sessions: int, calls: int, workers: int = 1) -> tuple[list[SimSession], list[str]]:
    clock = SimClock()
    model = TimedModel(clock)
    sims = [
        SimSession(f"s{i}", clock, stubborn=i == 0, pause_every=5 if i % 2 else 0) for i in range(sessions)
    ]

    async def main() -> None:
        s = Scheduler(model, workers, clock=clock)
        await s.start()
        stop = asyncio.Event()

        async def live(sim: SimSession) -> None:
            while not stop.is_set():
                await s.transcribe_latest(sim.build, sim.priority)
                if len(model.calls) >= calls:
                    stop.set()

        try:
            await asyncio.gather(*(live(sim) for sim in sims))
        finally:
            await s.stop()

    run(main)
    return sims, model.calls


def test_a_saturated_model_starves_no_session() -> None:
    """Eight sessions on one worker, every session always asking: each is served in turn (the
    one whose words never settle takes no more than its share; the sessions whose utterances
    end get their closing windows on top), and the longest any session goes without a call is
    bounded by one round of the others' calls."""
    sims, calls = saturate(sessions=8, calls=400)
    refreshes = Counter(c.split(":")[0] for c in calls if c.endswith(":refresh"))
    steady = [refreshes[f"s{i}"] for i in (2, 4, 6)]  # sessions like s0, but whose words settle
    assert max(steady) - min(steady) <= 1 and refreshes["s0"] <= max(steady) + 1, refreshes
    closings = Counter(c.split(":")[0] for c in calls if c.endswith(":closing"))
    assert set(closings) == {"s1", "s3", "s5", "s7"} and min(closings.values()) >= 10, closings
    round_cost = 7 * 0.4 + 0.1  # the other seven sessions' calls, all of them closing at worst
    for sim in sims:
        gaps = np.diff(sim.served_at)
        assert gaps.max() <= round_cost, (sim.name, gaps.max())


def test_closing_windows_wait_for_no_refresh_on_a_saturated_model() -> None:
    """A closing window is served before any refresh queued with it: at most the call already
    running when it was queued goes first."""
    clock = SimClock()
    model = TimedModel(clock)
    sims = [SimSession(f"s{i}", clock, pause_every=4 if i == 3 else 0) for i in range(6)]
    waits: list[int] = []  # calls started between a closing turn's queueing and its own

    async def main() -> None:
        s = Scheduler(model, clock=clock)
        await s.start()
        stop = asyncio.Event()

        async def live(sim: SimSession) -> None:
            while not stop.is_set():
                queued_at = len(model.calls)
                closing = sim.closing()
                await s.transcribe_latest(sim.build, sim.priority)
                if closing:
                    waits.append(model.calls.index(f"{sim.name}:closing", queued_at) - queued_at)
                if len(model.calls) >= 200:
                    stop.set()

        try:
            await asyncio.gather(*(live(sim) for sim in sims))
        finally:
            await s.stop()

    run(main)
    assert len(waits) >= 5
    assert max(waits) <= 1, waits  # never behind the other five sessions' refreshes
