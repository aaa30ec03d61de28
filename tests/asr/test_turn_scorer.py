"""``TurnScorer``: the end-of-turn model off the event loop, one worker thread that scores every
request queued while it was busy in one batch. A gated fake model makes "arrived together"
exact (the worker is held inside a call while more requests queue); one test runs the real
model through it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from tests.support.fakes import run
from wirescribe.asr.turn_model import TurnScorer, load_turn_model

WAIT = 10.0  # seconds a test waits for the worker before failing


class GatedModel:
    """Scores a turn as its first sample; the first call waits for :attr:`gate`, so requests
    queue behind it. Records each call's turns (their first samples, rounded)."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = threading.Event()
        self.inside = threading.Event()  # set when the first call has started
        self.calls: list[list[float]] = []
        self.fail = fail

    def score_batch(self, audios: Sequence[np.ndarray]) -> list[float]:
        self.calls.append([round(float(a[0]), 3) for a in audios])
        self.inside.set()
        assert self.gate.wait(WAIT), "the test never opened the gate"
        if self.fail:
            raise RuntimeError("the model broke")
        return [float(a[0]) for a in audios]


def turn(tag: float) -> np.ndarray:
    return np.full(160, tag, np.float32)


def held(model: GatedModel, scorer: TurnScorer) -> None:
    """Queue turn 0 and wait until the worker is inside its call."""
    scorer.submit(turn(0.0))
    assert model.inside.wait(WAIT)


def test_requests_that_queue_during_a_call_share_the_next_one() -> None:
    model = GatedModel()
    scorer = TurnScorer(model, max_batch=8)
    try:
        held(model, scorer)
        later = [scorer.submit(turn(t)) for t in (0.1, 0.2, 0.3)]
        model.gate.set()
        assert [f.result(WAIT) for f in later] == pytest.approx([0.1, 0.2, 0.3])
    finally:
        scorer.close(WAIT)
    assert model.calls == [[0.0], [0.1, 0.2, 0.3]]
    assert (scorer.calls, scorer.scored) == (2, 4)


def test_a_batch_holds_at_most_max_batch_turns() -> None:
    model = GatedModel()
    scorer = TurnScorer(model, max_batch=2)
    try:
        held(model, scorer)
        later = [scorer.submit(turn(t / 10)) for t in range(1, 6)]
        model.gate.set()
        assert [f.result(WAIT) for f in later] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    finally:
        scorer.close(WAIT)
    assert [len(c) for c in model.calls] == [1, 2, 2, 1]
    with pytest.raises(ValueError):
        TurnScorer(model, max_batch=0)


def test_by_default_each_turn_has_a_call_of_its_own_in_order() -> None:
    """On this CPU a batch is no cheaper per turn (bench/turn_model_cost.py): one at a time."""
    model = GatedModel()
    scorer = TurnScorer(model)
    try:
        held(model, scorer)
        later = [scorer.submit(turn(t)) for t in (0.1, 0.2, 0.3)]
        model.gate.set()
        assert [f.result(WAIT) for f in later] == pytest.approx([0.1, 0.2, 0.3])
    finally:
        scorer.close(WAIT)
    assert model.calls == [[0.0], [0.1], [0.2], [0.3]]


def test_a_failing_call_fails_each_of_its_callers_and_the_worker_goes_on() -> None:
    model = GatedModel(fail=True)
    scorer = TurnScorer(model, max_batch=8)
    try:
        held(model, scorer)
        later = [scorer.submit(turn(t)) for t in (0.1, 0.2)]
        model.gate.set()
        for f in later:
            with pytest.raises(RuntimeError, match="the model broke"):
                f.result(WAIT)
        model.fail = False
        assert scorer.submit(turn(0.5)).result(WAIT) == pytest.approx(0.5)
    finally:
        scorer.close(WAIT)


def test_a_wrong_number_of_scores_is_an_error_not_a_misrouted_answer() -> None:
    class Short:
        def score_batch(self, audios: Sequence[np.ndarray]) -> list[float]:
            return [0.5] * (len(audios) - 1)

    scorer = TurnScorer(Short())
    try:
        with pytest.raises(RuntimeError, match="0 scores for 1 turns"):
            scorer.submit(turn(0.1)).result(WAIT)
    finally:
        scorer.close(WAIT)


def test_a_request_cancelled_while_queued_is_never_scored() -> None:
    model = GatedModel()
    scorer = TurnScorer(model)
    try:
        held(model, scorer)
        dropped, kept = scorer.submit(turn(0.1)), scorer.submit(turn(0.2))
        assert dropped.cancel()
        model.gate.set()
        assert kept.result(WAIT) == pytest.approx(0.2)
    finally:
        scorer.close(WAIT)
    assert model.calls == [[0.0], [0.2]]


def test_close_scores_what_is_queued_then_refuses_more() -> None:
    model = GatedModel()
    scorer = TurnScorer(model)
    held(model, scorer)
    queued = scorer.submit(turn(0.4))
    model.gate.set()
    scorer.close(WAIT)
    assert queued.result(0) == pytest.approx(0.4)
    with pytest.raises(RuntimeError, match="closed"):
        scorer.submit(turn(0.1))
    scorer.close(WAIT)  # twice: nothing more


def test_awaiting_a_score_leaves_the_event_loop_free() -> None:
    """While the model is held inside a call, the loop runs other work; the awaited score
    arrives when the call ends, and a cancelled await does not break the worker."""
    model = GatedModel()
    scorer = TurnScorer(model)

    async def main() -> tuple[float, int]:
        pending = asyncio.ensure_future(scorer.score(turn(0.7)))
        ticks = 0
        while not model.inside.is_set():
            await asyncio.sleep(0.005)  # the loop keeps running while the worker is busy
            ticks += 1
        gone = asyncio.ensure_future(scorer.score(turn(0.9)))
        await asyncio.sleep(0)
        gone.cancel()
        model.gate.set()
        return await pending, ticks

    try:
        got, ticks = run(main)
        assert got == pytest.approx(0.7) and ticks >= 1
        assert scorer.submit(turn(0.3)).result(WAIT) == pytest.approx(0.3)
    finally:
        scorer.close(WAIT)


def test_the_real_model_through_the_scorer() -> None:
    """Sessions pausing together, batched or not (how many share a call is a race with the
    worker: the gated tests above pin that down), each get the score the model gives their turn
    alone."""
    model = load_turn_model()
    assert model is not None
    rng = np.random.default_rng(3)
    turns = [(rng.standard_normal(16000 * (1 + i)) * 0.05).astype(np.float32) for i in range(4)]
    alone = [model.score(t) for t in turns]
    scorer = TurnScorer(model, max_batch=8)

    async def main() -> list[float]:
        return list(await asyncio.gather(*(scorer.score(t) for t in turns)))

    try:
        assert run(main, timeout=60) == pytest.approx(alone, abs=1e-5)
    finally:
        scorer.close(WAIT)
    assert scorer.scored == 4 and 1 <= scorer.calls <= 4
