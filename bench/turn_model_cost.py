"""What does the end-of-turn model cost per call? Smart Turn v3.2 as the server runs it.

``asr/turn_model.py`` scores a turn with one ONNX session on one intra-op thread (the machine's
cores belong to Whisper), numpy's BLAS on one thread as the server sets it (``lifecycle.py``).
This measures ``TurnModel.score_batch`` for turns of 1, 4 and 8 s in batches of 1, 4 and 8: the
milliseconds per call and per turn, as wall-clock time and as the CPU time the process spent
(``time.process_time``: what the call takes from the cores, and the figure that holds when other
work shares the machine, which inflates the wall clock), and the part of each turn spent on its
log-mel features (faster-whisper's extractor, numpy) rather than in the ONNX graph. The
model always hears 8 s (shorter turns are padded with zeros in front), so the turn's length
should not change the cost; the batch size shows whether scoring the turns of sessions that
pause together in one call is cheaper than one call each (``TurnScorer`` batches them).

    python bench/turn_model_cost.py              # ~1 min
    python bench/turn_model_cost.py --calls 5    # quicker, noisier
    python bench/turn_model_cost.py --threads 2  # the ONNX session on 2 intra-op threads

Prints a markdown table with the load average before and after. Each figure is the median of
``--calls`` calls after one warm-up call; numbers depend on the CPU and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules

from wirescribe.asr.turn_model import SAMPLE_RATE, TurnModel, bundled_model_path
from wirescribe.audio.decode import decode_file

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "librivox"
SECONDS = (1, 4, 8)
BATCHES = (1, 4, 8)


def speech(seconds: float) -> np.ndarray:
    """The end of ``seconds`` of the LibriVox utterances joined (real speech, as a turn)."""
    audio = np.concatenate([decode_file(w) for w in sorted(DATA.glob("*.wav"))])
    return audio[-int(seconds * SAMPLE_RATE) :]


def timed(call: Callable[[], object], calls: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``calls`` calls of ``call()`` after one warm-up."""
    call()
    wall, cpu = [], []
    for _ in range(calls):
        w, c = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return median(wall), median(cpu)


def load(threads: int) -> TurnModel:
    path = bundled_model_path()
    if path is None:
        sys.exit(
            "the end-of-turn model is missing: make dev (or: pip install --no-deps -r requirements-turn.txt)"
        )
    return TurnModel.load(path, threads=threads)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=15, help="timed calls per cell (median)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX intra-op threads (the server: 1)")
    args = parser.parse_args()

    threadpool_limits(limits=1, user_api="blas")  # as the server (api/lifecycle.py)
    model = load(args.threads)
    before = os.getloadavg()
    rows = []
    for seconds in SECONDS:
        turn = speech(seconds)
        _, features = timed(partial(model.features, turn), args.calls)
        for batch in BATCHES:
            turns = [turn] * batch
            wall, cpu = timed(partial(model.score_batch, turns), args.calls)
            rows.append((seconds, batch, wall * 1e3, cpu * 1e3, cpu * 1e3 / batch, features * 1e3))
    after = os.getloadavg()

    print(f"# Smart Turn v3.2 cost per call ({model.path.name}, {args.threads} intra-op thread(s))\n")
    machine = platform.processor() or platform.machine()
    print(f"{machine}, {os.cpu_count()} cores; median of {args.calls} calls")
    print(f"load average before {before[0]:.2f} {before[1]:.2f} {before[2]:.2f}, "
          f"after {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}\n")  # fmt: skip
    print("| turn (s) | batch | wall ms per call | CPU ms per call | CPU ms per turn | of which features |")
    print("|---:|---:|---:|---:|---:|---:|")
    for seconds, batch, wall_ms, cpu_ms, turn_ms, feature_ms in rows:
        print(f"| {seconds} | {batch} | {wall_ms:.1f} | {cpu_ms:.1f} | {turn_ms:.1f} | {feature_ms:.1f} |")


if __name__ == "__main__":
    main()
