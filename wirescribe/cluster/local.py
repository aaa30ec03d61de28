"""``make cluster``: a Ray cluster of two nodes on this machine, each a ``ray start --block``
process of its own with its share of the CPUs and object store; ``make cluster-stop`` ends
exactly those processes (never ``ray stop``, which would end every Ray process of the user).

The nodes' process ids and the cluster's address live in a run directory under the temporary
directory, one per port, so two clusters on two ports do not meet.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from wirescribe.devserver import free_port

ROOT = Path(__file__).resolve().parents[2]  # a checkout: the nodes' workers import from here


# Serve's proxies send a request to a replica on their own node first, if there is one. For
# sessions, which stay for minutes and count against each replica's cap, the least loaded
# replica anywhere is the better choice (docs/scaling.md): read by the proxy at its start.
PROXY_ROUTING = {
    "RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING": "0",
    "RAY_SERVE_PROXY_PREFER_LOCAL_AZ_ROUTING": "0",
}


class LocalClusterError(Exception):
    """A node did not start, or the cluster is not there."""


@dataclass(frozen=True)
class NodeSpec:
    cpus: float = 1.0
    object_store_mb: int = 256


def run_dir(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"wirescribe-cluster-{port}"


def _ray() -> list[str]:
    return [sys.executable, "-m", "ray.scripts.scripts"]


def _node_args(spec: NodeSpec) -> list[str]:
    return [
        "--block",
        f"--num-cpus={spec.cpus:g}",
        f"--object-store-memory={spec.object_store_mb << 20}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        "--disable-usage-stats",
    ]


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **PROXY_ROUTING,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            _ray() + args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )  # fmt: skip


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalClusterError(f"the head node exited ({proc.returncode}); see its log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)  # polling: the head's GCS is starting
    raise LocalClusterError(f"the head node's GCS did not listen on {port} within {timeout:g} s")


def start(port: int, nodes: tuple[NodeSpec, ...] = (NodeSpec(), NodeSpec()), timeout: float = 90) -> str:
    """Start the nodes (the first is the head); returns the cluster's address."""
    directory = run_dir(port)
    if (directory / "cluster.json").exists():
        raise LocalClusterError(f"a cluster for port {port} is running already ({directory}): stop it first")
    directory.mkdir(parents=True, exist_ok=True)
    gcs = free_port()
    address = f"127.0.0.1:{gcs}"
    head = _spawn(
        ["start", "--head", f"--port={gcs}", "--node-ip-address=127.0.0.1", "--include-dashboard=false",
         f"--ray-client-server-port={free_port()}", *_node_args(nodes[0])],
        directory / "node-0.log",
    )  # fmt: skip
    pids = [head.pid]
    _write(directory, address, pids)
    _wait_for_port(gcs, head, timeout)
    for i, spec in enumerate(nodes[1:], start=1):
        worker = _spawn(
            ["start", f"--address={address}", "--node-ip-address=127.0.0.1", *_node_args(spec)],
            directory / f"node-{i}.log",
        )  # fmt: skip
        pids.append(worker.pid)
        _write(directory, address, pids)
    return address


def wait_for_nodes(count: int, timeout: float = 90) -> None:
    """Wait until ``count`` nodes are alive (after ``ray.init`` to the cluster)."""
    import ray

    deadline = time.monotonic() + timeout
    while sum(n["Alive"] for n in ray.nodes()) < count:
        if time.monotonic() > deadline:
            raise LocalClusterError(f"fewer than {count} Ray nodes came up within {timeout:g} s")
        time.sleep(0.5)  # polling the GCS while the nodes register


def address_of(port: int) -> str:
    path = run_dir(port) / "cluster.json"
    try:
        return str(json.loads(path.read_text())["address"])
    except (OSError, ValueError, KeyError) as e:
        raise LocalClusterError(f"no local cluster for port {port} ({path})") from e


def stop(port: int, grace: float = 45) -> int:
    """End the nodes this module started for ``port``: SIGTERM to each ``ray start --block``
    (Ray drains the node, then stops its raylet and workers), SIGKILL to what is left of its
    process group after ``grace`` seconds; returns how many nodes were running."""
    directory = run_dir(port)
    try:
        pids = [int(p) for p in json.loads((directory / "cluster.json").read_text())["pids"]]
    except (OSError, ValueError, KeyError):
        return 0
    running = [p for p in reversed(pids) if _signal(p, signal.SIGTERM)]  # workers first, head last
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in running) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling: each node shuts its raylet and workers down
    for pid in running:
        _signal_group(pid, signal.SIGKILL)  # anything left behind
    (directory / "cluster.json").unlink(missing_ok=True)
    return len(running)


def _write(directory: Path, address: str, pids: list[int]) -> None:
    (directory / "cluster.json").write_text(json.dumps({"address": address, "pids": pids}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, sig: int) -> bool:
    """Signal the process group ``pid`` leads (each node is a session of its own)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return False
    return True
