"""When is a turn over? End-of-turn latency, missed turns and false cuts: silence endpointing
(``utterance_end`` at 300/500/800 ms) against the turn-taking (``end_of_turn`` with ``turns=true``).

Speech: ``tests/support/turns.py`` — real speech (the LibriVox utterances and the support-call
prompts), ~2 s between turns, a 0.6–1.0 s hesitation cut into about half of them mid-sentence
at a word boundary, a -60 dBFS noise floor. Each stream k has its own seeded order (seed + k);
every configuration hears the same streams. Streamed at real-time pace over ``/ws/transcribe``
as a browser sends it (WebM/Opus in 250 ms slices) or as an agent does (pcm16 in 100 ms frames),
1 or 12 sessions at once (started 0.2 s apart), to a server this script starts (``uvicorn
server:app``, per-address cap off, a fixed session ceiling so admission refuses none).

Modes: ``silence300``/``silence500``/``silence800`` (``events=true&endpointing=N``: the
``utterance_end`` messages), ``model`` (``turns=true`` at its defaults: ``end_of_turn``),
``model@T`` (the same with ``eot_threshold=T``: the trade-off), ``eager``
(``turns=true&eager_eot_threshold=E``: its ``end_of_turn``, and apart the first
signal of each turn's end, ``eager_end_of_turn`` or ``end_of_turn`` (an eager event comes only
while the probability is between the two thresholds: a turn that is plainly over gets only its
end), with the count of eager events and of ``turn_resumed``). Every session asks for ``words=true``.

Each end event decided on the audio (an ``utterance_end`` before ``eof``, an ``end_of_turn`` not
triggered by it) is placed at its last word's end (its words; else its ``end``) and given to
the last turn begun by then (``place_ends`` of tests/support/turns.py). There it is a **false
cut** when it falls in the turn's inserted hesitation (from 0.4 s before it to its middle), a
**split** when it falls elsewhere before the turn's last word (the clip's own pauses), else the
turn's **end**: its latency is its arrival on
the microphone's clock (a slice counts as spoken once its slice has passed) less the turn's
last word's end. A turn with no end is **missed**; an end that arrived once the next turn's
speech had begun is **late**. The WER of each mode's end texts (joined, ``eof``'s included)
against the reference, beside the ``final`` text's. The turn model's cost per call is timed here,
in this process, on 8 s of the same speech (batch 1 and batch 8), with the model's verdict alone
on each clip's end and hesitation point after 0.1/0.2/0.4 s of silence.

    python bench/turn_bench.py        # everything: ~70 min at 37 turns (--streams 1: ~35 min)
    python bench/turn_bench.py --streams 1 --formats webm --turns 12
    python bench/turn_bench.py --streams 12 --modes silence800,model

Prints a markdown table; writes bench/results/<name>.json (and a plot if matplotlib is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _common import RESULTS, save_json, stats, table

from tests.support.dense import clips
from tests.support.turns import NOISE_DBFS, Turn, TurnSpeech, build_turns, clip_words, place_ends
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import StreamResult, pcm16_slices, stream, webm_slices
from wirescribe.wer import word_error_rate

MODES = ("silence300", "silence500", "silence800", "model", "eager")
SLICES = {"webm": 0.25, "pcm16": 0.1}  # a browser's MediaRecorder slices, an agent's frames
ENV = {"STT_MAX_SESSIONS_PER_CLIENT": "0", "STT_ADMISSION": "fixed", "STT_MAX_SESSIONS": "16"}


def query(mode: str, fmt: str, eager: float) -> str:
    q = ["words=true"]
    if mode.startswith("silence"):
        q += ["events=true", f"endpointing={int(mode.removeprefix('silence'))}"]
    else:
        q += ["turns=true"] + ([f"eager_eot_threshold={eager:g}"] if mode == "eager" else [])
        q += [f"eot_threshold={mode.split('@')[1]}"] if "@" in mode else []
    q += ["format=pcm16", "sample_rate=16000"] if fmt == "pcm16" else []
    return "?" + "&".join(q)


def encode(speech: TurnSpeech, fmt: str) -> list[bytes]:
    slice_s = SLICES[fmt]
    return webm_slices(speech.audio, slice_s) if fmt == "webm" else pcm16_slices(speech.audio, slice_s)


async def _session(url: str, chunks: list[bytes], slice_s: float, delay: float) -> StreamResult:
    await asyncio.sleep(delay)  # sessions start 0.2 s apart, as callers do
    return await stream(url, chunks, interval=slice_s, timeout=300)


async def run_streams(
    url: str, encoded: list[list[bytes]], slice_s: float, stagger: float
) -> list[StreamResult]:
    tasks = (_session(url, c, slice_s, k * stagger) for k, c in enumerate(encoded))
    return list(await asyncio.gather(*tasks))


def classify(
    events: list[tuple[float, dict[str, Any]]], turns: tuple[Turn, ...], slice_s: float
) -> dict[str, Any]:
    """``place_ends`` (tests/support/turns.py) as plain data for the JSON."""
    placed = place_ends(events, turns, slice_s)
    return {
        "latencies": [placed.latencies[k] for k in sorted(placed.latencies)],
        "missed": list(placed.missed),
        "false_cuts": list(placed.false_cuts),
        "splits": list(placed.splits),
        "extra": placed.extra,
        "late": placed.late,
    }


def _brief(at: float, m: dict[str, Any]) -> dict[str, Any]:
    """A message for the evidence in the JSON: its arrival, its fields, its last word's end."""
    words = m.get("words") or []
    out = {"arrived": round(at, 3), **{k: v for k, v in m.items() if k != "words"}}
    return out | ({"last_word_end": words[-1]["end"]} if words else {})


