"""The fairness metrics: each live session's lag and committed words' latency in shared
histograms (no label per session), windows by kind, the scheduler's longest wait and the
refreshes it held back."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.support import parse_metrics
from tests.support.fakes import FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.api.metrics import Metrics
from wirescribe.asr.scheduler import JobTiming
from wirescribe.settings import Settings

LOCAL = "http://localhost"
WS_LOCAL = "ws://localhost"


@pytest.fixture
def http() -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), FakeTranscriber()), base_url=LOCAL) as client:  # type: ignore[arg-type]
        yield client


def test_a_live_session_fills_the_lag_and_commit_latency_histograms(
    http: TestClient, speech: np.ndarray
) -> None:
    before = parse_metrics(http.get("/metrics").text)
    assert before["stt_scheduler_oldest_wait_seconds"] == 0 and before["stt_scheduler_deferred_total"] == 0
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?format=pcm16") as ws:
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes((speech[: 3 * 16000] * 32767).astype("<i2").tobytes())
        ws.send_text('{"type": "eof"}')
        final = ws.receive_json()
        while final["type"] != "final":
            final = ws.receive_json()
    scraped = parse_metrics(http.get("/metrics").text)
    windows = sum(v for k, v in scraped.items() if k.startswith("stt_model_windows_total"))
    assert windows == scraped["stt_scheduler_jobs_total"] >= 1
    assert scraped["stt_session_lag_seconds_count"] >= 1
    assert 1 <= scraped["stt_commit_latency_seconds_count"] <= len(final["text"].split())  # one per word
    assert not any("session" in k and "id=" in k for k in scraped)  # no label per session


def test_model_windows_are_counted_by_kind() -> None:
    metrics = Metrics(lambda: None)
    metrics.observe(JobTiming(0.1, 0.2, 5.0, False, closing=True))
    metrics.observe(JobTiming(0.1, 0.2, 5.0, False))
    metrics.observe(JobTiming(0.1, 0.2, 5.0, False))
    metrics.observe_lag(0.4)
    metrics.observe_commit_latency(1.7)
    scraped = parse_metrics(metrics.exposition().decode())
    assert scraped['stt_model_windows_total{kind="closing"}'] == 1
    assert scraped['stt_model_windows_total{kind="other"}'] == 2
    assert scraped['stt_session_lag_seconds_bucket{le="0.5"}'] == 1
    assert scraped['stt_commit_latency_seconds_bucket{le="1.5"}'] == 0
    assert scraped['stt_commit_latency_seconds_bucket{le="2.0"}'] == 1
