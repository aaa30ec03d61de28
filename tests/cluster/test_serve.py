"""The app on a local two-node Ray Serve cluster: real model, real ffmpeg, real speech.

Sessions spread over ingress replicas on both nodes (``ready.node``), windows served by model
replicas on both nodes and batched across sessions held on different nodes, transcripts as
good as the single server's, ``busy`` past the cap, a redeploy and a killed model replica
mid-session. One cluster for the module (about 25 s to start); every wait is bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import numpy as np
import pytest
import websockets

from tests.cluster.conftest import (
    SESSIONS_PER_INGRESS,
    ServeCluster,
    cluster_settings,
    running_replicas,
    wait_until,
)
from tests.support import Utterance, join_utterances
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(240)]

# The single server's bound for sessions that share the machine (tests/e2e: offline + 0.08).
WER_MARGIN = 0.08
MOMENT = 3.0  # seconds: "a moment of lag"


@pytest.fixture(scope="module")
def talk(joined_speech: tuple[np.ndarray, str]) -> tuple[np.ndarray, str, float]:
    """The single server's end-to-end speech (five utterances, ~30 s), its reference, and the
    offline WER bar (the whole file, beam 5), as tests/e2e measure them."""
    audio, reference = joined_speech
    model = Transcriber.load(ModelConfig(cpu_threads=1))
    offline = word_error_rate(reference, model.transcribe(audio, DecodeOptions(beam_size=5)).text)
    return audio, reference, offline


def node_of(result: StreamResult) -> str:
    ready = result.messages[0].message
    assert ready["type"] == "ready", ready
    return str(ready["node"]).rsplit(":", 1)[-1]  # ip:node-id-prefix


def assert_finished(result: StreamResult, close: int = 1000) -> dict[str, Any]:
    """ready first, committed only grows, text == committed + tentative, final, then ``close``."""
    kinds = [r.message["type"] for r in result.messages]
    assert kinds[0] == "ready" and kinds[-1] == "final", (kinds[:3], kinds[-3:], result.errors)
    assert result.close_code == close, (result.close_code, result.errors)
    previous = ""
    for m in result.of_type("transcript"):
        assert m["text"] == m["committed"] + m["tentative"]
        assert m["committed"].startswith(previous)
        previous = m["committed"]
    final = result.final
    assert final is not None and final["text"].startswith(previous.strip()[:1])
    return final


def ledgers() -> list[dict[str, Any]]:
    """Every running model replica's ledger."""
    from wirescribe.cluster.serve import MODEL_DEPLOYMENT, model_ledgers

    app = f"{serve_app_name()}-model"
    return model_ledgers(app, running_replicas(app, MODEL_DEPLOYMENT))


def serve_app_name() -> str:
    return "wirescribe"


def max_gap(result: StreamResult, until: float) -> float:
    """The longest silence between two server messages from the first transcript (the session
    under way: the wait for the first words is not a kill's cost) to ``until`` (s since start)."""
    first = next((r.at for r in result.messages if r.message["type"] == "transcript"), until)
    times = [r.at for r in result.messages if first <= r.at <= until]
    return max(b - a for a, b in itertools.pairwise(times)) if len(times) > 1 else 0.0


def test_eight_sessions_spread_over_both_nodes_and_batched_across_them(
    serve_cluster: ServeCluster, talk: tuple[np.ndarray, str, float]
) -> None:
    audio, reference, offline = talk
    before = {lg["replica"]: lg for lg in ledgers()}
    slices = webm_slices(audio)

    async def eight() -> list[StreamResult]:
        async def one(i: int) -> StreamResult:
            await asyncio.sleep(0.1 * i)  # clients arrive one after another, as people do
            return await stream(serve_cluster.ws, slices, timeout=60)

        return list(await asyncio.gather(*(one(i) for i in range(8))))

    results = asyncio.run(eight())
    nodes = [node_of(r) for r in results]
    assert {n[:8] for n in serve_cluster.node_ids} == set(nodes), nodes  # sessions on both nodes
    finals = [assert_finished(result) for result in results]
    for final in finals:
        assert final["audio_seconds"] == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.3)
    wers = [word_error_rate(reference, final["text"]) for final in finals]
    worst = finals[int(np.argmax(wers))]["text"]
    # Eight real-time streams on two shared cores: the single server's own load test bounds the
    # mean at 0.12 and each session at 0.25 (tests/e2e/test_under_load.py); here the mean keeps
    # the two-stream margin and one session may lose a few more words (0.099 seen: tiny.en's
    # "old supposed" twice and one greedy slip, against 0.014 offline).
    shown = f"WERs {[round(w, 3) for w in wers]} (offline {offline:.3f}): {worst}"
    assert float(np.mean(wers)) <= offline + WER_MARGIN, shown
    assert max(wers) <= offline + WER_MARGIN + 0.04, shown

    after = ledgers()
    served = {
        lg["node"].rsplit(":", 1)[-1]
        for lg in after
        if lg["windows"] > before.get(lg["replica"], {}).get("windows", 0)
    }
    assert served == set(nodes), after  # model replicas on both nodes served windows
    mixed = sum(
        lg["mixed_node_batches"] - before.get(lg["replica"], {}).get("mixed_node_batches", 0) for lg in after
    )
    assert mixed >= 1, after  # a model call batched windows of sessions held on different nodes
    sizes = [size for lg in after for size in lg["batch_sizes"]]
    assert max(int(s) for s in sizes) >= 2, after


