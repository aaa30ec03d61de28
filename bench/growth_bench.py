"""Does an update cost the same at minute 10 as at second 30? One long session, in-process.

Ten minutes of mostly continuous speech (the LibriVox utterances cycled, 0.3–1 s pauses) go
through the server's own per-session logic — ``StreamingPolicy`` + ``VoiceActivity`` + the shared
``Transcriber`` with ``session.live_decode_options`` and the server's encoder context — on a
simulated clock: 250 ms slices are delivered when the clock reaches their end, and each model
call advances the clock by its measured compute time (waiting for audio costs nothing). So every
update sees exactly the audio a real-time session would, and the run only takes the compute.

Reports per-update compute at second 30 vs minute 10 (target ratio ≤ 1.2), the window length,
the lag (how old the newest audio in each result is) and the process RSS over session time;
then the seed's literal design (the whole buffer, beam 5, full context) timed at growing buffer
lengths over the first ~90 s of the same audio, to show its per-update cost growing.

    python bench/growth_bench.py                                     # full: 10 min, ~5–10 min run
    python bench/growth_bench.py --minutes 0.75 --baseline-seconds 20   # smoke run

Prints markdown tables; writes bench/results/growth_bench.{json,png}.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
from _baseline import LITERAL_OPTIONS, literal_cost_curve
from _common import RESULTS, SAMPLE_RATE, build_speech, fmt, machine, rss_mib, save_json, stats, table

from wirescribe.asr.model import DecodeOptions, Transcriber
from wirescribe.audio.vad import VoiceActivity, silero_probability
from wirescribe.settings import Settings
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import live_decode_options
from wirescribe.wer import word_error_rate


@dataclass(frozen=True)
class Step:
    clock: float  # session wall time when the result was ready (s)
    audio: float  # audio delivered so far (s)
    window: float  # window length the model saw (s)
    final: bool
    compute: float  # model call (s)
    policy: float  # insert_audio (with VAD) + next_window + apply since the last call (s)
    lag: float  # clock - window end: how old the newest audio in this result is
    buffer: float  # audio the policy holds after the update (s)
    rss: float  # MiB


def simulate(
    model: Transcriber, audio: np.ndarray, context: float | None, slice_s: float, progress_every: float
) -> tuple[list[Step], str]:
    """Run one session's updates on the simulated clock; (steps, final text)."""
    policy = StreamingPolicy(VoiceActivity(silero_probability()), language="en")
    step = int(slice_s * SAMPLE_RATE)
    clock, fed, overhead = 0.0, 0, 0.0
    steps: list[Step] = []
    next_report = progress_every
    while fed < len(audio):
        t = time.perf_counter()
        while fed < len(audio) and fed + step <= clock * SAMPLE_RATE + 1:
            policy.insert_audio(audio[fed : fed + step])
            fed += step
        window = policy.next_window()
        overhead += time.perf_counter() - t
        if window is None:
            clock = max(clock, (fed + step) / SAMPLE_RATE)  # wait for the next slice
            continue
        t = time.perf_counter()
        result = model.transcribe(window.audio, live_decode_options(window, "en", context))
        took = time.perf_counter() - t
        clock += took
        t = time.perf_counter()
        policy.apply(window, result)
        overhead += time.perf_counter() - t
        steps.append(Step(
            clock, fed / SAMPLE_RATE, window.seconds, window.final, took, overhead,
            clock - window.end / SAMPLE_RATE, policy.window_seconds, rss_mib(),
        ))  # fmt: skip
        overhead = 0.0
        if clock >= next_report:
            recent = [s.compute for s in steps if s.clock > clock - progress_every]
            print(f"  {clock:6.0f} s: {len(steps)} updates, compute median {np.median(recent):.3f} s, "
                  f"window {window.seconds:.1f} s, RSS {steps[-1].rss:.0f} MiB", flush=True)  # fmt: skip
            next_report += progress_every
    policy.drain(CloseReason.EOF, lambda w: model.transcribe(w.audio, live_decode_options(w, "en", context)))
    return steps, policy.finish().text


def band(steps: list[Step], lo: float, hi: float) -> list[Step]:
    return [s for s in steps if lo <= s.clock < hi]


