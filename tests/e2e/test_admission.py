"""End to end: admission by measured load. A real server with one model worker and a fixed
ceiling of 8 sessions; one session of real speech sent faster than real time keeps the worker
busy, the admission measures it, and the next client gets ``busy``/1013 well under the ceiling,
while /health and /metrics show why. The session admitted is served to its ``final``."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances, parse_metrics, start_server, stop_server
from tests.support.ws import exchange, health
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e

CEILING = 8


@pytest.fixture(scope="module")
def measured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"STT_SCHEDULER_WORKERS": "1", "STT_CPU_THREADS": "1", "STT_MAX_SESSIONS": str(CEILING),
           "STT_MAX_SESSIONS_PER_CLIENT": "0"}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("admission"), env=env)
    yield server
    stop_server(server)


def metrics(server: LiveServer) -> dict[str, float]:
    with urllib.request.urlopen(server.http + "/metrics", timeout=5) as reply:
        return parse_metrics(reply.read().decode())


def closed_door(server: LiveServer, timeout: float) -> dict[str, Any] | None:
    """Poll /health until the admission refuses a new session; its admission state (None: never)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admission: dict[str, Any] = health(server)["admission"]
        if not admission["admit"]:
            return admission
        time.sleep(0.2)  # polling the server's state, not waiting for readiness
    return None


def test_the_next_client_gets_busy_when_the_measured_load_says_no(
    measured_server: LiveServer, utterances: list[Utterance]
) -> None:
    idle = health(measured_server)["admission"]
    assert idle["admit"] and idle["mode"] == "measured" and idle["ceiling"] == CEILING, idle
    audio, reference = join_utterances(utterances * 3, pause=0.4)  # ~60 s of dense speech
    chunks = webm_slices(audio)

    async def scenario() -> tuple[StreamResult, dict[str, Any] | None, StreamResult, dict[str, float]]:
        # Four times real time (the audio rate limit's sustained pace) after the first burst.
        busy_session = asyncio.create_task(stream(measured_server.ws, chunks, interval=0.0625, timeout=300))
        door = await asyncio.to_thread(closed_door, measured_server, 60)
        refused = await exchange(measured_server.ws, [json.dumps({"type": "eof"})])
        scraped = await asyncio.to_thread(metrics, measured_server)
        return await busy_session, door, refused, scraped

    served, door, refused, scraped = asyncio.run(scenario())
    assert door is not None, "the admission never closed with the one worker saturated"
    assert door["sessions"] == 1 and door["limit"] <= 1 < CEILING, door
    assert [m["code"] for m in refused.errors] == ["busy"] and refused.close_code == 1013, refused.messages
    assert "measured capacity" in refused.errors[0]["message"], refused.errors
    assert scraped["stt_admission_open"] == 0 and scraped["stt_admission_ceiling"] == CEILING, scraped
    assert scraped["stt_admission_limit"] <= 1
    # The session admitted was served: its final, and its words.
    assert served.final is not None and served.close_code == 1000, served.messages[-3:]
    assert word_error_rate(reference, served.final["text"]) < 0.15
    assert np.isfinite(scraped["stt_admission_call_seconds"])
