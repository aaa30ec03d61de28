"""What does voice-activity detection cost the event loop? Silero on the loop vs in a thread.

Every live session scores each 32 ms frame of its audio with Silero (an ONNX model) as the
audio arrives: 31.25 frames a second per real-time stream. This measures, with the server's own
``VoiceActivity`` and ``StreamingPolicy``:

1. **per frame**: the model alone — called afresh on each block, the frame before given as
   context (the scoring before Silero's state was carried from block to block), and with its
   state carried (``SileroVad.score_frames``, what a session does now) — and what the event
   loop's thread spends per frame — *before*
   (``policy.insert_audio(block)``: the model runs on the loop) and *after* (the live session's
   ``score_off_loop``: frames cut on the loop, the model in a worker thread — the loop's default
   executor, or one thread shared by all sessions — flags folded in on the loop). Loop time is
   the loop thread's CPU time (``time.thread_time``), so the worker's share is not counted.
2. **loop share at 1/12/16 streams**: that per-frame cost × 31.25 frames/s × streams, and the
   same measured in a real-time simulation (streams deliver 100 ms blocks on a 100 ms clock for
   ``--seconds``): the loop thread's CPU time over wall time, less that of the same streams
   with no VAD; and the loop's p99 lag (a 5 ms ticker's lateness), which also shows time the
   loop waits for the GIL or a core while a worker runs.
3. **session buffer**: appending a 100 ms block to a 20 s window by re-concatenating (before)
   and with the growable buffer (after).

    python bench/vad_cost.py                             # ~4 min
    python bench/vad_cost.py --seconds 2 --repeats 1     # ~30 s, noisier

Prints markdown tables. Numbers depend on the CPU and on what else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules

from wirescribe.audio.buffer import GrowableBuffer
from wirescribe.audio.vad import FRAME, SileroVad, VoiceActivity, silero_probability
from wirescribe.streaming.arrivals import score_off_loop
from wirescribe.streaming.policy import StreamingPolicy

SR = 16000
BLOCK = SR // 10  # ffmpeg's 100 ms reads: 3.125 frames a block
FRAMES_PER_SECOND = SR / FRAME  # 31.25
STREAM_LEVELS = (1, 12, 16)

Insert = Callable[[StreamingPolicy, np.ndarray], Awaitable[None]]


async def insert_on_loop(policy: StreamingPolicy, block: np.ndarray) -> None:
    """Before: the model runs inside ``insert_audio``, on the loop."""
    policy.insert_audio(block)


async def insert_off_loop(policy: StreamingPolicy, block: np.ndarray) -> None:
    """After: as ``LiveSession._insert`` — scored in the loop's default executor, inserted on the loop."""
    policy.insert_audio(block, await score_off_loop(policy.vad, block))


_ONE_THREAD = ThreadPoolExecutor(1, thread_name_prefix="vad")  # a bench script: made at import is fine


async def insert_one_thread(policy: StreamingPolicy, block: np.ndarray) -> None:
    """After, with ``LiveSession(vad_executor=...)``: one VAD thread for every session."""
    policy.insert_audio(block, await score_off_loop(policy.vad, block, _ONE_THREAD))


async def insert_nothing(policy: StreamingPolicy, block: np.ndarray) -> None:
    """The baseline of the simulation: the streams' clock and scheduling, no VAD."""


MODES: dict[str, Insert] = {
    "before (on the loop)": insert_on_loop,
    "after (default executor)": insert_off_loop,
    "after (one VAD thread)": insert_one_thread,
}
BASELINE = "baseline (no VAD)"
SIMULATED: dict[str, Insert] = {BASELINE: insert_nothing, **MODES}


def speechy(seconds: float, seed: int) -> np.ndarray:
    """Noise bursts and quiet: Silero's cost does not depend on what it hears, the flags' does a little."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    loud = np.repeat(rng.random(n // 8000 + 1) < 0.6, 8000)[:n]
    return (rng.standard_normal(n) * np.where(loud, 0.1, 0.002)).astype(np.float32)


def model_cost(silero: SileroVad, frames: int = 3, calls: int = 300, rounds: int = 7) -> tuple[float, float]:
    """Seconds per frame of the model alone, ``frames`` new frames a call as 100 ms blocks give:
    (afresh, one frame of context first; the state carried from call to call). The two take
    turns, ``rounds`` times; each keeps its fastest round (the one least disturbed by the
    machine's other work)."""
    audio = speechy((frames + 1) * FRAME / SR, 1)[: (frames + 1) * FRAME]
    block = audio[FRAME:]
    state = silero.initial_state()

    def afresh() -> None:
        silero(audio)

    def carried() -> None:
        nonlocal state
        _, state = silero.score_frames(block, state)

    best = [float("inf")] * 2
    for _ in range(rounds):
        for i, call in enumerate((afresh, carried)):
            call()
            t = time.perf_counter()
            for _ in range(calls):
                call()
            best[i] = min(best[i], (time.perf_counter() - t) / calls / frames)
    return best[0], best[1]


def loop_cost(probability: SileroVad, insert: Insert, seconds: float = 60.0) -> float:
    """Loop-thread CPU seconds per frame for one stream's ``seconds`` of audio, blocks in a row."""
    audio = speechy(seconds, 2)

    async def main() -> float:
        policy = StreamingPolicy(VoiceActivity(probability))
        await insert(policy, audio[:BLOCK])  # warm: the executor's first thread
        t = time.thread_time()
        for k in range(BLOCK, len(audio), BLOCK):
            await insert(policy, audio[k : k + BLOCK])
        return (time.thread_time() - t) / ((len(audio) - BLOCK) / FRAME)

    return asyncio.run(main())


@dataclass(frozen=True)
class Simulated:
    loop_cpu_share: float  # loop thread CPU seconds / wall seconds
    p99_lag: float  # seconds a 5 ms ticker woke late, 99th percentile


def simulate(probability: SileroVad, insert: Insert, streams: int, seconds: float) -> Simulated:
    """``streams`` real-time streams, each inserting a 100 ms block every 100 ms (staggered)."""
    audio = speechy(seconds + 1, 3)

    async def stream(index: int, start: float) -> None:
        loop = asyncio.get_running_loop()
        policy = StreamingPolicy(VoiceActivity(probability))
        due = start + index * 0.1 / max(1, streams)
        for k in range(0, int(seconds * SR), BLOCK):
            await asyncio.sleep(max(0.0, due - loop.time()))
            await insert(policy, audio[k : k + BLOCK])
            due += 0.1

    async def ticker(lags: list[float], stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - t - 0.005)

    async def main() -> Simulated:
        loop = asyncio.get_running_loop()
        await insert(StreamingPolicy(VoiceActivity(probability)), audio[:BLOCK])  # warm the executor
        lags: list[float] = []
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(lags, stop))
        start = loop.time() + 0.05
        cpu, wall = time.thread_time(), time.perf_counter()
        await asyncio.gather(*(stream(i, start) for i in range(streams)))
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        stop.set()
        await tick
        return Simulated(cpu / wall, float(np.percentile(lags, 99)))

    return asyncio.run(main())


