"""Turn-taking wired through a live session (session.py + live_turns.py) with a fake model and a
fake end-of-turn scorer: a pause the scorer calls final ends the utterance and the turn long
before the endpointing, with the closing pass's text; one it calls unfinished does not; the
scorer hears the turn's audio up to the pause; a session without turns never calls it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from tests.support.fakes import run
from tests.support.policy_world import energy_probability
from tests.support.sessions import FakeDecoder
from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import (
    Event,
    SessionConfig,
    TurnEnded,
    TurnStarted,
    TurnTrigger,
    UtteranceEnded,
)
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import LiveSession

SR = 16000


def hears_a_sentence(audio: np.ndarray, options: DecodeOptions, last: float = 0.9) -> Transcript:
    """Two words over whatever loud audio the window holds, with a full stop; the last one heard
    with probability ``last``."""
    loud = np.flatnonzero(np.abs(audio) > 0.05)
    if len(loud) == 0:
        return Transcript((), "en", len(audio) / SR)
    a, b = loud[0] / SR, loud[-1] / SR
    words = (Word(a, (a + b) / 2, " Book", 0.9), Word((a + b) / 2, b, " it.", last))
    return Transcript((Segment(a, b, " Book it.", words, avg_logprob=-0.1),), "en", len(audio) / SR)


def hears_it_unsure(audio: np.ndarray, options: DecodeOptions) -> Transcript:
    """The same words, the last one heard unsure (as Whisper closes a phrase stopped short)."""
    return hears_a_sentence(audio, options, last=0.3)


class Scorer:
    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.heard: list[np.ndarray] = []

    async def score(self, audio: np.ndarray) -> float:
        self.heard.append(audio)
        return self.probability


def speech_then_silence(speech: float, silence: float) -> list[bytes]:
    tone = 0.3 * np.sin(np.arange(int(speech * SR)) * 2 * np.pi * 220 / SR)
    audio = np.concatenate([np.zeros(int(0.3 * SR)), tone, np.zeros(int(silence * SR))])
    pcm = (audio * 32767).astype("<i2").tobytes()
    step = int(0.05 * SR) * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def stream(scorer: Scorer | None, config: SessionConfig, hears: Callable[..., Transcript] = hears_a_sentence
           ) -> list[tuple[float, Event]]:
    """Events with the seconds of audio fed when each came (0.05 s frames, paced)."""
    timeline: list[tuple[float, Event]] = []
    fed = [0.0]

    async def main() -> None:
        scheduler = Scheduler(hears)
        await scheduler.start()

        async def emit(event: Event) -> None:
            timeline.append((fed[0], event))

        policy = StreamingPolicy(VoiceActivity(energy_probability))
        session = LiveSession(FakeDecoder(), policy, scheduler, emit, config=config, max_seconds=60,
                              decode_timeout=2, turn_scorer=scorer)  # fmt: skip
        worker = asyncio.create_task(session.run())
        try:
            for frame in speech_then_silence(1.5, 1.5):
                await session.feed(frame)
                fed[0] += 0.05
                await asyncio.sleep(0.01)
            await session.end_input()
            await asyncio.wait_for(worker, 5)
        finally:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
            await scheduler.stop()

    run(main)
    return timeline


def test_a_pause_the_model_calls_final_ends_the_turn_before_the_endpointing() -> None:
    scorer = Scorer(0.95)
    timeline = stream(scorer, SessionConfig("en", turns=True))
    ends = [(t, e) for t, e in timeline if isinstance(e, UtteranceEnded)]
    turns = [(t, e) for t, e in timeline if isinstance(e, TurnEnded)]
    assert len(ends) == 1 and len(turns) == 1
    (at, turn) = turns[0]
    assert turn.trigger is TurnTrigger.MODEL and turn.text == "Book it." and turn.confidence >= 0.95
    assert at < 1.8 + 0.5, f"ended {at - 1.8:.2f} s after the speech: not before the 0.8 s endpointing"
    assert [type(e) for _, e in timeline].index(TurnStarted) < [type(e) for _, e in timeline].index(TurnEnded)
    assert ends[0][0] <= at
    assert len(scorer.heard) == 1 and 1.5 * SR <= len(scorer.heard[0]) <= 2.2 * SR  # the turn, to the pause


def test_a_pause_the_model_calls_unfinished_waits() -> None:
    scorer = Scorer(0.05)
    timeline = stream(scorer, SessionConfig("en", turns=True))
    turns = [e for _, e in timeline if isinstance(e, TurnEnded)]
    assert [(e.trigger, e.text) for e in turns] == [(TurnTrigger.EOF, "Book it.")]  # 1.5 s: still open
    ends = [t for t, e in timeline if isinstance(e, UtteranceEnded)]
    assert len(ends) == 1 and ends[0] >= 1.8 + 0.7  # the endpointing, not the turn model, ended it


def test_a_last_word_heard_unsure_keeps_the_turn_open_whatever_the_model_says() -> None:
    """The word's probability travels from the model's words through the policy's tentative
    text to the turn-taking: with it unsure, the same confident scorer ends no turn early."""
    scorer = Scorer(0.95)
    timeline = stream(scorer, SessionConfig("en", turns=True), hears=hears_it_unsure)
    turns = [(t, e) for t, e in timeline if isinstance(e, TurnEnded)]
    ends = [t for t, e in timeline if isinstance(e, UtteranceEnded)]
    assert scorer.heard and len(turns) == 1 and len(ends) == 1
    assert ends[0] >= 1.8 + 0.7  # the endpointing, not the turn model, ended the utterance
    assert turns[0][0] >= ends[0] and turns[0][1].text == "Book it."  # the turn ended after it


def test_a_session_without_turns_never_calls_the_scorer() -> None:
    scorer = Scorer(0.95)
    timeline = stream(scorer, SessionConfig("en"))
    assert scorer.heard == [] and not any(isinstance(e, TurnStarted | TurnEnded) for _, e in timeline)