def test_connections_past_the_cap_get_busy(serve_cluster: ServeCluster) -> None:
    cap = SESSIONS_PER_INGRESS * serve_cluster.plan.ingress_replicas

    async def fill() -> tuple[list[str], list[tuple[dict[str, Any], int | None]]]:
        held: list[Any] = []
        nodes: list[str] = []
        refused: list[tuple[dict[str, Any], int | None]] = []
        try:
            for _ in range(cap):
                ws = await websockets.connect(serve_cluster.ws)
                held.append(ws)
                ready = await asyncio.wait_for(ws.recv(), 10)
                nodes.append(str(ready))
            for _ in range(2):
                async with websockets.connect(serve_cluster.ws) as ws:
                    import json

                    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    await asyncio.wait_for(ws.wait_closed(), 10)
                    refused.append((message, ws.close_code))
        finally:
            for ws in held:
                await ws.close()
        return nodes, refused

    nodes, refused = asyncio.run(fill())
    assert all('"ready"' in n for n in nodes), nodes  # the cap's worth of sessions are taken
    for message, code in refused:
        assert message["type"] == "error" and message["code"] == "busy", message
        assert code == 1013


def kill_one_model_replica() -> str:
    import ray

    from wirescribe.cluster.serve import MODEL_DEPLOYMENT

    names = [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if f"{serve_app_name()}-model#{MODEL_DEPLOYMENT}#" in a["name"]
    ]
    assert names, "no model replica actor found"
    ray.kill(ray.get_actor(names[0], namespace="serve"), no_restart=True)
    return names[0]


def test_killing_a_model_replica_mid_session_costs_a_moment(
    serve_cluster: ServeCluster, talk: tuple[np.ndarray, str, float]
) -> None:
    audio, reference, offline = talk
    slices = webm_slices(audio)
    killed: list[str] = []

    async def two_and_a_kill() -> list[StreamResult]:
        async def kill_later() -> None:
            await asyncio.sleep(6)  # mid-speech: windows of both sessions in flight
            killed.append(await asyncio.to_thread(kill_one_model_replica))

        results = await asyncio.gather(
            stream(serve_cluster.ws, slices, timeout=60),
            stream(serve_cluster.ws, slices, timeout=60),
            kill_later(),
        )
        return [r for r in results if isinstance(r, StreamResult)]

    results = asyncio.run(two_and_a_kill())
    assert killed and len(results) == 2
    for result in results:
        final = assert_finished(result)
        wer = word_error_rate(reference, final["text"])
        assert wer <= offline + WER_MARGIN, f"WER {wer:.3f}: {final['text']}"
        assert result.eof_at is not None
        assert result.messages[-1].at - result.eof_at <= MOMENT  # final soon after eof
        speech_end = result.eof_at - 1.0  # the last second is the closing pause
        assert max_gap(result, speech_end) <= MOMENT, [round(r.at, 2) for r in result.messages]
    # Serve replaces the replica; the next test gets its two model replicas back.
    from wirescribe.cluster.serve import MODEL_DEPLOYMENT

    wait_until(
        lambda: running_replicas(f"{serve_app_name()}-model", MODEL_DEPLOYMENT) == 2,
        90,
        "a new model replica",
    )


def test_a_redeploy_mid_session_still_delivers_final(
    serve_cluster: ServeCluster, talk: tuple[np.ndarray, str, float], utterances: list[Utterance]
) -> None:
    from ray import serve

    from wirescribe.cluster.plan import ClusterPlan
    from wirescribe.cluster.serve import ingress_application

    audio, _, _ = talk
    first, first_reference = join_utterances(utterances[:1])
    # A changed setting: Serve replaces every ingress replica (a rolling update, one at a time).
    new = ClusterPlan.from_settings(cluster_settings(serve_cluster.settings.port, STT_IDLE_TIMEOUT="61"))
    redeployed = threading.Event()
    started: list[float] = []

    def redeploy() -> None:
        started.append(time.perf_counter())
        serve.run(ingress_application(new), name=new.app_name, route_prefix="/")
        redeployed.set()

    async def session_with_a_redeploy() -> tuple[StreamResult, float]:
        async def redeploy_later() -> None:
            await asyncio.sleep(len(first) / SAMPLE_RATE + 1.5)  # the first utterance is in
            await asyncio.to_thread(redeploy)

        t0 = time.perf_counter()
        result, _ = await asyncio.gather(
            stream(serve_cluster.ws, webm_slices(audio), timeout=90), redeploy_later()
        )
        return result, t0

    result, t0 = asyncio.run(session_with_a_redeploy())
    assert redeployed.wait(120)
    final = assert_finished(result, close=1001)  # the replica stopped: final, then "going away"
    assert final["audio_seconds"] < len(audio) / SAMPLE_RATE - 2  # ended by the drain, not by eof
    final_at = t0 + result.messages[-1].at - started[0]
    assert final_at <= serve_cluster.settings.shutdown_grace, final_at  # drained at once, not cut later
    said = final["text"].split()[: len(first_reference.split())]
    assert word_error_rate(first_reference, " ".join(said)) <= 0.2, final["text"]
    # The new replicas serve the next session.
    again = asyncio.run(stream(serve_cluster.ws, webm_slices(first), timeout=60))
    final = assert_finished(again)
    assert word_error_rate(first_reference, final["text"]) <= 0.2, final["text"]


def test_no_proxy_timeout_and_serve_limits_above_the_apps(serve_cluster: ServeCluster) -> None:
    """A live session is one long request: Serve's proxies must not time it out, Serve's own
    per-replica limit must sit above the app's cap (or Serve would queue instead of ``busy``),
    and its graceful timeout must outlast a whole session."""
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None
    assert client.http_config.request_timeout_s is None
    details = client.get_serve_details()
    config = details["applications"]["wirescribe"]["deployments"]["Ingress"]["deployment_config"]
    assert config["max_ongoing_requests"] > SESSIONS_PER_INGRESS
    assert config["graceful_shutdown_timeout_s"] >= serve_cluster.settings.max_session_wall_seconds
