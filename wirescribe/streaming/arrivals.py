"""When a live session's audio arrived, and its voice activity scored off the event loop."""

from __future__ import annotations

import asyncio
import bisect
from concurrent.futures import Executor

import numpy as np

from wirescribe.audio.vad import Scored, VoiceActivity


class Arrivals:
    """When each stretch of a session's audio was decoded (the scheduler's clock): the
    checkpoints its urgency and its commit latency are read from."""

    def __init__(self) -> None:
        self._ends: list[int] = []  # absolute sample at which each decoded block ended
        self._times: list[float] = []

    def add(self, end: int, at: float) -> None:
        self._ends.append(end)
        self._times.append(at)

    def at(self, sample: int) -> float | None:
        """When the block holding ``sample`` was decoded (None: not yet)."""
        i = bisect.bisect_right(self._ends, sample)
        return self._times[i] if i < len(self._times) else None

    def forget_before(self, sample: int) -> None:
        """Drop what no lookup will ask for again (blocks that ended before ``sample``)."""
        i = bisect.bisect_right(self._ends, sample)
        if i > 256:  # in steps, not on every call
            del self._ends[:i], self._times[:i]


async def score_off_loop(vad: VoiceActivity, block: np.ndarray, executor: Executor | None = None) -> Scored:
    """Voice-activity scores for ``block``, the model run in ``executor`` (None: the loop's
    default). Pass the result to ``policy.insert_audio(block, scored)`` before scoring the next
    block. A block that completes no frame costs no thread hop."""
    frames = vad.frame(block)
    if not frames.count:
        return vad.score(frames)
    return await asyncio.get_running_loop().run_in_executor(executor, vad.score, frames)
