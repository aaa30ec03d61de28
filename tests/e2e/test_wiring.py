"""The wiring, seen from outside: a real session through ``uvicorn server:app`` shows up in
``/metrics`` and in the server's log (with its session id); a bad setting stops the server and
the CLI with one line naming it."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import websockets

from tests.support import ROOT, LiveServer, Utterance, free_port, parse_metrics
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.client import stream, webm_slices


def scrape(server: LiveServer) -> dict[str, float]:
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=10) as r:
        return parse_metrics(r.read().decode())


def live(metrics: dict[str, float]) -> float:
    return metrics.get('stt_audio_seconds_total{source="live"}', 0.0)


@pytest.mark.e2e
def test_a_real_session_shows_in_metrics_and_in_the_log(
    live_server: LiveServer, utterances: list[Utterance]
) -> None:
    audio = decode_file(utterances[0].wav)
    seconds = len(audio) / SAMPLE_RATE
    before = scrape(live_server)

    async def session() -> str:
        result = await stream(live_server.ws, webm_slices(audio), interval=0.05)
        (ready,) = result.of_type("ready")
        assert result.of_type("final"), result.messages
        async with websockets.connect(live_server.ws) as ws:  # a second session, with a bad frame
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send("not json")
            assert json.loads(await ws.recv())["code"] == "bad_message"
            await ws.send('{"type": "eof"}')
            while json.loads(await ws.recv())["type"] != "final":
                pass
        return str(ready["session_id"])

    session_id = asyncio.run(session())
    after = scrape(live_server)
    assert live(after) - live(before) == pytest.approx(seconds, abs=0.3)
    assert after["stt_sessions_total"] - before.get("stt_sessions_total", 0) == 2
    bad = 'stt_errors_total{code="bad_message"}'
    assert after[bad] - before.get(bad, 0) == 1
    assert after["stt_model_call_seconds_count"] > before.get("stt_model_call_seconds_count", 0)
    assert after["stt_live_sessions"] == 0
    # The app's own lines reach the log under plain uvicorn, each with its session's id.
    log = live_server.log.read_text()
    mine = [line for line in log.splitlines() if f"[session={session_id}]" in line]
    assert any("wirescribe.api.edge" in line and "session opened" in line for line in mine), log[-3000:]
    assert any("session closed" in line for line in mine)
    assert re.search(r"INFO wirescribe\.asr\.model \[session=-\] loaded model tiny\.en", log)


def test_a_bad_setting_stops_the_server_with_one_line(tmp_path: Path) -> None:
    env = {"STT_MAX_UPLOAD_BYTES": "lots", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "uvicorn", "server:app", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "STT_MAX_UPLOAD_BYTES must be a whole number, not 'lots'" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [("STT_DEVICE", "gpu", "STT_DEVICE must be one of auto, cpu, cuda"),
     ("STT_CPU_THREADS", "two", "STT_CPU_THREADS must be a whole number"),
     ("STT_LOG_FORMAT", "xml", "STT_LOG_FORMAT must be one of text, json")],
)  # fmt: skip
def test_a_bad_setting_is_one_line_in_the_cli(name: str, value: str, says: str, tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "cli.py", "stt", str(wav)],
        cwd=ROOT, env={name: value, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {says}" + proc.stderr.strip().split(says, 1)[1]]
