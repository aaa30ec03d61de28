"""End to end: admission by measured load. A real server with one model worker under a ceiling of
20 sessions; sessions of real speech at real time are admitted until the limit the admission
sizes from the model calls it measures says no; the next client gets ``busy``/1013, /health and
/metrics show the measured limit, and every session admitted is served to its ``final``."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import LiveServer, Utterance, join_utterances, parse_metrics, start_server, stop_server
from tests.support.ws import health
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e

CEILING = 20


@pytest.fixture(scope="module")
def measured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # An explicit STT_MAX_SESSIONS is a fixed limit unless STT_ADMISSION=measured makes it a ceiling.
    env = {"STT_SCHEDULER_WORKERS": "1", "STT_CPU_THREADS": "1", "STT_MAX_SESSIONS": str(CEILING),
           "STT_ADMISSION": "measured", "STT_MAX_SESSIONS_PER_CLIENT": "0"}  # fmt: skip
    server = start_server(tmp_path_factory.mktemp("admission"), env=env)
    yield server
    stop_server(server)


def metrics(server: LiveServer) -> dict[str, float]:
    with urllib.request.urlopen(server.http + "/metrics", timeout=5) as reply:
        return parse_metrics(reply.read().decode())


def measured(server: LiveServer, timeout: float) -> bool:
    """Poll /health until the admission has measured a model call (False: never within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health(server)["admission"]["load"]["measured"]:
            return True
        time.sleep(0.2)  # polling the server's state, not waiting for readiness
    return False


def test_sessions_are_admitted_until_the_measured_load_says_no(
    measured_server: LiveServer, utterances: list[Utterance]
) -> None:
    """Real-time sessions of real speech are opened one after another on one model worker: the
    admission sizes the limit from the model calls it measures (far under the ceiling of 20),
    the next client gets busy/1013, and every session admitted is served to its final."""
    idle = health(measured_server)["admission"]
    assert idle["admit"] and idle["mode"] == "measured" and idle["ceiling"] == CEILING, idle
    audio, reference = join_utterances(utterances, pause=0.5)  # ~30 s of speech
    chunks = webm_slices(audio)

    async def scenario() -> tuple[list[StreamResult], StreamResult | None, dict[str, Any], dict[str, float]]:
        admitted = [asyncio.create_task(stream(measured_server.ws, chunks, timeout=120))]
        assert await asyncio.to_thread(measured, measured_server, 30), "no model call measured"
        refused = None
        for _ in range(CEILING):
            opened: list[dict[str, Any]] = []
            task = asyncio.create_task(
                stream(measured_server.ws, chunks, timeout=120, on_message=opened.append)
            )
            while not opened and not task.done():
                await asyncio.sleep(0.05)  # the first reply: ready, or busy
            if opened and opened[0]["type"] == "ready":
                admitted.append(task)
                continue
            refused = await task
            break
        state = await asyncio.to_thread(health, measured_server)
        scraped = await asyncio.to_thread(metrics, measured_server)
        return list(await asyncio.gather(*admitted)), refused, state["admission"], scraped

    served, refused, admission, scraped = asyncio.run(scenario())
    assert refused is not None, f"{len(served)} sessions admitted, none refused"
    assert [m["code"] for m in refused.errors] == ["busy"] and refused.close_code == 1013, refused.messages
    assert "measured capacity" in refused.errors[0]["message"], refused.errors
    assert 1 <= len(served) < CEILING
    assert admission["load"]["measured"] and admission["limit"] < CEILING, admission
    assert scraped["stt_admission_limit"] < CEILING and scraped["stt_admission_call_seconds"] > 0, scraped
    for result in served:  # every session admitted is served
        assert result.final is not None and result.close_code == 1000, result.messages[-3:]
        assert word_error_rate(reference, result.final["text"]) < 0.2, result.final["text"]