def summarise(steps: list[Step], duration: float, early: float, width: float) -> dict[str, Any]:
    """Second ``early`` vs the last ``width`` seconds, and per-minute figures."""
    first = band(steps, early - width / 2, early + width / 2)
    last = band(steps, duration - width, duration + 1e9)
    c_first, c_last = stats([s.compute for s in first]), stats([s.compute for s in last])
    ratio = (c_last["median"] / c_first["median"]) if c_first["median"] and c_last["median"] else None
    p90_ratio = (c_last["p90"] / c_first["p90"]) if c_first["p90"] and c_last["p90"] else None
    minutes = []
    for m in range(int(np.ceil(duration / 60))):
        sel = band(steps, 60 * m, 60 * (m + 1))
        if not sel:
            continue
        minutes.append({
            "minute": m + 1,
            "updates": len(sel),
            "compute": stats([s.compute for s in sel]),
            "window": stats([s.window for s in sel]),
            "lag": stats([s.lag for s in sel]),
            "policy_ms": stats([1000 * s.policy for s in sel]),
            "rss_end": sel[-1].rss,
        })  # fmt: skip
    return {
        "early_band": [early - width / 2, early + width / 2],
        "late_band": [duration - width, duration],
        "compute_early": c_first,
        "compute_late": c_last,
        "ratio_median": ratio,
        "ratio_p90": p90_ratio,
        "window_early": stats([s.window for s in first]),
        "window_late": stats([s.window for s in last]),
        "rss_early": first[-1].rss if first else None,
        "rss_late": last[-1].rss if last else None,
        "minutes": minutes,
    }