def _decided(at: float, m: dict[str, Any], eof: float) -> bool:
    """An end decided on the audio: an ``utterance_end`` that came before ``eof`` (the one after
    it may be the flush's), an ``end_of_turn`` whose trigger is not ``eof`` (whenever it came)."""
    return m.get("trigger") != "eof" if m.get("type") == "end_of_turn" else at < eof


EAGER = "eager_or_end"  # the first of eager_end_of_turn and end_of_turn, per turn
TYPES = {EAGER: ("eager_end_of_turn", "end_of_turn")}


def kinds_of(mode: str) -> list[str]:
    if mode.startswith("silence"):
        return ["utterance_end"]
    return ["end_of_turn", EAGER] if mode == "eager" else ["end_of_turn"]


def session_figures(result: StreamResult, speech: TurnSpeech, mode: str, slice_s: float) -> dict[str, Any]:
    eof = result.eof_at if result.eof_at is not None else float("inf")
    out: dict[str, Any] = {"errors": result.errors, "close_code": result.close_code,
                           "failed": result.final is None}  # fmt: skip
    for kind in kinds_of(mode):
        types = TYPES.get(kind, (kind,))
        sent = [
            (r.at, r.message)
            for r in result.messages
            if r.message.get("type") in types and _decided(r.at, r.message, eof)
        ]
        out[kind] = classify(sent, speech.turns, slice_s)
        texts = " ".join(m.get("text", "") for m in result.of_type(kind))
        out[kind]["text_wer"] = word_error_rate(speech.reference, texts) if kind not in TYPES else None
        out[kind]["triggers"] = sorted(m.get("trigger", "") for m in result.of_type(kind))
    out["messages"] = [
        _brief(r.at, r.message) for r in result.messages if r.message.get("type") != "transcript"
    ]
    out["eager"] = len(result.of_type("eager_end_of_turn"))
    out["resumed"] = len(result.of_type("turn_resumed"))
    out["confidences"] = [m["confidence"] for m in result.of_type("end_of_turn")]
    if result.final is not None:
        out["final_wer"] = word_error_rate(speech.reference, result.final["text"])
    return out


