"""session.py: the session owns (and reaps) its decoder; voice activity is scored off the loop."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Executor, ThreadPoolExecutor

import numpy as np
import pytest

from tests.support.fakes import run
from tests.support.policy_world import energy_probability
from tests.support.sessions import FakeDecoder, always_speech, hello, make_session
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import FRAME, Scored, VadOptions, VoiceActivity


def test_a_session_that_never_ran_reaps_its_decoder() -> None:
    """The client left between the decoder's start and the session's: no ffmpeg is left behind."""

    async def main() -> None:
        decoder = FakeDecoder()
        scheduler = Scheduler(hello)
        async with make_session(decoder, scheduler):
            pass
        assert decoder.aclose_calls == 1

    run(main)


def test_an_error_in_the_block_still_reaps_the_decoder() -> None:
    decoder = FakeDecoder()

    async def main() -> None:
        async with make_session(decoder, Scheduler(hello)):
            raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        run(main)
    assert decoder.aclose_calls == 1


def test_the_decoder_is_closed_once_however_the_session_ends() -> None:
    async def main() -> None:
        decoder = FakeDecoder()
        scheduler = Scheduler(hello)
        await scheduler.start()
        try:
            async with make_session(decoder, scheduler) as session:
                worker = asyncio.create_task(session.run())
                await session.feed(np.zeros(16000, dtype="<i2").tobytes())
                await session.end_input()
                final = await asyncio.wait_for(worker, 5)
                assert final.text == "hello"
                assert decoder.aclose_calls == 1  # run() reaped it at its end
                await session.aclose()
            assert decoder.aclose_calls == 1  # ... and nobody again
        finally:
            await scheduler.stop()

    run(main)


class SlowToReap(FakeDecoder):
    async def aclose(self) -> None:
        self.aclose_calls += 1
        await asyncio.sleep(0.05)  # ffmpeg killed, its exit not yet awaited
        self.reaped = True


def test_reaping_is_not_cut_short_by_a_cancelled_caller() -> None:
    """The edge cancels run() while its finally reaps ffmpeg; leaving ``async with`` then waits
    for the reaping instead of starting another or skipping it."""
    decoder = SlowToReap()

    async def main() -> None:
        async with make_session(decoder, Scheduler(hello)) as session:
            closing = asyncio.create_task(session.aclose())
            await asyncio.sleep(0.01)
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
            assert not getattr(decoder, "reaped", False)
        assert decoder.reaped and decoder.aclose_calls == 1

    run(main)


def feed_and_finish(
    decoder: FakeDecoder, vad: VoiceActivity, blocks: list[np.ndarray], vad_executor: Executor | None = None
) -> str:
    async def main() -> str:
        scheduler = Scheduler(hello)
        await scheduler.start()
        try:
            async with make_session(decoder, scheduler, vad=vad, vad_executor=vad_executor) as session:
                worker = asyncio.create_task(session.run())
                for block in blocks:
                    await session.feed((block * 32767).astype("<i2").tobytes())
                await session.end_input()
                final = await asyncio.wait_for(worker, 10)
                return final.text
        finally:
            await scheduler.stop()

    return run(main)


def test_voice_activity_is_scored_off_the_event_loop() -> None:
    threads: set[int] = set()

    def probability(audio: np.ndarray) -> np.ndarray:
        threads.add(threading.get_ident())
        return always_speech(audio)

    loop_thread = threading.get_ident()  # asyncio.run runs the loop in this thread
    blocks = [np.zeros(1600, dtype=np.float32)] * 10
    assert feed_and_finish(FakeDecoder(), VoiceActivity(probability), blocks) == "hello"
    assert threads and loop_thread not in threads


def test_voice_activity_runs_in_the_executor_given() -> None:
    names: set[str] = set()

    def probability(audio: np.ndarray) -> np.ndarray:
        names.add(threading.current_thread().name)
        return always_speech(audio)

    with ThreadPoolExecutor(1, thread_name_prefix="vad-test") as pool:
        blocks = [np.zeros(1600, dtype=np.float32)] * 5
        feed_and_finish(FakeDecoder(), VoiceActivity(probability), blocks, vad_executor=pool)
    assert names and all(n.startswith("vad-test") for n in names)


class RecordingActivity(VoiceActivity):
    """Notes each frame's flag as it is accepted (the policy may forget old frames later)."""

    def __init__(self) -> None:
        super().__init__(energy_probability, VadOptions(min_speech=0))
        self.flags: list[bool] = []

    def accept(self, scored: Scored) -> None:
        before = self.frames_end
        super().accept(scored)
        new = range(before, self.frames_end, FRAME)
        self.flags += [self.has_speech(k, k + FRAME, min_speech=0) for k in new]


def test_flags_scored_off_the_loop_match_scoring_in_place() -> None:
    """Blocks of odd sizes, fed as fast as possible: the flags are those of pushing in order."""
    rng = np.random.default_rng(4)
    audio = np.where(np.repeat(rng.random(200) < 0.5, FRAME), rng.uniform(-0.3, 0.3, 200 * FRAME), 0)
    cuts = np.sort(rng.choice(np.arange(1, len(audio)), 40, replace=False))
    blocks = [b.astype(np.float32) for b in np.split(audio, cuts)]
    reference = RecordingActivity()
    for block in blocks:
        reference.push((block * 32767).astype("<i2").astype(np.float32) / 32768)  # as the fake decodes
    live = RecordingActivity()
    feed_and_finish(FakeDecoder(), live, blocks)
    assert len(live.flags) == len(reference.flags) == 200
    assert live.flags == reference.flags
