"""session.py with fake decoders: a hung or failing decoder ends the session, never hangs it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from wirescribe.api.protocol import ProtocolError
from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.decode import DecodeError, DecoderFailure, FfmpegStreamDecoder, encode_audio
from wirescribe.audio.vad import FRAME, VoiceActivity
from wirescribe.streaming.policy import FinalTranscript, StreamingPolicy
from wirescribe.streaming.session import LiveSession, bad_audio


def always_speech(audio: np.ndarray) -> np.ndarray:
    return np.ones(len(audio) // FRAME + 1, dtype=np.float32)


def hello(audio: np.ndarray, options: DecodeOptions) -> Transcript:
    seconds = len(audio) / 16000
    word = Word(0.1, min(0.5, seconds), " hello", 0.9)
    return Transcript((Segment(0.1, word.end, " hello", (word,), avg_logprob=-0.2),), "en", seconds)


class FakeDecoder:
    """Raw-like decoder whose feed/close/iteration can hang or fail on demand."""

    def __init__(
        self,
        *,
        hang_feed: bool = False,
        hang_close: bool = False,
        hang_finish: bool = False,
        feed_error: Exception | None = None,
        iter_error: Exception | None = None,
    ) -> None:
        self.hang_feed, self.hang_close, self.hang_finish = hang_feed, hang_close, hang_finish
        self.feed_error, self.iter_error = feed_error, iter_error
        self.queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self.aclosed = False

    async def feed(self, data: bytes) -> None:
        if self.feed_error is not None:
            raise self.feed_error
        if self.hang_feed:
            await asyncio.Event().wait()
        self.queue.put_nowait(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768)

    async def close(self) -> None:
        if self.hang_close:
            await asyncio.Event().wait()
        self.queue.put_nowait(None)

    async def aclose(self) -> None:
        self.aclosed = True

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while (block := await self.queue.get()) is not None:
            yield block
        if self.iter_error is not None:
            raise self.iter_error
        if self.hang_finish:
            await asyncio.Event().wait()


async def run_session(decoder: FakeDecoder, audio_seconds: float = 1.0) -> FinalTranscript:
    scheduler = Scheduler(hello)
    await scheduler.start()
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    session = LiveSession(
        decoder, StreamingPolicy(VoiceActivity(always_speech)), scheduler, send,
        language="en", max_seconds=60, decode_timeout=0.3,
    )  # fmt: skip
    worker = asyncio.create_task(session.run())
    try:
        await session.feed(np.zeros(int(audio_seconds * 16000), dtype="<i2").tobytes())
        await session.end_input()
        return await asyncio.wait_for(worker, 5)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await scheduler.stop()


def internal(decoder: FakeDecoder) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        asyncio.run(run_session(decoder))
    assert info.value.close == 1011 and info.value.code == "internal", info.value
    assert decoder.aclosed or decoder.hang_feed or decoder.hang_close
    return info.value


def test_a_healthy_decoder_gives_a_final() -> None:
    final = asyncio.run(run_session(FakeDecoder()))
    assert final.text == "hello" and final.audio_seconds == pytest.approx(1.0)


def test_decoder_not_taking_input_is_internal() -> None:
    assert "taking input" in internal(FakeDecoder(hang_feed=True)).message


def test_decoder_not_closing_is_internal() -> None:
    assert "taking input" in internal(FakeDecoder(hang_close=True)).message


def test_decoder_not_finishing_is_internal() -> None:
    decoder = FakeDecoder(hang_finish=True)
    assert "did not finish" in internal(decoder).message
    assert decoder.aclosed  # the session reaps it (kills ffmpeg) on the way out


def test_decoder_failure_while_feeding_is_internal() -> None:
    internal(FakeDecoder(feed_error=DecoderFailure("ffmpeg was killed (signal 9)")))


def test_decoder_failure_while_decoding_is_internal() -> None:
    internal(FakeDecoder(iter_error=DecoderFailure("ffmpeg was killed (signal 9)")))


def test_bad_audio_stays_bad_audio() -> None:
    with pytest.raises(ProtocolError) as info:
        asyncio.run(run_session(FakeDecoder(feed_error=DecodeError("f32 audio contains NaN"))))
    assert (info.value.code, info.value.close) == ("bad_audio", 1003)


def test_eof_before_any_audio_is_an_empty_final() -> None:
    """ffmpeg fails on an empty input; with no byte fed that is no audio, not bad audio."""
    decoder = FakeDecoder(iter_error=DecodeError("pipe:0: Invalid data found when processing input"))
    final = asyncio.run(run_session(decoder, audio_seconds=0))
    assert final.text == "" and final.audio_seconds == 0


def test_bad_audio_quotes_ffmpeg_without_memory_addresses() -> None:
    error = bad_audio(
        DecodeError("[in#0 @ 0x5610f2860f80] Error opening input: Invalid data; [aist#0:0 @ 0x7f]")
    )
    assert (error.code, error.close) == ("bad_audio", 1003)
    assert "0x" not in error.message and "Error opening input: Invalid data" in error.message


def run_on(loop_kind: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop_kind == "uvloop":  # what uvicorn runs the server on when uvloop is installed
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    else:
        asyncio.run(main())


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_ffmpeg_killed_by_a_signal_is_a_decoder_failure(
    loop_kind: str, joined_speech: tuple[np.ndarray, str]
) -> None:
    """A real ffmpeg, SIGKILLed: feeding and reading both say DecoderFailure (not the client's
    DecodeError), whether the write or the read notices first."""
    webm = encode_audio(joined_speech[0][: 16000 * 4], "webm")

    async def main() -> None:
        for reader_first in (True, False):
            decoder = await FfmpegStreamDecoder.start()

            async def read(d: FfmpegStreamDecoder = decoder) -> None:
                async for _ in d:
                    pass

            reading = asyncio.create_task(read()) if reader_first else None
            await decoder.feed(webm[:4000])
            os.kill(decoder.pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            with pytest.raises(DecoderFailure, match="signal 9"):
                for i in range(4000, len(webm), 4000):
                    await decoder.feed(webm[i : i + 4000])
            with pytest.raises(DecoderFailure, match="signal 9"):
                await (reading if reading is not None else read())
            await decoder.aclose()

    run_on(loop_kind, main)
