"""What cheaper tentative refreshes buy under load: encoder context, window length (committed
audio kept as context) and token budget of the live updates, against WER and commit latency.

One session of dense speech (``_common.build_speech`` with 0.25-0.9 s gaps) goes through the
server's own policy and decode options with the real model, on a simulated clock that stands for
a saturated server: after each model call the session waits ``took * streams / workers`` (its
share of the workers when every session always has a turn queued) or, when that is shorter, for
the next 100 ms block. So a cheaper call shows up twice, as in the server: in compute per call,
and in a session's calls coming round sooner. The utterance-closing pass keeps its own (strong)
settings throughout; only the refreshes change.

Compute is the process's CPU time per call (one model thread), not wall time: the machine is
shared, and another program's load would otherwise move the simulated clock.

    python bench/tentative_cost.py --streams 12 --contexts 12,8,6 --budgets 8,5 --keep 4,2

Prints a markdown table; writes bench/results/tentative_cost.json.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
from _common import (
    DENSE_GAPS,
    SAMPLE_RATE,
    Speech,
    build_speech,
    commit_latencies,
    machine,
    save_json,
    speech_truth,
    stats,
    table,
)

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber, Word
from wirescribe.audio.vad import VoiceActivity, silero_probability
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import MAX_CLOSING_WINDOWS, StreamingOptions, StreamingPolicy, Window
from wirescribe.streaming.session import live_decode_options
from wirescribe.wer import word_error_rate

BLOCK = 0.1  # seconds: the decoder's block


@dataclass(frozen=True)
class Setting:
    context: float  # encoder seconds of a refresh (30: Whisper's full)
    budget: float  # a refresh's token budget: 16 + budget tokens per window second
    keep: float  # committed audio kept before the uncommitted part (the window's length)

    @property
    def label(self) -> str:
        return f"context {self.context:g} s, {self.budget:g} tok/s, keep {self.keep:g} s"


def options(window: Window, s: Setting) -> DecodeOptions:
    base = live_decode_options(window, "en", s.context if s.context < 30 else None)
    if window.closes_utterance:
        return base
    return replace(base, max_new_tokens=int(16 + s.budget * window.seconds))


def simulate(model: Transcriber, speech: Speech, s: Setting, share: float) -> dict[str, Any]:
    """One session on the simulated clock; its figures."""
    policy = StreamingPolicy(
        VoiceActivity(silero_probability()), replace(StreamingOptions(), keep_context=s.keep), "en"
    )
    audio = speech.audio
    step = int(BLOCK * SAMPLE_RATE)
    clock, fed = 0.0, 0
    commits: list[tuple[float, str]] = []
    refresh: list[float] = []
    closing: list[float] = []
    windows: list[float] = []

    def call(window: Window) -> None:
        nonlocal clock
        t = time.process_time()
        result = model.transcribe(window.audio, options(window, s))
        took = time.process_time() - t
        (closing if window.closes_utterance else refresh).append(took)
        windows.append(window.seconds)
        clock += took * share
        update = policy.apply(window, result)
        if update is not None:
            commits.append((clock, update.committed))

    while fed < len(audio):
        while fed < len(audio) and fed + step <= clock * SAMPLE_RATE + 1:
            policy.insert_audio(audio[fed : fed + step])
            fed += step
        poll = getattr(policy, "poll", None)  # a closing pass held for its pause (protocol 1.1)
        if poll is not None and (update := poll()) is not None:
            commits.append((clock, update.committed))
        window = policy.next_window()
        if window is None:
            clock = max(clock, (fed + step) / SAMPLE_RATE)
            continue
        call(window)
    for _ in range(MAX_CLOSING_WINDOWS):
        if (window := policy.next_window(CloseReason.EOF)) is None:
            break
        call(window)
    final = policy.finish()
    commits.append((clock, final.text))
    return {
        "setting": s.__dict__,
        "wer": word_error_rate(speech.reference, final.text),
        "refresh_calls": len(refresh),
        "closing_calls": len(closing),
        "refresh_compute": stats(refresh),
        "closing_compute": stats(closing),
        "window_seconds": stats(windows),
        "final_text": final.text,
        "commits": commits,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", type=int, default=12, help="sessions sharing the workers")
    p.add_argument("--workers", type=int, default=2, help="model workers (calls at once)")
    p.add_argument("--contexts", default="12,8,6", help="refresh encoder contexts (s)")
    p.add_argument("--budgets", default="8", help="refresh token budgets (tokens per window second)")
    p.add_argument("--keep", default="4", help="committed audio kept as context (s)")
    p.add_argument("--seconds", type=float, default=50.0, help="stream length (whole utterances)")
    p.add_argument("--seeds", type=int, default=2, help="streams with differently drawn gaps, per setting")
    args = p.parse_args(argv)
    share = max(1.0, args.streams / args.workers)
    grid = [
        Setting(c, b, k)
        for c, b, k in itertools.product(
            *([float(x) for x in v.split(",")] for v in (args.contexts, args.budgets, args.keep))
        )
    ]
    model = Transcriber.load(ModelConfig(cpu_threads=1))  # one server worker's thread
    speeches = [build_speech(args.seconds, pause=DENSE_GAPS, seed=seed) for seed in range(args.seeds)]
    model.transcribe(speeches[0].audio[: 2 * SAMPLE_RATE], DecodeOptions(language="en"))  # warm up
    truths: list[list[Word]] = [speech_truth(model, sp)[0] for sp in speeches]
    print(f"{len(grid)} settings x {len(speeches)} streams of {speeches[0].seconds:.0f} s; a session's"
          f" share: {share:g} x its own compute; machine {machine()}", flush=True)  # fmt: skip
    runs: dict[Setting, list[dict[str, Any]]] = {s: [] for s in grid}
    for k, sp in enumerate(speeches):  # settings interleaved, so drifting load hits them alike
        for s in grid:
            r = simulate(model, sp, s, share)
            r["commit_latency"] = commit_latencies(truths[k], r.pop("commits"))
            runs[s].append(r)
            print(f"  seed {k} {s.label}: WER {r['wer']:.3f}, refresh {r['refresh_compute']['median']:.3f} s"
                  f" x {r['refresh_calls']}, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    rows, out = [], []
    for s, rs in runs.items():
        lat = stats([x for r in rs for x in r["commit_latency"]])
        refresh = statistics.median(r["refresh_compute"]["median"] for r in rs)
        closing = [r["closing_compute"]["median"] for r in rs if r["closing_compute"]["median"] is not None]
        wer = float(np.mean([r["wer"] for r in rs]))
        calls = float(np.mean([r["refresh_calls"] for r in rs]))
        window = statistics.median(r["window_seconds"]["median"] for r in rs)
        rows.append([s.context, s.budget, s.keep, f"{wer:.3f}", lat["median"], lat["p90"], refresh,
                     statistics.median(closing) if closing else None, window, calls])  # fmt: skip
        out.append({"setting": s.__dict__, "wer": wer, "commit_latency": lat, "refresh_compute": refresh,
                    "window_seconds": window, "refresh_calls": calls, "runs": rs})  # fmt: skip
    title = f"{args.streams} streams on {args.workers} workers, simulated"
    print(f"\n## Tentative refreshes under load ({title})\n")
    print(table(["context (s)", "tokens/s", "keep (s)", "WER", "commit lat. median (s)",
                 "commit lat. p90 (s)", "refresh compute median (s)", "closing compute median (s)",
                 "window median (s)", "refreshes/session"], rows))  # fmt: skip
    path = save_json("tentative_cost.json", {"machine": machine(), "streams": args.streams,
                                             "workers": args.workers, "settings": out})  # fmt: skip
    print(f"\nraw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
