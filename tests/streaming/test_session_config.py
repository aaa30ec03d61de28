"""session.py with a recording model: ``configure`` reaches the very next model call (language,
keyterms and prompt as hotwords, endpointing), ``finalize`` commits without an eof, and the
closing window gets the strong decode while refreshes stay cheap."""

from __future__ import annotations

import asyncio

import numpy as np

from tests.support.fakes import run
from tests.support.sessions import FakeDecoder, always_speech
from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import (
    CloseReason,
    Event,
    Finalized,
    SessionConfig,
    TranscriptChanged,
    UtteranceEnded,
)
from wirescribe.streaming.policy import StreamingPolicy, Window
from wirescribe.streaming.session import LiveSession, live_decode_options
from wirescribe.streaming.window import WindowKind

SR = 16000


class Recorder:
    """A model that hears one word per second of window and records the options of each call."""

    def __init__(self) -> None:
        self.calls: list[DecodeOptions] = []

    def __call__(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        self.calls.append(options)
        seconds = len(audio) / SR
        words = tuple(Word(i + 0.1, i + 0.6, f" w{i}", 0.9) for i in range(int(seconds)))
        text = "".join(w.text for w in words)
        return Transcript(
            (Segment(0.0, seconds, text, words, avg_logprob=-0.2),) if words else (), "en", seconds
        )


async def feed(session: LiveSession, seconds: float) -> None:
    """``seconds`` of audio (the fake VAD calls all of it speech) in 0.1 s frames, paced."""
    frame = np.full(int(0.1 * SR), 1000, dtype="<i2").tobytes()
    for _ in range(int(seconds * 10)):
        await session.feed(frame)
        await asyncio.sleep(0.01)


def test_configure_reaches_the_next_model_call_and_finalize_commits_without_eof() -> None:
    model = Recorder()
    events: list[Event] = []

    async def main() -> None:
        scheduler = Scheduler(model)
        await scheduler.start()

        async def emit(event: Event) -> None:
            events.append(event)

        policy = StreamingPolicy(VoiceActivity(always_speech))
        session = LiveSession(
            FakeDecoder(),
            policy,
            scheduler,
            emit,
            config=SessionConfig("en"),
            max_seconds=60,
            decode_timeout=2,
        )
        worker = asyncio.create_task(session.run())
        try:
            await feed(session, 2.0)
            before = len(model.calls)
            assert before and all(o.hotwords is None and o.language == "en" for o in model.calls)
            session.configure(SessionConfig("de", ("Asterisk", "Dashwood"), "A call about telephony.", 300))
            assert policy.pause == 0.3
            await feed(session, 1.0)
            after = model.calls[before:]
            assert after and all(o.language == "de" for o in after)
            assert all(o.hotwords == "A call about telephony. Asterisk, Dashwood" for o in after)
            session.finalize()
            for _ in range(200):
                if any(isinstance(e, Finalized) for e in events):
                    break
                await asyncio.sleep(0.01)
            ends = [e for e in events if isinstance(e, UtteranceEnded)]
            assert [e.reason for e in ends] == ["finalize"]
            committed = [e for e in events if isinstance(e, TranscriptChanged)][-1]
            assert committed.tentative == "" and committed.committed == ends[0].text.strip()
            assert all(o.beam_size == 1 and o.temperature == (0.0,) for o in model.calls[:before])
            await session.end_input()
            final = await asyncio.wait_for(worker, 5)
            assert final.text.startswith(committed.committed)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await scheduler.stop()

    run(main)


def test_the_closing_window_gets_the_strong_decode_and_live_ones_stay_cheap() -> None:
    audio = np.zeros(5 * SR, dtype=np.float32)
    live = live_decode_options(Window(audio, 0, ""), "en", 8.0, "Asterisk")
    closing_window = Window(audio, 0, "", WindowKind.CLOSE, CloseReason.PAUSE)
    closing = live_decode_options(closing_window, "en", 8.0, "Asterisk")
    grown = live_decode_options(Window(audio, 0, "", WindowKind.CUT), "en", 8.0)
    assert (live.beam_size, live.temperature, live.context_seconds) == (1, (0.0,), 8.0)
    assert (closing.beam_size, len(closing.temperature), closing.context_seconds) == (5, 6, 8.0)
    assert (grown.beam_size, grown.temperature) == (1, (0.0,))  # a long window is not an utterance end
    assert live.hotwords == closing.hotwords == "Asterisk"
    assert closing.without_timestamps and closing.single_pass  # the seek loop invented sentences