def print_report(data: dict[str, Any]) -> None:
    s = data["summary"]
    ratio = s["ratio_median"]
    verdict = "—" if ratio is None else ("within" if ratio <= 1.2 else "OVER") + " the 1.2× target"
    print(f"\n## One {data['stream_seconds'] / 60:.1f}-minute session ({data['updates']} updates, "
          f"encoder context {data['context']} s, WER {data['wer']:.3f})\n")  # fmt: skip
    lo, hi = s["early_band"]
    late_lo, late_hi = s["late_band"]
    early_h, late_h = f"second {lo:.0f}–{hi:.0f}", f"second {late_lo:.0f}–{late_hi:.0f}"
    print(table(["figure", early_h, late_h, "late / early"], [
        ["compute/update median (s)", s["compute_early"]["median"], s["compute_late"]["median"], ratio],
        ["compute/update p90 (s)", s["compute_early"]["p90"], s["compute_late"]["p90"], s["ratio_p90"]],
        ["window median (s)", s["window_early"]["median"], s["window_late"]["median"], None],
        ["window max (s)", s["window_early"]["max"], s["window_late"]["max"], None],
        ["process RSS (MiB)", s["rss_early"], s["rss_late"], None],
    ]))  # fmt: skip
    print(f"\nPer-update compute (median), second {late_lo:.0f}–{late_hi:.0f} vs second {lo:.0f}–{hi:.0f}: "
          f"{fmt(ratio)}× ({verdict}).\n")  # fmt: skip
    print(table(
        ["minute", "updates", "compute median (s)", "compute p90 (s)", "compute max (s)",
         "window median (s)", "window max (s)", "lag median (s)", "lag max (s)",
         "policy overhead median (ms)", "RSS at end (MiB)"],
        [[m["minute"], m["updates"], m["compute"]["median"], m["compute"]["p90"], m["compute"]["max"],
          m["window"]["median"], m["window"]["max"], m["lag"]["median"], m["lag"]["max"],
          m["policy_ms"]["median"], m["rss_end"]] for m in s["minutes"]],
    ))  # fmt: skip
    curve = data.get("literal_curve")
    if curve:
        print("\n## The seed's literal design: one update (whole buffer, beam 5, full context) "
              "vs buffer length\n")  # fmt: skip
        print(table(["buffer (s)", "compute/update (s)", "updates it owes per second of audio"],
                    [[b, c, f"{1 / data['slice']:g}"] for b, c in curve]))  # fmt: skip
        ours = [st for st in data["steps"] if st["clock"] <= curve[-1][0]]
        if ours:
            med = float(np.median([st["compute"] for st in ours]))
            upto, cost = curve[-1]
            print(f"\nOurs over the same first {upto:g} s: compute/update median {med:.3f} s; the "
                  f"literal design at {upto:g} s of buffer: {cost:.2f} s ({cost / med:.0f}×).")  # fmt: skip


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = data["steps"]
    t = np.array([s["clock"] for s in steps])
    fig, ax = plt.subplots(3, 2, figsize=(12, 10))

    def binned(values: np.ndarray, width: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
        edges = np.arange(0, t.max() + width, width)
        idx = np.digitize(t, edges)
        xs = [edges[i - 1] + width / 2 for i in sorted(set(idx))]
        ys = [np.median(values[idx == i]) for i in sorted(set(idx))]
        return np.array(xs), np.array(ys)

    def series(a: Any, key: str, title: str, ylabel: str, scale: float = 1.0) -> None:
        v = np.array([s[key] for s in steps]) * scale
        a.scatter(t, v, s=3, alpha=0.3, label="each update")
        a.plot(*binned(v), "r-", lw=1.5, label="10 s median")
        a.set(title=title, xlabel="session time (s)", ylabel=ylabel, ylim=(0, None))
        a.legend(fontsize=8)
        a.grid(alpha=0.3)

    series(ax[0][0], "compute", "Per-update compute", "seconds")
    series(ax[1][0], "window", "Window the model sees", "seconds of audio")
    series(ax[1][1], "lag", "Lag: age of the newest audio in a result", "seconds")
    series(ax[2][1], "policy", "Policy + VAD work between updates", "milliseconds", 1000.0)
    a = ax[2][0]
    a.plot(t, [s["rss"] for s in steps], "-")
    a.set(title="Process RSS", xlabel="session time (s)", ylabel="MiB")
    a.grid(alpha=0.3)
    a = ax[0][1]
    curve = data.get("literal_curve") or []
    if curve:
        a.plot([b for b, _ in curve], [c for _, c in curve], "o-r", label="literal design (whole buffer)")
        horizon = curve[-1][0]
        sel = t <= horizon
        comp = np.array([s["compute"] for s in steps])
        a.scatter(t[sel], comp[sel], s=4, alpha=0.4, label="ours, each update")
        a.axhline(
            data["slice"], color="k", ls=":", label=f"one chunk ({data['slice']:g} s): real-time budget"
        )
        a.set(title="Per-update compute, first seconds", xlabel="session time / buffer (s)", ylabel="seconds")
        a.legend(fontsize=8)
        a.grid(alpha=0.3)
    ratio = fmt(data["summary"]["ratio_median"])
    fig.suptitle(f"One {data['stream_seconds'] / 60:.1f}-minute session, {data['machine']['cpus']} CPUs, "
                 f"model {data['model']}; compute ratio late/early {ratio}×")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="length of the session")
    p.add_argument("--pause", default="0.3,1.0", help="pause after each utterance: lo,hi (uniform)")
    p.add_argument("--seed", type=int, default=0, help="seed of the pause lengths")
    p.add_argument("--slice", type=float, default=0.25, help="audio delivered per slice (s)")
    p.add_argument("--early", type=float, default=30.0, help="the early reference point (s)")
    p.add_argument("--band", type=float, default=20.0, help="width of the early and late bands (s)")
    p.add_argument(
        "--baseline-seconds",
        type=float,
        default=90.0,
        help="time the literal design up to this buffer length (0: skip)",
    )
    p.add_argument("--baseline-step", type=float, default=10.0, help="buffer length step (s)")
    p.add_argument("--name", default="growth_bench", help="file name stem under bench/results/")
    args = p.parse_args(argv)  # fmt: skip
    lo, hi = (float(x) for x in args.pause.split(","))

    speech = build_speech(args.minutes * 60, pause=(lo, hi), seed=args.seed)
    config = Settings.from_env().resolved()  # the server's threads per model call
    context = config.encoder_context if config.encoder_context < 30 else None
    print(f"speech: {speech.utterances} utterances, {speech.seconds:.1f} s; encoder context {context}; "
          f"machine {machine()}", flush=True)  # fmt: skip
    model = Transcriber.load(config.model)
    model.transcribe(speech.audio[: SAMPLE_RATE * 2], DecodeOptions(language="en"))  # warm up
    rss_start = rss_mib()
    wall = time.perf_counter()
    steps, text = simulate(model, speech.audio, context, args.slice, progress_every=60.0)
    wall = time.perf_counter() - wall
    data: dict[str, Any] = {
        "machine": machine(), "model": model.name, "stream_seconds": speech.seconds, "slice": args.slice,
        "context": context, "updates": len(steps), "run_seconds": wall, "rss_start": rss_start,
        "wer": word_error_rate(speech.reference, text), "final_text": text,
        "summary": summarise(steps, speech.seconds, args.early, args.band),
        "steps": [asdict(s) for s in steps],
    }  # fmt: skip
    print(f"simulated {speech.seconds:.0f} s of session in {wall:.0f} s", flush=True)
    if args.baseline_seconds > 0:
        print(f"literal design up to {args.baseline_seconds:g} s of buffer…", flush=True)
        data["literal_options"] = {"beam_size": LITERAL_OPTIONS.beam_size, "context": "30 s (full)"}
        data["literal_curve"] = literal_cost_curve(
            model, speech.audio, upto=args.baseline_seconds, step=args.baseline_step,
            progress=lambda b, c: print(f"  buffer {b:g} s: {c:.2f} s", flush=True),
        )  # fmt: skip
    print_report(data)
    json_path = save_json(f"{args.name}.json", data)
    png = RESULTS / f"{args.name}.png"
    plot(data, png)
    print(f"\nraw figures: {json_path}\nplot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