def buffer_cost(window_seconds: float = 20.0, blocks: int = 3000) -> tuple[float, float]:
    """Seconds per 100 ms append at a ``window_seconds`` window: (concatenate, growable buffer)."""
    block = np.zeros(BLOCK, dtype=np.float32)
    window = int(window_seconds * SR)
    array = np.zeros(window, dtype=np.float32)
    t = time.perf_counter()
    for _ in range(blocks):
        array = np.concatenate([array, block])[-window:]  # the old policy: a new array per block
    before = (time.perf_counter() - t) / blocks
    buffer = GrowableBuffer(np.float32)
    buffer.append(np.zeros(window, dtype=np.float32))
    t = time.perf_counter()
    for _ in range(blocks):
        buffer.append(block)
        buffer.discard_before(buffer.end - window)
    return before, (time.perf_counter() - t) / blocks


def label(streams: int) -> str:
    return f"{streams} stream{'s' * (streams > 1)}"


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="simulated seconds per run (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per level and mode (default 3)")
    args = parser.parse_args(argv)

    probability = silero_probability()
    cpu = platform.processor() or platform.machine()
    print(f"# VAD cost on the event loop — {cpu}, Python {platform.python_version()}\n")
    afresh, carried = model_cost(probability)
    per_frame = {name: loop_cost(probability, insert) for name, insert in MODES.items()}
    state = probability.initial_state().nbytes
    print("Silero alone, ms per frame (3 a call, as 100 ms blocks give):\n")
    print("| | ms / frame |\n|---|---:|")
    print(f"| afresh each call, the frame before as context (before) | {1e3 * afresh:.4f} |")
    print(f"| state carried across calls (after; {state} bytes a session) | {1e3 * carried:.4f} |\n")

    print("| | loop ms / frame | " + " | ".join(f"loop share, {label(n)}" for n in STREAM_LEVELS) + " |")
    print("|---|---:|" + "---:|" * len(STREAM_LEVELS))
    for name, cost in per_frame.items():
        shares = [pct(cost * FRAMES_PER_SECOND * n) for n in STREAM_LEVELS]
        print(f"| {name} | {1e3 * cost:.4f} | " + " | ".join(shares) + " |")

    print(
        f"\nReal-time simulation, {args.seconds:g} s per level, median of {args.repeats} runs: loop CPU share"
        " (the VAD rows less the no-VAD baseline) and p99 loop lag:\n"
    )
    print("| | " + " | ".join(label(n) for n in STREAM_LEVELS) + " |")
    print("|---|" + "---:|" * len(STREAM_LEVELS))
    runs: dict[str, dict[int, list[Simulated]]] = {name: {n: [] for n in STREAM_LEVELS} for name in SIMULATED}
    for _ in range(args.repeats):  # interleaved, so a busy moment of the machine hits every mode
        for n in STREAM_LEVELS:
            for name, insert in SIMULATED.items():
                runs[name][n].append(simulate(probability, insert, n, args.seconds))
    base = {n: median(r.loop_cpu_share for r in runs[BASELINE][n]) for n in STREAM_LEVELS}
    for name in SIMULATED:
        cells = []
        for n in STREAM_LEVELS:
            share = median(r.loop_cpu_share for r in runs[name][n])
            share = share if name == BASELINE else max(0.0, share - base[n])
            cells.append(f"{pct(share)}, lag {1e3 * median(r.p99_lag for r in runs[name][n]):.2f} ms")
        print(f"| {name} | " + " | ".join(cells) + " |")

    before, after = buffer_cost()
    print("\nSession buffer, one 100 ms block appended to a 20 s window:\n")
    print("| | µs / block | loop share, 16 streams |\n|---|---:|---:|")
    print(f"| before (np.concatenate) | {1e6 * before:.1f} | {pct(before * 10 * 16)} |")
    print(f"| after (GrowableBuffer) | {1e6 * after:.1f} | {pct(after * 10 * 16)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
