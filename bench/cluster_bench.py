"""The same streams through the single server and through a two-node Ray Serve cluster on this
machine, in one run: the cluster's overhead, and the batches its model deployment formed.

For each concurrency level N (default 1, 4, 8) N sessions stream the same real speech (WebM/Opus
in 250 ms slices at real-time pace, as ``stream_bench.py``) first to ``uvicorn server:app``, then
(after it is stopped) to the app on a local two-node cluster (``wirescribe.cluster.local``: two
``ray start`` nodes of one CPU each, an ingress and a model replica on each, as ``make cluster``).
Reported per level and side: WER, committed-word and first-seen latency, ``eof`` -> ``final``;
the cluster/single ratio of the median commit latency; for the cluster, the model calls by batch
size and how many batched windows of sessions held on different nodes (from each model replica's
ledger), and how the sessions spread over the nodes (``ready.node``).

On 2 shared cores the cluster cannot be faster than one process: every stream's audio crosses
a proxy and an object store, and four replicas share the cores the single server has alone.
The point is what it costs.

    flock /tmp/bench.lock python bench/cluster_bench.py                  # ~6 min
    flock /tmp/bench.lock python bench/cluster_bench.py --streams 1 --seconds 10   # smoke

Prints markdown tables; writes bench/results/cluster_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _common import (
    build_speech,
    commit_latencies,
    first_seen_latencies,
    machine,
    save_json,
    speech_truth,
    stats,
)
from _common import table as md_table

from wirescribe.asr.model import ModelConfig, Transcriber, Word
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.devserver import free_port
from wirescribe.settings import Settings
from wirescribe.wer import word_error_rate

CLUSTER_ENV = {
    "STT_MAX_SESSIONS_PER_CLIENT": "0",  # every bench client is 127.0.0.1
    "STT_SERVE_PROXY_LOCATION": "HeadOnly",
    "STT_SERVE_MAX_REPLICAS_PER_NODE": "1",
    "STT_SERVE_INGRESS_CPUS": "0.5",
    "STT_SERVE_MODEL_CPUS": "0.5",
}


async def run_level(url: str, chunks: list[bytes], n: int, slice_s: float) -> list[StreamResult]:
    async def one(i: int) -> StreamResult:
        await asyncio.sleep(0.1 * i)  # clients arrive one after another
        return await stream(url, chunks, interval=slice_s, timeout=300)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def session_figures(r: StreamResult, truth: list[Word], reference: str, slice_s: float) -> dict[str, Any]:
    final = r.final
    ready = r.of_type("ready")
    out: dict[str, Any] = {"node": ready[0].get("node") if ready else None, "close_code": r.close_code}
    if final is None or r.eof_at is None:
        return {**out, "failed": True, "errors": r.errors}
    final_at = next(m.at for m in r.messages if m.message.get("type") == "final")
    msgs = [m for m in r.messages if m.message.get("type") == "transcript"]
    commits = [(m.at + slice_s, m.message["committed"]) for m in msgs] + [(final_at + slice_s, final["text"])]
    texts = [(m.at + slice_s, m.message["text"]) for m in msgs] + [(final_at + slice_s, final["text"])]
    return {
        **out,
        "failed": False,
        "wer": word_error_rate(reference, final["text"]),
        "commit_latency": commit_latencies(truth, commits),
        "first_seen_latency": first_seen_latencies(truth, texts),
        "eof_to_final": final_at - r.eof_at,
    }


def level_figures(n: int, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in sessions if not s["failed"]]
    pooled = lambda key: [x for s in ok for x in s[key]]  # noqa: E731
    return {
        "streams": n,
        "failed_sessions": len(sessions) - len(ok),
        "wer_mean": float(np.mean([s["wer"] for s in ok])) if ok else None,
        "commit_latency": stats(pooled("commit_latency")),
        "first_seen_latency": stats(pooled("first_seen_latency")),
        "eof_to_final": stats([s["eof_to_final"] for s in ok]),
        "nodes": dict(Counter(str(s["node"]) for s in sessions)),
    }


ROLES = {
    "ingress": "ServeReplica:wirescribe:Ingress",
    "model": "ServeReplica:wirescribe-model:WhisperModel",
    "proxy": "ProxyActor",
}


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the cluster's processes, by role (ffmpeg children of the
    ingress replicas are counted when reaped, in their parent's cutime), read from /proc."""
    used: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            cmdline = (stat.parent / "cmdline").read_bytes().decode(errors="replace")
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for role, marker in ROLES.items():
            if marker in cmdline:
                ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
                used[role] = used.get(role, 0.0) + ticks / tick
    return used


def ledgers(app: str, want: int) -> list[dict[str, Any]]:
    from wirescribe.cluster.serve import model_ledgers

    return model_ledgers(app, want)


