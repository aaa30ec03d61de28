"""Pipecat's speech-to-text services, unmodified, against a real server: ``DeepgramSTTService``
(``base_url`` the server's address; Deepgram's SDK inside) and ``OpenAIRealtimeSTTService``
(``base_url`` …/v1/realtime), each in a pipeline as Pipecat's examples build one — Silero voice
activity detection (the ``VADProcessor``, with the weights Pipecat ships) before the service, a
processor after it standing for the application — fed 20 ms ``InputAudioRawFrame``s at
real-time pace. No transport needed. Pipecat ends turns with its own VAD: at each stop the
Deepgram service sends ``Finalize`` and the OpenAI one commits the input buffer. And
``DeepgramFluxSTTService`` (``url`` …/v2/listen) without a VAD: Flux's turns are the server's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances, stop_server
from tests.support.frameworks import FrameworkRun, drive, start_frameworks_server
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e
WER_BOUND = 0.15  # as for the official SDKs' real-time streams of the same speech


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_frameworks_server(tmp_path_factory.mktemp("pipecat"))
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def speech(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """Two LibriVox utterances, 1 s of silence after each and 0.5 s more at the end (12.6 s)."""
    audio, reference = join_utterances(utterances[:2])
    return np.concatenate([audio, np.zeros(8000, dtype=np.float32)]), reference


def assert_turns_answered(run: FrameworkRun) -> None:
    """Every stop of Pipecat's VAD is answered by a final (it may come after the next start)."""
    stops = run.of("vad_stopped")
    assert len(stops) >= 2, run.events
    finals = run.of("final")
    for stop in stops:
        assert any(f.at >= stop.at for f in finals), (stop, run.events)


def test_pipecat_deepgram_service(server: LiveServer, speech: tuple[np.ndarray, str], tmp_path: Path) -> None:
    audio, reference = speech
    run = drive("pipecat-deepgram", server, audio, tmp_path)
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    assert_turns_answered(run)
    # interim and final text while the speech goes on
    assert run.of("interim") and run.of("final")[0].audio_at < len(audio) / 16000 / 2


def test_pipecat_openai_realtime_service(
    server: LiveServer, speech: tuple[np.ndarray, str], tmp_path: Path
) -> None:
    audio, reference = speech
    run = drive("pipecat-openai", server, audio, tmp_path)
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    # one completed transcription per commit: the turns are Pipecat's, not the server's
    assert_turns_answered(run)
    assert len(run.of("final")) == len(run.of("vad_stopped")), run.events
    assert run.of("interim")  # each item's deltas before its completion


def test_pipecat_deepgram_flux_service(
    server: LiveServer, speech: tuple[np.ndarray, str], tmp_path: Path
) -> None:
    # DeepgramFluxSTTService on /v2/listen, no VAD in the pipeline: the turns are the server's
    # (StartOfTurn and EndOfTurn proposed as the user's turn, its transcript as the final)
    audio, reference = speech
    run = drive("pipecat-flux", server, audio, tmp_path)
    assert run.problems == [], (run.problems, run.log[-3000:])
    assert word_error_rate(reference, run.text) <= WER_BOUND, run.text
    starts, stops, finals = run.of("speech_started"), run.of("speech_stopped"), run.of("final")
    assert len(starts) >= 2 and len(finals) == len(stops) >= 2, run.events
    assert all(f.at <= s.at for f, s in zip(finals, stops, strict=True))
    assert run.of("interim") and run.of("interim")[0].at < finals[0].at
