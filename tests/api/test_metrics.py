"""GET /metrics: parsed with prometheus_client's own parser, in process (fake model) and from
the real server; the scheduler's listener that times model calls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import websockets
from fastapi.testclient import TestClient

from tests.support import LiveServer, Utterance, parse_metrics
from tests.support.fakes import FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.api.metrics import Metrics
from wirescribe.asr.model import DecodeOptions, Transcript
from wirescribe.asr.scheduler import JobTiming, Scheduler
from wirescribe.settings import Settings

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host
WS_LOCAL = "ws://localhost"  # websocket_connect ignores base_url


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), FakeTranscriber()), base_url=LOCAL) as client:  # type: ignore[arg-type]
        yield client


def test_state_is_read_at_scrape_time(http: TestClient) -> None:
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    scraped = parse_metrics(response.text)
    assert scraped["stt_live_sessions"] == 0
    assert scraped["stt_scheduler_queue_depth"] == 0 and scraped["stt_scheduler_running"] == 0
    assert scraped["stt_scheduler_busy_seconds_total"] == 0 and scraped["stt_scheduler_jobs_total"] == 0
    assert scraped["stt_model_load_seconds"] == 0.5
    assert scraped['stt_model_info{compute_type="int8",device="cpu",model="fake"}'] == 1
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?format=pcm16") as ws:
        assert ws.receive_json()["type"] == "ready"
        assert parse_metrics(http.get("/metrics").text)["stt_live_sessions"] == 1


def test_model_calls_audio_and_errors_are_counted(http: TestClient, utterances: list[Utterance]) -> None:
    with utterances[0].wav.open("rb") as f:
        assert http.post("/v1/audio/transcriptions", files={"file": f}).status_code == 200
    assert http.post("/v1/audio/transcriptions", files={"file": ("x.wav", b"junk")}).status_code == 400
    # A live session through the WebSocket edge: 2.5 s of raw audio, one bad control frame.
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?format=pcm16") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(bytes(2 * 40000))
        ws.send_text("not json")
        assert ws.receive_json()["code"] == "bad_message"
        ws.send_text('{"type": "eof"}')
        while ws.receive_json()["type"] != "final":
            pass
    scraped = parse_metrics(http.get("/metrics").text)
    assert scraped["stt_model_call_seconds_count"] == scraped["stt_scheduler_jobs_total"] >= 1
    assert scraped["stt_scheduler_wait_seconds_count"] >= 1
    assert scraped["stt_sessions_total"] == 1
    assert scraped["stt_scheduler_busy_seconds_total"] > 0
    assert scraped["stt_file_transcriptions_total"] == 1
    assert scraped["stt_file_transcriptions_in_progress"] == 0
    assert scraped['stt_audio_seconds_total{source="file"}'] == pytest.approx(7.1, abs=0.1)
    assert scraped['stt_audio_seconds_total{source="live"}'] == 2.5
    assert scraped['stt_errors_total{code="bad_audio"}'] == 1
    assert scraped['stt_errors_total{code="bad_message"}'] == 1


def test_apps_have_their_own_registries() -> None:
    first, second = Metrics(lambda: None), Metrics(lambda: None)  # no "Duplicated timeseries"
    first.count_error("busy")
    assert 'stt_errors_total{code="busy"} 1.0' in first.exposition().decode()
    assert "stt_errors_total{" not in second.exposition().decode()


def test_the_scheduler_tells_its_listeners_how_each_call_went() -> None:
    def model(audio: np.ndarray, options: DecodeOptions) -> Transcript:
        if options.prompt == "fail":
            raise RuntimeError("boom")
        return Transcript((), "en", len(audio) / 16000)

    async def scenario() -> list[JobTiming]:
        timings: list[JobTiming] = []
        scheduler = Scheduler(model)
        scheduler.add_listener(timings.append)
        await scheduler.start()
        try:
            await scheduler.transcribe(np.zeros(32000, dtype=np.float32), DecodeOptions())
            with pytest.raises(RuntimeError):
                await scheduler.transcribe(np.zeros(16000, dtype=np.float32), DecodeOptions(prompt="fail"))
        finally:
            await scheduler.stop()
        return timings

    timings = asyncio.run(scenario())
    assert [(t.audio_seconds, t.failed) for t in timings] == [(2.0, False), (1.0, True)]
    assert all(t.waited >= 0 and t.ran >= 0 for t in timings)


@pytest.mark.e2e
def test_the_real_server_shows_live_sessions_and_the_model(live_server: LiveServer) -> None:
    async def scrape_during_a_session() -> dict[str, float]:
        async with websockets.connect(live_server.ws) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            async with httpx.AsyncClient() as client:
                return parse_metrics((await client.get(f"{live_server.http}/metrics")).text)

    during = asyncio.run(scrape_during_a_session())
    assert during["stt_live_sessions"] >= 1
    assert 0 < during["stt_model_load_seconds"] < 60
    assert during['stt_model_info{compute_type="int8",device="cpu",model="tiny.en"}'] == 1
    assert "stt_scheduler_queue_depth" in during and "stt_scheduler_busy_seconds_total" in during


def test_admission_and_load_are_read_at_scrape_time(http: TestClient) -> None:
    """The admission state (api/admission.py) and the scheduler's lightened closing windows, read
    from the app at scrape; /health carries the same admission state."""
    scraped = parse_metrics(http.get("/metrics").text)
    assert scraped["stt_admission_open"] == 1 and scraped["stt_admission_limit"] >= 1
    assert scraped["stt_admission_ceiling"] >= scraped["stt_admission_limit"]
    assert scraped["stt_scheduler_lightened_total"] == 0
    assert scraped["stt_admission_call_seconds"] > 0
    admission = http.get("/health").json()["admission"]
    assert admission["admit"] and admission["mode"] == "measured" and admission["reason"] is None
    assert admission["load"]["measured"] is False  # nothing measured yet: the prior


def test_interrupted_closing_passes_are_counted() -> None:
    metrics = Metrics(lambda: None)
    metrics.count_interrupted_closings(3)
    metrics.count_interrupted_closings(0)
    assert parse_metrics(metrics.exposition().decode())["stt_closing_passes_interrupted_total"] == 3


def test_a_sessions_policy_counts_at_its_end() -> None:
    class Counts:
        early_words, early_disagreed, interrupted_closings = 5, 1, 2

    metrics = Metrics(lambda: None)
    metrics.count_session(Counts())
    scraped = parse_metrics(metrics.exposition().decode())
    assert scraped["stt_closing_passes_interrupted_total"] == 2
    assert scraped['stt_early_commit_words_total{closing_pass="disagreed"}'] == 1