def summarise(sessions: list[dict[str, Any]], kind: str, speeches: list[TurnSpeech]) -> dict[str, Any]:
    figs = [s[kind] for s in sessions if kind in s]
    lat = [x for f in figs for x in f["latencies"]]
    finals = [s["final_wer"] for s in sessions if "final_wer" in s]
    wers = [f["text_wer"] for f in figs if f["text_wer"] is not None]
    return {
        **stats(lat),
        "turns": sum(len(sp.turns) for sp in speeches),
        "pauses": sum(sp.pauses for sp in speeches),
        "missed": sum(len(f["missed"]) for f in figs),
        "false_cuts": sum(len(f["false_cuts"]) for f in figs),
        "splits": sum(len(f["splits"]) for f in figs),
        "late": sum(f["late"] for f in figs),
        "extra": sum(f["extra"] for f in figs),
        "text_wer": float(np.mean(wers)) if wers else None,
        "eager_events": sum(s.get("eager", 0) for s in sessions),
        "resumed": sum(s.get("resumed", 0) for s in sessions),
        "final_wer": float(np.mean(finals)) if finals else None,
        "failed": sum(1 for s in sessions if s["failed"]),
        "errors": sorted({e.get("code", "") for s in sessions for e in s["errors"]}),
    }


def turn_model_cost(speech: TurnSpeech, scores: int = 24) -> dict[str, Any]:
    """The Smart Turn model's time per call, here (one intra-op thread, as the server runs it):
    the median of ``scores`` turns' worth of calls at batch 1 and at batch 8, and the part of a
    call that is the log-mel features (computed in Python, per turn) rather than the graph."""
    from wirescribe.asr.turn_model import WINDOW, bundled_model_path, load_turn_model

    model = load_turn_model(os.environ.get("STT_TURN_MODEL") or None)
    if model is None:
        return {"loaded": False}
    audio = speech.audio[len(speech.audio) // 2 :][:WINDOW]
    model.score(audio)  # the first call builds the session's buffers
    out: dict[str, Any] = {"loaded": True, "path": str(model.path), "bundled": str(bundled_model_path())}
    for batch in (1, 8):
        took = []
        for _ in range(max(3, scores // batch)):
            t0 = time.perf_counter()
            model.score_batch([audio] * batch)
            took.append(time.perf_counter() - t0)
        out[f"batch{batch}_ms"] = float(np.median(took) * 1000)
        out[f"batch{batch}_per_turn_ms"] = float(np.median(took) * 1000 / batch)
    took = []
    for _ in range(max(3, scores // 2)):
        t0 = time.perf_counter()
        model.features(audio)
        took.append(time.perf_counter() - t0)
    out["features_ms"] = float(np.median(took) * 1000)
    out["verdicts"] = verdicts(model)
    return out


def verdicts(model: Any, silences: tuple[float, ...] = (0.1, 0.2, 0.4)) -> list[dict[str, Any]]:
    """The model alone on each clip (0.2 s of noise floor before it): its probability at the
    clip's speech end and at its hesitation point, after each of ``silences`` s of noise floor
    (the session scores a pause once, at the planner's probe silence). What the engine then
    combines with the transcript."""
    rng = np.random.default_rng(0)

    def floor(seconds: float) -> np.ndarray:
        return (rng.standard_normal(int(seconds * SAMPLE_RATE)) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)

    found = clip_words()
    rows = []
    for c in clips():
        w = found[c.name]
        lead = np.concatenate([floor(0.2), c.audio])
        row: dict[str, Any] = {"clip": c.name, "text": c.text}
        for label, at in (("end", w.speech_end), ("pause", w.cut)):
            if at is not None:
                audio = lead[: int((at + 0.2) * SAMPLE_RATE)]
                row[label] = [round(model.score(np.concatenate([audio, floor(x)])), 3) for x in silences]
        rows.append(row)
    return rows


def server_turn_model(log: Path, out: Path) -> str:
    """What the server's log says about its end-of-turn model."""
    text = "\n".join(p.read_text(errors="replace") for p in (log, out) if p.exists())
    found = re.findall(
        r"(loaded end-of-turn model \S+|end-of-turn model (?:not found|\S+ could not be loaded))", text
    )
    return found[-1] if found else "not mentioned in the log (not wired into the app?)"


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def report(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        sm = r["summary"]
        body.append([
            r["streams"], r["format"], r["mode"], r["kind"], sm["median"], sm["p90"], sm["n"],
            f"{sm['missed']}/{sm['turns']}", f"{sm['false_cuts']}/{sm['pauses']}", sm["splits"], sm["late"],
            sm["text_wer"] and sm["text_wer"] * 100, sm["final_wer"] and sm["final_wer"] * 100,
            f"{sm['eager_events']}/{sm['resumed']}" if r["kind"] == EAGER else "",
            ",".join(sm["errors"]) or "", r["load"],
        ])  # fmt: skip
    return table(["streams", "format", "mode", "event", "latency median (s)", "p90 (s)", "ends",
                  "missed", "false cuts / pauses", "other splits", "late", "end-text WER %", "final WER %",
                  "eager / resumed", "errors", "load 1/5/15 before"], body)  # fmt: skip


def wer_gaps(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's accuracy target: end_of_turn's text WER beside utterance_end's (800 ms) on
    the same speech, per streams × format (points)."""
    out = []
    for n, fmt in sorted({(r["streams"], r["format"]) for r in rows}):
        by = {
            (r["mode"], r["kind"]): r["summary"]["text_wer"]
            for r in rows
            if (r["streams"], r["format"]) == (n, fmt)
        }
        base, turns = by.get(("silence800", "utterance_end")), by.get(("model", "end_of_turn"))
        if base is not None and turns is not None:
            out.append(f"{n}×{fmt}: end_of_turn WER {turns * 100:.2f} % vs utterance_end (800 ms) "
                       f"{base * 100:.2f} %: {100 * (turns - base):+.2f} points")  # fmt: skip
    return out


def verdict_table(rows: list[dict[str, Any]]) -> str:
    """The model alone: p at each clip's end and hesitation point after 0.1/0.2/0.4 s of silence."""
    if not rows:
        return "(no turn model here: no verdicts)"

    def cell(ps: list[float] | None) -> str:
        return " / ".join(f"{p:.2f}" for p in ps) if ps else "—"

    body = [[r["clip"], cell(r.get("end")), cell(r.get("pause")), r["text"]] for r in rows]
    return table(["clip", "p at its end (+0.1/0.2/0.4 s)", "p at its hesitation point", "text"], body)


def plot(rows: list[dict[str, Any]], path: Path) -> str:
    """Latency median (bar) and false-cut share per row; only with matplotlib already installed."""
    if importlib.util.find_spec("matplotlib") is None:
        return "no plot: matplotlib is not installed"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [
        f"{r['streams']}×{r['format']} {r['mode']}{' (eager or end)' if r['kind'] == EAGER else ''}"
        for r in rows
    ]
    fig, (a, b) = plt.subplots(2, 1, figsize=(max(6, len(rows) * 0.6), 7), sharex=True)
    x = np.arange(len(rows))
    a.bar(x, [r["summary"]["median"] or 0 for r in rows], label="median")
    a.scatter(x, [r["summary"]["p90"] or 0 for r in rows], color="k", marker="_", s=200, label="p90")
    a.set_ylabel("end-of-turn latency (s)")
    a.legend()
    b.bar(x, [100 * r["summary"]["false_cuts"] / max(1, r["summary"]["pauses"]) for r in rows], color="C3")
    b.set_ylabel("false cuts (% of pauses)")
    b.set_xticks(x, labels, rotation=60, ha="right")
    fig.tight_layout()
    fig.savefig(path)
    return f"plot: {path}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,12", help="concurrent sessions, comma-separated")
    p.add_argument("--formats", default="webm,pcm16", help="webm (250 ms slices), pcm16 (100 ms frames)")
    p.add_argument("--modes", default=",".join(MODES), help=", ".join(MODES))
    p.add_argument("--turns", type=int, default=37, help="turns per stream")
    p.add_argument("--eager", type=float, default=0.5, help="eager_eot_threshold of the eager mode")
    p.add_argument("--seed", type=int, default=2000, help="stream k's seed: seed + k")
    p.add_argument("--stagger", type=float, default=0.2, help="seconds between two sessions' starts")
    p.add_argument("--name", default="turn_bench", help="file name stem under bench/results/")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.streams.split(",")]
    formats = args.formats.split(",")
    modes = args.modes.split(",")
    bad = [m for m in modes if m.split("@")[0] not in MODES] + [f for f in formats if f not in SLICES]
    if bad:
        p.error(f"unknown mode or format: {', '.join(bad)}")
    speeches = [build_turns(args.turns, seed=args.seed + k) for k in range(max(counts))]
    print(f"## turn_bench: {args.turns} turns/stream ({speeches[0].pauses} with a hesitation, "
          f"{speeches[0].seconds:.0f} s), streams {counts}, formats {formats}, modes {modes}; "
          f"load {_load()}", flush=True)  # fmt: skip
    cost = turn_model_cost(speeches[0])
    print(
        f"turn model cost (this process): { {k: v for k, v in cost.items() if k != 'verdicts'} }", flush=True
    )
    print(verdict_table(cost.get("verdicts", [])), flush=True)
    folder = Path(tempfile.mkdtemp(prefix="turn_bench_"))
    server = _server.start(folder, timed=False, env=ENV)
    rows: list[dict[str, Any]] = []
    try:
        asyncio.run(stream(server.ws + query("model", "pcm16", args.eager),
                           encode(build_turns(1, seed=1), "pcm16"), interval=None, timeout=120))  # fmt: skip
        served_model = server_turn_model(server.log, folder / "server.out")
        print(f"server's turn model: {served_model}", flush=True)
        for n in counts:
            for fmt in formats:
                encoded = [encode(sp, fmt) for sp in speeches[:n]]
                for mode in modes:
                    load = _load()
                    url = server.ws + query(mode, fmt, args.eager)
                    results = asyncio.run(run_streams(url, encoded, SLICES[fmt], args.stagger))
                    sessions = [session_figures(r, sp, mode, SLICES[fmt])
                                for r, sp in zip(results, speeches, strict=False)]  # fmt: skip
                    for kind in kinds_of(mode):
                        sm = summarise(sessions, kind, speeches[:n])
                        row = {"streams": n, "format": fmt, "mode": mode, "kind": kind, "load": load,
                               "summary": sm, "sessions": sessions}  # fmt: skip
                        rows.append(row)
                        print(f"- {n}×{fmt} {mode} {kind}: median {sm['median']}, p90 {sm['p90']}, "
                              f"missed {sm['missed']}/{sm['turns']}, false cuts {sm['false_cuts']}/"
                              f"{sm['pauses']}, splits {sm['splits']}, WER {sm['text_wer']}; load before "
                              f"{load}", flush=True)  # fmt: skip
    finally:
        _server.stop(server)
    print("\n" + report(rows) + "\n")
    print("\n".join(wer_gaps(rows)))
    calls = {k: v for k, v in cost.items() if k != "verdicts"}
    print(f"turn model per call (this process, 1 thread): {calls}")
    print(f"server's turn model: {served_model}")
    commit = os.popen("git rev-parse --short HEAD").read().strip()
    saved = {"args": vars(args), "turn_model_cost": cost, "served_model": served_model, "commit": commit,
             "rows": rows}  # fmt: skip
    path = save_json(f"{args.name}.json", saved)
    print(plot(rows, RESULTS / f"{args.name}.png"))
    print(f"raw figures: {path}\nserver log: {server.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
