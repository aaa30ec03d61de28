"""Does batching closing windows of several sessions give more per core on a CPU?

Each of the short support-call prompts (``tests/data/prompts``) is made into the window that
closes its utterance (0.4 s of lead-in, the clip, the previous prompt's text as the prompt) and
decoded with the server's closing options (``streaming/decoding.py``: beam 5 with the
temperature fallback, or ``--beams 1``: greedy), in model calls of 1, 2 or 4 windows
(``Transcriber.transcribe_batch``: one encode, one ``generate`` per temperature, one alignment).

``--workers`` threads decode side by side, each with ``--threads`` CTranslate2 threads (the
server's CPU default on 2 cores: 2 workers of 1 thread). Per configuration: the median and p90
time of one call, windows decoded per second of wall clock and per core, and the WER of the
windows' text (a batch shares its encoder length and cuts its prompts to the shortest: it may
read differently from a call of its own).

    python bench/batch_bench.py                          # 2 workers x 1 thread, ~2 min
    python bench/batch_bench.py --workers 1 --threads 2 --batches 1,2,4 --beams 5,1
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
from _common import machine, save_json, stats, table

from tests.support.dense import prompt_clips
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.streaming.decoding import live_decode_options
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.window import SR, StreamingOptions, Window, WindowKind
from wirescribe.wer import word_error_rate


def closing_windows(
    context: float | None, force: bool = False
) -> list[tuple[np.ndarray, DecodeOptions, str]]:
    """(audio, options, reference) of each prompt's closing window, as the server builds it
    (``force``: with ``context`` even under 3.5 s, where the server gives the full 30 s)."""
    clips = prompt_clips()
    lead = np.zeros(int(StreamingOptions().lead_in * SR), dtype=np.float32)
    out = []
    for i, c in enumerate(clips):
        prompt = clips[i - 1].text if i else ""
        end = min(len(c.audio), c.speech_end + int(StreamingOptions().tail_pad * SR))
        window = Window(np.concatenate([lead, c.audio[:end]]), 0, prompt, WindowKind.CLOSE, CloseReason.PAUSE)
        options = live_decode_options(window, "en", context)
        out.append((window.audio, replace(options, context_seconds=context) if force else options, c.text))
    return out


def run(
    model: Transcriber,
    windows: list[tuple[np.ndarray, DecodeOptions, str]],
    *,
    batch: int,
    workers: int,
    seconds: float,
) -> dict[str, Any]:
    """``workers`` threads decode batches of ``batch`` windows for ``seconds``; figures."""
    calls: list[float] = []
    texts: list[tuple[str, str]] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(k: int) -> None:
        i = k * 5
        while time.perf_counter() < deadline:
            chosen = [windows[(i + j) % len(windows)] for j in range(batch)]
            i += batch
            started = time.perf_counter()
            results = model.transcribe_batch([(a, o) for a, o, _ in chosen])
            took = time.perf_counter() - started
            with lock:
                calls.append(took)
                texts.extend((ref, r.text) for (_, _, ref), r in zip(chosen, results, strict=True))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"calls": calls, "texts": texts, "wall": wall}


def figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One configuration's rounds together."""
    calls = [c for r in runs for c in r["calls"]]
    texts = [t for r in runs for t in r["texts"]]
    wall = sum(r["wall"] for r in runs)
    refs, hyps = " ".join(r for r, _ in texts), " ".join(h for _, h in texts)
    return {"calls": len(calls), "call": stats(calls), "windows": len(texts), "wall": wall,
            "windows_per_s": len(texts) / wall, "wer": word_error_rate(refs, hyps)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, default=2, help="threads decoding side by side")
    p.add_argument("--threads", type=int, default=1, help="CTranslate2 threads per worker")
    p.add_argument("--batches", default="1,2,4")
    p.add_argument("--beams", default="5,1")
    p.add_argument("--seconds", type=float, default=12.0, help="wall seconds per configuration and round")
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="rounds over every configuration (interleaved: a shared machine's load drifts alike for all)",
    )
    p.add_argument("--context", type=float, default=12.0, help="encoder context of windows >= 3.5 s")
    p.add_argument(
        "--short-context", action="store_true", help="--context for every window (not 30 s under 3.5 s)"
    )
    args = p.parse_args(argv)
    cores = args.workers * args.threads
    model = Transcriber.load(ModelConfig(cpu_threads=args.threads, num_workers=args.workers))
    base = closing_windows(args.context, args.short_context)
    load0 = os.getloadavg()
    model.transcribe_batch([(a, o) for a, o, _ in base[:2]])  # warm-up
    configs = [(beam, batch) for beam in (int(b) for b in args.beams.split(","))
               for batch in (int(b) for b in args.batches.split(","))]  # fmt: skip
    raw: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configs}
    for _ in range(args.rounds):
        for beam, batch in configs:
            windows = [(a, replace(o, beam_size=beam, temperature=o.temperature if beam > 1 else (0.0,)), r)
                       for a, o, r in base]  # fmt: skip
            raw[beam, batch].append(
                run(model, windows, batch=batch, workers=args.workers, seconds=args.seconds)
            )
            print(f"beam {beam} batch {batch}: {len(raw[beam, batch][-1]['texts'])} windows", flush=True)
    rows, results = [], []
    for (beam, batch), runs in raw.items():
        r = figures(runs) | {"beam": beam, "batch": batch, "load": os.getloadavg()}
        results.append(r)
        rows.append([beam, batch, r["call"]["median"], r["call"]["p90"], r["windows_per_s"],
                     r["windows_per_s"] / cores, r["wer"] * 100, r["calls"]])  # fmt: skip
    seconds = [len(a) / SR for a, _, _ in base]
    context = f"{args.context:g} s context" + ("" if args.short_context else " (30 s under 3.5 s)")
    print(f"\n{args.workers} worker(s) x {args.threads} thread(s); closing windows of "
          f"{min(seconds):.1f}-{max(seconds):.1f} s, {context}; load before {load0[0]:.2f}\n")  # fmt: skip
    print(table(["beam", "windows per call", "call median (s)", "call p90 (s)", "windows/s",
                 "windows/s per core", "WER %", "calls"], rows))  # fmt: skip
    print(f"\nload after: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    path = save_json("batch_bench.json", {"args": vars(args), "machine": machine(), "results": results})
    print(f"\nraw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
