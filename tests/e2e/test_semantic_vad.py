"""OpenAI Realtime ``semantic_vad`` end to end: the official ``openai`` client against a real server
(real model, real end-of-turn model), real speech in real time. With ``semantic_vad`` an item is a
turn — a hesitation inside a sentence does not end it — while ``server_vad`` stays silence-based
and ends an item at every pause of ``silence_duration_ms`` (docs/compatibility.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances
from tests.support.compat_clients import SAMPLE_RATE, SdkRun, openai_realtime
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e
WER_BOUND = 0.15  # as for the other SDKs' real-time streams of the same speech
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


def turns_of(run: SdkRun) -> list[dict[str, Any]]:
    """The completed items with text, after checking what holds for any run: no error, and each
    item's deltas add up to its completed transcript."""
    assert not run.of_type("error"), run.of_type("error")
    deltas = run.of_type(DELTA)
    turns = [c for c in run.of_type(COMPLETED) if c["transcript"]]
    for turn in turns:
        assert (
            "".join(d["delta"] for d in deltas if d["item_id"] == turn["item_id"]).strip()
            == turn["transcript"]
        )
    return turns


def with_hesitation(speech: np.ndarray, pause: float = 0.8) -> np.ndarray:
    """``speech`` with ``pause`` seconds of silence cut in mid-sentence: at its quietest 20 ms
    between 40 % and 60 % of it (between two words), then 2 s of silence after it."""
    frame = SAMPLE_RATE // 50
    lo, hi = int(len(speech) * 0.4) // frame, int(len(speech) * 0.6) // frame
    energy = [float(np.sum(speech[i * frame : (i + 1) * frame] ** 2)) for i in range(lo, hi)]
    cut = (lo + int(np.argmin(energy))) * frame + frame // 2
    silence = np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([speech[:cut], silence, speech[cut:], np.zeros(2 * SAMPLE_RATE, dtype=np.float32)])


def test_semantic_vad_makes_an_item_of_each_turn(
    live_server: LiveServer, utterances: list[Utterance]
) -> None:
    """Two sentences 3 s apart (longer than high eagerness' 2 s timeout): two items, each with
    its speech_started and speech_stopped, their text the speech's."""
    audio, reference = join_utterances([utterances[0], utterances[-1]], pause=3.0)
    turn_detection = {"type": "semantic_vad", "eagerness": "high"}
    run = asyncio.run(openai_realtime(live_server.http, audio, turn_detection=turn_detection))
    updated = run.of_type("session.updated")[0]["session"]["audio"]["input"]["turn_detection"]
    assert updated == {"type": "semantic_vad", "eagerness": "high"}
    turns = turns_of(run)
    assert len(turns) == 2, [t["transcript"] for t in turns]
    assert len(run.of_type("input_audio_buffer.speech_started")) == 2
    stopped = run.of_type("input_audio_buffer.speech_stopped")
    assert [s["item_id"] for s in stopped] == [t["item_id"] for t in turns]
    text = " ".join(t["transcript"] for t in turns)
    assert word_error_rate(reference, text) <= WER_BOUND, text


def test_a_hesitation_ends_an_item_with_server_vad_but_not_the_turn(
    live_server: LiveServer, speech: np.ndarray, utterances: list[Utterance]
) -> None:
    """The same sentence with a 0.8 s pause cut into its middle: server VAD (500 ms of silence)
    ends an item at the pause; semantic VAD with low eagerness hears an unfinished sentence and
    keeps one item for the whole turn."""
    audio = with_hesitation(speech)
    silence_based = asyncio.run(openai_realtime(
        live_server.http, audio, turn_detection={"type": "server_vad", "silence_duration_ms": 500}
    ))  # fmt: skip
    assert len(turns_of(silence_based)) >= 2
    semantic = asyncio.run(openai_realtime(
        live_server.http, audio, turn_detection={"type": "semantic_vad", "eagerness": "low"}
    ))  # fmt: skip
    (turn,) = turns_of(semantic)
    assert word_error_rate(utterances[0].text, turn["transcript"]) <= WER_BOUND, turn["transcript"]


def test_a_bad_eagerness_gets_openais_error(live_server: LiveServer, speech: np.ndarray) -> None:
    turn_detection = {"type": "semantic_vad", "eagerness": "eventually"}
    run = asyncio.run(
        openai_realtime(live_server.http, speech[:8000], turn_detection=turn_detection, settle=1.0)
    )
    (error,) = run.of_type("error")
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.audio.input.turn_detection"