def batch_delta(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> dict[str, Any]:
    """Model calls by batch size and mixed-node batches formed between two ledger readings."""
    old = {lg["replica"]: lg for lg in before}
    sizes: Counter[int] = Counter()
    mixed = 0
    for lg in after:
        prev = old.get(lg["replica"], {"batch_sizes": {}, "mixed_node_batches": 0})
        for size, count in lg["batch_sizes"].items():
            sizes[int(size)] += count - prev["batch_sizes"].get(size, 0)
        mixed += lg["mixed_node_batches"] - prev["mixed_node_batches"]
    calls = sum(sizes.values())
    windows = sum(s * c for s, c in sizes.items())
    return {
        "model_calls": calls,
        "windows": windows,
        "mean_batch": windows / calls if calls else None,
        "by_size": dict(sorted(sizes.items())),
        "mixed_node_batches": mixed,
    }


def run_single(
    levels: list[int], chunks: list[bytes], truth: list[Word], ref: str, slice_s: float
) -> list[Any]:
    folder = Path(tempfile.mkdtemp(prefix="cluster_bench_single_"))
    server = _server.start(folder, timed=False)
    out = []
    try:
        asyncio.run(stream(server.ws, chunks[:20], interval=None, timeout=120))  # warm up
        for n in levels:
            results = asyncio.run(run_level(server.ws, chunks, n, slice_s))
            out.append(level_figures(n, [session_figures(r, truth, ref, slice_s) for r in results]))
            print(f"single, {n} stream(s): {out[-1]['commit_latency']}", flush=True)
    finally:
        _server.stop(server)
    return out


def run_cluster(
    levels: list[int], chunks: list[bytes], truth: list[Word], ref: str, slice_s: float
) -> list[Any]:
    import ray

    from wirescribe.cluster import local
    from wirescribe.cluster import serve as entry

    port = free_port()
    settings = Settings.from_env({**CLUSTER_ENV, "STT_PORT": str(port)})
    started = time.perf_counter()
    address = local.start(port)
    out = []
    try:
        ray.init(address=address, log_to_driver=False)
        local.wait_for_nodes(2)
        plan = entry.deploy(settings)
        print(f"cluster up and deployed in {time.perf_counter() - started:.1f} s", flush=True)
        url = f"ws://127.0.0.1:{port}/ws/transcribe"
        asyncio.run(stream(url, chunks[:20], interval=None, timeout=120))  # warm up
        for n in levels:
            before = ledgers(plan.model_app_name, plan.model_replicas)
            cpu_before, began = cpu_seconds(), time.perf_counter()
            results = asyncio.run(run_level(url, chunks, n, slice_s))
            cpu_after, wall = cpu_seconds(), time.perf_counter() - began
            after = ledgers(plan.model_app_name, plan.model_replicas)
            figures = level_figures(n, [session_figures(r, truth, ref, slice_s) for r in results])
            stream_seconds = n * len(chunks) * slice_s
            cpu = {k: (cpu_after.get(k, 0) - cpu_before.get(k, 0)) for k in ROLES}
            per_stream = {k: v / stream_seconds for k, v in cpu.items()}  # cores per live stream
            out.append({**figures, "batches": batch_delta(before, after), "cpu_seconds": cpu,
                        "wall_seconds": wall, "cores_per_stream": per_stream})  # fmt: skip
            print(f"cluster, {n} stream(s): {out[-1]['commit_latency']} {out[-1]['batches']}", flush=True)
        entry.undeploy(plan)
    finally:
        ray.shutdown()
        local.stop(port)
    return out


def print_report(data: dict[str, Any]) -> None:
    rows = []
    for single, cluster in zip(data["single"], data["cluster"], strict=True):
        s, c = single["commit_latency"]["median"], cluster["commit_latency"]["median"]
        for name, lv in (("single", single), ("cluster", cluster)):
            rows.append([
                lv["streams"], name, lv["wer_mean"], lv["commit_latency"]["median"],
                lv["commit_latency"]["p90"], lv["first_seen_latency"]["median"],
                lv["eof_to_final"]["median"], lv["failed_sessions"],
                f"{c / s:.2f}x" if name == "cluster" and s and c else "",
            ])  # fmt: skip
    print(md_table(["streams", "server", "WER", "commit median", "commit p90", "first seen median",
                    "eof -> final", "failed", "cluster / single"], rows))  # fmt: skip
    print()
    batch_rows = [
        [lv["streams"], lv["batches"]["model_calls"], lv["batches"]["mean_batch"], lv["batches"]["by_size"],
         lv["batches"]["mixed_node_batches"], len(lv["nodes"])]
        for lv in data["cluster"]
    ]  # fmt: skip
    print(md_table(["streams", "model calls", "windows per call", "calls by batch size",
                    "mixed-node batches", "ingress nodes used"], batch_rows))  # fmt: skip
    print()
    cpu_rows = [[lv["streams"], *(lv["cores_per_stream"][k] for k in ROLES)] for lv in data["cluster"]]
    print("CPU cores used per live stream (CPU seconds / stream seconds), by process role:")
    print(md_table(["streams", *ROLES], [[r[0], *(f"{x:.3f}" for x in r[1:])] for r in cpu_rows]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,4,8", help="concurrency levels, comma-separated")
    p.add_argument("--seconds", type=float, default=None, help="stream length (default: one round, ~30 s)")
    p.add_argument("--slice", type=float, default=0.25, help="WebM slice and send interval (s)")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.streams.split(",") if x.strip()]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    speech = build_speech(args.seconds, repeats=1)
    chunks = webm_slices(speech.audio, args.slice)
    model = Transcriber.load(ModelConfig())
    truth, offline_text = speech_truth(model, speech)
    del model
    offline_wer = word_error_rate(speech.reference, offline_text)
    print(f"speech: {speech.seconds:.1f} s; offline WER {offline_wer:.3f}; machine {machine()}", flush=True)
    data: dict[str, Any] = {
        "machine": machine(), "stream_seconds": speech.seconds, "offline_wer": offline_wer,
        "cluster_env": CLUSTER_ENV, "single": [], "cluster": [],
    }  # fmt: skip
    data["single"] = run_single(levels, chunks, truth, speech.reference, args.slice)
    data["cluster"] = run_cluster(levels, chunks, truth, speech.reference, args.slice)
    print_report(data)
    print(f"\nwrote {save_json('cluster_bench.json', data)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
