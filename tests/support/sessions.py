"""Fakes for live-session tests: a decoder that hangs or fails on demand, an always-speech VAD,
a model that hears "hello", and a bounded run of one session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Executor

import numpy as np

from wirescribe.api.protocol import transcript_message
from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import FRAME, VoiceActivity
from wirescribe.streaming.events import Event, SessionConfig, TranscriptChanged
from wirescribe.streaming.policy import FinalTranscript, StreamingPolicy
from wirescribe.streaming.session import LiveSession


def always_speech(audio: np.ndarray) -> np.ndarray:
    return np.ones(len(audio) // FRAME + 1, dtype=np.float32)


def hello(audio: np.ndarray, options: DecodeOptions) -> Transcript:
    seconds = len(audio) / 16000
    word = Word(0.1, min(0.5, seconds), " hello", 0.9)
    return Transcript((Segment(0.1, word.end, " hello", (word,), avg_logprob=-0.2),), "en", seconds)


class FakeDecoder:
    """Raw-like decoder (pcm16 in, float32 out) whose feed/close/iteration can hang or fail on
    demand; counts how often it was reaped."""

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
        self.aclose_calls = 0

    @property
    def aclosed(self) -> bool:
        return self.aclose_calls > 0

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
        self.aclose_calls += 1

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while (block := await self.queue.get()) is not None:
            yield block
        if self.iter_error is not None:
            raise self.iter_error
        if self.hang_finish:
            await asyncio.Event().wait()


def make_session(
    decoder: FakeDecoder,
    scheduler: Scheduler,
    sent: list[dict[str, object]] | None = None,
    *,
    vad: VoiceActivity | None = None,
    vad_executor: Executor | None = None,
    max_seconds: float = 60,
) -> LiveSession:
    """A session on ``decoder`` whose messages go to ``sent``; hung decoders time out in 0.3 s."""
    messages: list[dict[str, object]] = [] if sent is None else sent

    async def emit(event: Event) -> None:
        if isinstance(event, TranscriptChanged):
            messages.append(transcript_message(event))

    policy = StreamingPolicy(vad or VoiceActivity(always_speech))
    return LiveSession(
        decoder, policy, scheduler, emit, config=SessionConfig(language="en"), max_seconds=max_seconds,
        decode_timeout=0.3, vad_executor=vad_executor,
    )  # fmt: skip


async def run_session(decoder: FakeDecoder, audio_seconds: float = 1.0) -> FinalTranscript:
    """Feed ``audio_seconds`` of silence (the fake VAD calls it speech), end the input and
    return the final; at most 5 s."""
    scheduler = Scheduler(hello)
    await scheduler.start()
    session = make_session(decoder, scheduler)
    worker = asyncio.create_task(session.run())
    try:
        await session.feed(np.zeros(int(audio_seconds * 16000), dtype="<i2").tobytes())
        await session.end_input()
        return await asyncio.wait_for(worker, 5)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
        await scheduler.stop()
