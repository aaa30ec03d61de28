"""One local two-node Ray Serve cluster (``ray.cluster_utils.Cluster``) with the app deployed,
shared by every test of ``tests/cluster`` that asks for it, torn down at the end."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import ROOT
from wirescribe.cluster.local import PROXY_ROUTING
from wirescribe.devserver import free_port
from wirescribe.settings import Settings

SESSIONS_PER_INGRESS = 5
NODE_CPUS = 1
OBJECT_STORE = 200 << 20


@dataclass
class ServeCluster:
    settings: Settings
    plan: Any  # wirescribe.cluster.plan.ClusterPlan
    node_ids: list[str]  # the two Ray nodes

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.settings.port}/ws/transcribe"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"


def cluster_settings(port: int, **extra: str) -> Settings:
    return Settings.from_env(
        {
            "STT_PORT": str(port),
            "STT_MAX_SESSIONS": str(SESSIONS_PER_INGRESS),
            "STT_MAX_SESSIONS_PER_CLIENT": "0",  # every test client is 127.0.0.1
            "STT_SERVE_PROXY_LOCATION": "HeadOnly",  # two nodes on one host: one proxy port
            "STT_SERVE_MAX_REPLICAS_PER_NODE": "1",  # one ingress and one model replica per node
            "STT_SERVE_INGRESS_CPUS": "0.5",
            "STT_SERVE_MODEL_CPUS": "0.5",
            "STT_SERVE_CALL_TIMEOUT": "30",
            # windows of sessions a moment apart share a call: on 2 CPU cores calls rarely overlap,
            # and at 30 ms a run could end with no batch mixing both nodes (the test asks for one)
            "STT_SERVE_BATCH_WAIT_MS": "150",
            **extra,
        }
    )


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout:g} s")
        time.sleep(0.5)  # polling the cluster's state


def running_replicas(app: str, deployment: str) -> int:
    from ray import serve

    status = serve.status().applications.get(app)
    if status is None or deployment not in status.deployments:
        return 0
    return sum(n for s, n in status.deployments[deployment].replica_states.items() if s == "RUNNING")


def warm_up(cluster: ServeCluster) -> None:
    """A few seconds of speech through every replica first, as a deployment's readiness check
    would: the first model call of a replica and the proxy's first routes are slow."""
    from tests.support import librivox_utterances
    from wirescribe.audio.decode import decode_file
    from wirescribe.client import stream, webm_slices

    chunks = webm_slices(decode_file(librivox_utterances()[0].wav)[: 4 * 16000])

    async def four() -> None:
        await asyncio.gather(*(stream(cluster.ws, chunks, interval=0.05, timeout=60) for _ in range(4)))

    asyncio.run(four())


@pytest.fixture(scope="session")
def serve_cluster() -> Iterator[ServeCluster]:
    ray = pytest.importorskip("ray")
    from ray import serve
    from ray.cluster_utils import Cluster

    from wirescribe.cluster import serve as entry

    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved]))  # the nodes' workers
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Sessions go to the least loaded ingress replica, not first to the proxy's own node's.
    os.environ.update(PROXY_ROUTING)
    node: dict[str, Any] = {"num_cpus": NODE_CPUS, "object_store_memory": OBJECT_STORE}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        cluster.add_node(**node)
        cluster.wait_for_nodes(timeout=60)
        ray.init(address=cluster.address, log_to_driver=False)
        settings = cluster_settings(free_port())
        plan = entry.deploy(settings)
        node_ids = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
        assert len(node_ids) == 2
        cluster_ = ServeCluster(settings, plan, node_ids)
        warm_up(cluster_)
        yield cluster_
        entry.undeploy(plan)
        serve.shutdown()
    finally:
        ray.shutdown()
        cluster.shutdown()
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
