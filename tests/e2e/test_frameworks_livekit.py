"""LiveKit Agents' speech-to-text plugins, unmodified, against a real server: the Deepgram
plugin (``deepgram.STT(base_url=…/v1/listen)``) and the OpenAI plugin in realtime mode
(``openai.STT(use_realtime=True, base_url=…/v1)``) and, for Deepgram Flux, ``deepgram.STTv2``
(``base_url=ws://…/v2/listen``), each through its own stream API
(``stt.stream()``: ``push_frame`` of 20 ms frames at real-time pace, ``end_input``, the
``SpeechEvent`` iterator), as an agent's room input would drive it. No LiveKit room needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances, stop_server
from tests.support.frameworks import WINDOW, drive, start_frameworks_server
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e
WER_BOUND = 0.15  # as for the official SDKs' real-time streams of the same speech


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_frameworks_server(tmp_path_factory.mktemp("livekit"))
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def speech(utterances: list[Utterance]) -> tuple[np.ndarray, str, float]:
    """Two LibriVox utterances, 1 s of silence after each (12.6 s in all, as a microphone sends
    them); and where the first one's silence ends."""
    audio, reference = join_utterances(utterances[:2])
    audio = np.concatenate([audio, np.zeros(8000, dtype=np.float32)])
    first, _ = join_utterances(utterances[:1])
    return audio, reference, len(first) / 16000


def test_livekit_deepgram_plugin(
    server: LiveServer, speech: tuple[np.ndarray, str, float], tmp_path: Path
) -> None:
    audio, reference, _ = speech
    run = drive("livekit-deepgram", server, audio, tmp_path)
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    # Each utterance: its start and its end of speech (speech_final or UtteranceEnd), in order
    starts, stops = run.of("speech_started"), run.of("speech_stopped")
    assert len(starts) >= 2 and len(stops) >= 2, run.events
    assert starts[0].at < stops[0].at < starts[1].at
    # finals while the speech goes on, not only at the end; the stream ends after end_input
    # (the plugin sends CloseStream, the server its last results and a close)
    assert run.of("final")[0].audio_at < len(audio) / 16000 / 2
    assert run.of("stream_open") == []


def test_livekit_openai_plugin_pausing_and_waiting(
    server: LiveServer, speech: tuple[np.ndarray, str, float], tmp_path: Path
) -> None:
    # The input stops for over half a trickle window between the two utterances (a muted
    # track: no frames) and, once it has ended, the plugin keeps its socket open sending nothing
    # (as it does waiting for a last transcript) for most of a window after its last audio: the
    # trickle floor must take neither for a trickle (a sliding window at 0.5 s/s ended both
    # after half a window: issue 22, point 7).
    audio, reference, first_end = speech
    options = {"pause_at": first_end, "pause": 0.6 * WINDOW, "linger": 0.75 * WINDOW}
    run = drive("livekit-openai", server, audio, tmp_path, options)
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    # server-VAD turns: speech_started, interim text as it grows, speech_stopped, then the final
    starts, stops, finals = run.of("speech_started"), run.of("speech_stopped"), run.of("final")
    assert len(starts) >= 2 and len(stops) >= 2 and len(finals) >= 2, run.events
    assert starts[0].at < stops[0].at <= finals[0].at
    assert run.of("interim") and run.of("interim")[0].at < finals[0].at
    # the stream was still open (and not failed) after lingering
    assert run.of("stream_open"), run.events


def test_livekit_deepgram_flux_plugin(
    server: LiveServer, speech: tuple[np.ndarray, str, float], tmp_path: Path
) -> None:
    # deepgram.STTv2 on /v2/listen: the server's turns (StartOfTurn, Update, EndOfTurn) become
    # START_OF_SPEECH, interim transcripts, and a FINAL_TRANSCRIPT with END_OF_SPEECH per turn
    audio, reference, _ = speech
    run = drive("livekit-flux", server, audio, tmp_path, {"linger": 3.0})
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    starts, stops, finals = run.of("speech_started"), run.of("speech_stopped"), run.of("final")
    assert len(starts) >= 2 and len(finals) == len(stops) >= 2, run.events
    assert all(f.at <= s.at for f, s in zip(finals, stops, strict=True))  # each turn's text, then its end
    assert run.of("interim") and run.of("interim")[0].at < finals[0].at
