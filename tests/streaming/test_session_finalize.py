"""``finalize`` commits what was heard when it came, however late the session gets to it: with a
slow model the update loop is busy when the client finalizes, and speech that starts meanwhile
belongs to the next utterance (it was cut into the finalized one, and a turn ended by the
finalize took the next turn's first word: "Sure." of "Sure, it's printed on my card")."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from tests.support.fakes import run
from tests.support.policy_world import energy_probability
from tests.support.sessions import FakeDecoder
from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import CloseReason, Event, Finalized, SessionConfig, UtteranceEnded
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import LiveSession

SR = 16000
LOW, HIGH = 220.0, 660.0  # the two utterances' tones: the fake model names what it hears


def slow_model(audio: np.ndarray, options: DecodeOptions) -> Transcript:
    """Takes 0.6 s; one word per tone heard in the window ("low" before "high")."""
    time.sleep(0.6)
    words = []
    for name, hz in (("low", LOW), ("high", HIGH)):
        t = np.arange(len(audio)) / SR
        power = np.abs(np.convolve(audio * np.exp(-2j * np.pi * hz * t), np.ones(800), "same"))
        loud = np.flatnonzero(power > 50)
        if len(loud):
            words.append(Word(loud[0] / SR, loud[-1] / SR, f" {name}", 0.9))
    text = "".join(w.text for w in words)
    segments = (Segment(words[0].start, words[-1].end, text, tuple(words)),) if words else ()
    return Transcript(segments, "en", len(audio) / SR)


def tone(hz: float, seconds: float) -> np.ndarray:
    return 0.3 * np.sin(np.arange(int(seconds * SR)) * 2 * np.pi * hz / SR)


def frames(audio: np.ndarray) -> list[bytes]:
    pcm = (audio * 32767).astype("<i2").tobytes()
    step = int(0.05 * SR) * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def test_a_late_finalize_commits_only_what_came_before_it() -> None:
    events: list[Event] = []
    first = np.concatenate([np.zeros(int(0.3 * SR)), tone(LOW, 1.0)])
    second = np.concatenate([np.zeros(int(0.3 * SR)), tone(HIGH, 1.0), np.zeros(int(1.2 * SR))])

    async def main() -> None:
        scheduler = Scheduler(slow_model)
        await scheduler.start()

        async def emit(event: Event) -> None:
            events.append(event)

        policy = StreamingPolicy(VoiceActivity(energy_probability))
        session = LiveSession(FakeDecoder(), policy, scheduler, emit, config=SessionConfig("en"),
                              max_seconds=60, decode_timeout=5)  # fmt: skip
        worker = asyncio.create_task(session.run())
        try:
            for frame in frames(first):
                await session.feed(frame)
                await asyncio.sleep(0.05)
            session.finalize()  # while a 0.6 s model call is likely running
            for frame in frames(second):
                await session.feed(frame)
                await asyncio.sleep(0.05)
            await session.end_input()
            await asyncio.wait_for(worker, 20)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await scheduler.stop()

    run(main)
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    assert [(e.reason, e.text.split()) for e in ends][:1] == [(CloseReason.FINALIZE, ["low"])]
    assert [w for e in ends for w in e.text.split()] == ["low", "high"]
    assert ends[0].end <= 1.3 + 0.1  # the finalized utterance ends where the finalize came
    assert any(isinstance(e, Finalized) and e.closed == ends[0].utterance for e in events)
