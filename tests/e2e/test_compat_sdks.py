"""The official, unmodified clients of OpenAI's Realtime API (``openai``) and Deepgram's live API
(``deepgram-sdk``) against a real server on a free port, streaming real speech in real time."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances
from tests.support.compat_clients import deepgram_live, openai_realtime
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e
WER_BOUND = 0.15  # as for the native protocol's real-time pcm16 stream of the same speech


@pytest.fixture(scope="module")
def two_utterances(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """The first two LibriVox utterances with a 1 s pause after each (about 15 s)."""
    return join_utterances(utterances[:2])


def test_openai_realtime_client_transcribes_in_turns(
    live_server: LiveServer, two_utterances: tuple[np.ndarray, str]
) -> None:
    audio, reference = two_utterances
    run = asyncio.run(openai_realtime(live_server.http, audio))
    kinds = [t.message["type"] for t in run.messages]
    assert kinds[0] == "session.created" and "session.updated" in kinds
    assert "error" not in kinds, [t.message for t in run.messages if t.message["type"] == "error"]
    completed = run.of_type("conversation.item.input_audio_transcription.completed")
    deltas = run.of_type("conversation.item.input_audio_transcription.delta")
    # Two utterances: at least two server-VAD turns (a reader's pause inside a sentence may end
    # one at 500 ms of silence; the final commit answers with an empty one).
    turns = [c for c in completed if c["transcript"]]
    assert len(turns) >= 2, [c["transcript"] for c in completed]
    assert len(run.of_type("input_audio_buffer.speech_started")) >= 2
    assert len(run.of_type("input_audio_buffer.speech_stopped")) >= 2
    # Every turn's deltas add up to its completed transcript, and arrive before it.
    for turn in turns:
        joined = "".join(d["delta"] for d in deltas if d["item_id"] == turn["item_id"])
        assert joined.strip() == turn["transcript"]
    text = " ".join(c["transcript"] for c in turns)
    assert word_error_rate(reference, text) <= WER_BOUND, text
    # Text arrives while the speech goes on, not only at the end.
    first_delta = next(t.at for t in run.messages if t.message["type"].endswith("transcription.delta"))
    assert first_delta < run.sent_seconds / 2


def test_deepgram_client_transcribes_with_finals_and_utterance_ends(
    live_server: LiveServer, two_utterances: tuple[np.ndarray, str]
) -> None:
    audio, reference = two_utterances
    run = asyncio.run(deepgram_live(
        live_server.http, audio, interim_results=True, utterance_end_ms=1000, vad_events=True,
        punctuate=True, endpointing=300, language="en",
    ))  # fmt: skip
    assert run.close_code == 1000  # a clean close after CloseStream
    kinds = [t.message["type"] for t in run.messages]
    assert "Error" not in kinds
    assert kinds[-1] == "Metadata"
    results = run.of_type("Results")
    finals = [r for r in results if r["is_final"]]
    interims = [r for r in results if not r["is_final"]]
    assert interims, "interim_results=true gives interim results"
    assert sum(r["speech_final"] for r in finals) >= 2  # one per utterance
    assert len(run.of_type("UtteranceEnd")) >= 2 and len(run.of_type("SpeechStarted")) >= 2
    text = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in finals)
    assert word_error_rate(reference, text) <= WER_BOUND, text
    # Final spans never overlap and follow each other.
    ends = [(r["start"], r["start"] + r["duration"]) for r in finals]
    assert all(ends[i][1] <= ends[i + 1][0] + 1e-3 for i in range(len(ends) - 1))
    words = [w for r in finals for w in r["channel"]["alternatives"][0]["words"]]
    assert words and all(w["start"] <= w["end"] for w in words)
    meta = run.of_type("Metadata")[0]
    assert meta["duration"] == pytest.approx(len(audio) / 16000, abs=0.2)
