"""A live stream that decodes to far more audio than it carries bytes (a header that lies about
its sample rate) ends with ``bad_audio`` before the audio is kept; an upload's decoded audio is
capped (:func:`~wirescribe.streaming.files.capped`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.support.sessions import FakeDecoder, always_speech, hello
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.errors import SessionError
from wirescribe.streaming.events import Event, SessionConfig
from wirescribe.streaming.files import AudioTooLong, capped
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import LiveSession

SR = 16000


class InflatingDecoder(FakeDecoder):
    """Every byte fed becomes ``seconds_per_byte`` of audio (a WAV claiming a 1 Hz rate: 1 s)."""

    def __init__(self, seconds_per_byte: float) -> None:
        super().__init__()
        self.seconds_per_byte = seconds_per_byte

    async def feed(self, data: bytes) -> None:
        samples = int(len(data) * self.seconds_per_byte * SR)
        for start in range(0, samples, SR):  # one-second blocks, as ffmpeg hands out
            self.queue.put_nowait(np.zeros(min(SR, samples - start), dtype=np.float32))


async def run_inflating(
    seconds_per_byte: float, min_bitrate: float, fed: int
) -> tuple[float, InflatingDecoder]:
    decoder = InflatingDecoder(seconds_per_byte)
    scheduler = Scheduler(hello)
    await scheduler.start()

    async def send(event: Event) -> None:
        pass

    policy = StreamingPolicy(VoiceActivity(always_speech))
    session = LiveSession(
        decoder,
        policy,
        scheduler,
        send,
        config=SessionConfig("en"),
        max_seconds=7200,
        min_input_bitrate=min_bitrate,
    )
    worker = asyncio.create_task(session.run())
    try:
        for _ in range(fed // 100):
            await session.feed(bytes(100))
            await asyncio.sleep(0)
        await session.end_input()
        await asyncio.wait_for(worker, 20)
        return session.audio_seconds, decoder
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await scheduler.stop()


def test_a_stream_that_inflates_ends_with_bad_audio() -> None:
    async def main() -> None:
        with pytest.raises(SessionError) as info:
            await run_inflating(1.0, 2000.0, 1000)
        assert info.value.code == "bad_audio"
        assert "sample rate" in info.value.message

    asyncio.run(main())


def test_the_bomb_is_stopped_before_its_audio_is_kept() -> None:
    async def main() -> None:
        scheduler_audio: list[float] = []
        decoder = InflatingDecoder(1.0)
        scheduler = Scheduler(hello)
        await scheduler.start()

        async def send(event: Event) -> None:
            pass

        session = LiveSession(
            decoder, StreamingPolicy(VoiceActivity(always_speech)), scheduler, send,
            config=SessionConfig("en"), max_seconds=7200, min_input_bitrate=2000.0,
        )  # fmt: skip
        worker = asyncio.create_task(session.run())
        await session.feed(bytes(1000))  # 1000 s of audio at once; allowed: 10 s + 4 s
        with pytest.raises(SessionError):
            await asyncio.wait_for(worker, 20)
        scheduler_audio.append(session.audio_seconds)
        await scheduler.stop()
        assert scheduler_audio[0] <= 10 + 1000 * 8 / 64
        assert decoder.aclosed

    asyncio.run(main())


def test_an_honest_stream_is_not_refused() -> None:
    # 32 kbit/s Opus: 4000 bytes a second of audio
    audio, decoder = asyncio.run(run_inflating(1 / 4000, 2000.0, 40000))
    assert audio == pytest.approx(10.0, abs=0.1) and decoder.aclosed


def test_no_minimum_bitrate_takes_any_stream() -> None:
    audio, _ = asyncio.run(run_inflating(0.5, 0.0, 200))
    assert audio == pytest.approx(100.0, abs=1)


async def blocks(count: int, seconds: float) -> AsyncIterator[np.ndarray]:
    for _ in range(count):
        yield np.zeros(int(seconds * SR), dtype=np.float32)


def test_capped_passes_audio_under_the_limit() -> None:
    async def main() -> float:
        return sum([len(b) async for b in capped(blocks(10, 1.0), 10.0)]) / SR

    assert asyncio.run(main()) == 10.0


def test_capped_refuses_past_the_limit_without_reading_on() -> None:
    read = 0

    async def counted() -> AsyncIterator[np.ndarray]:
        nonlocal read
        async for b in blocks(1000, 1.0):
            read += 1
            yield b

    async def main() -> None:
        async for _ in capped(counted(), 5.0):
            pass

    with pytest.raises(AudioTooLong, match="limit of 5 s"):
        asyncio.run(main())
    assert read == 6
