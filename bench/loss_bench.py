"""Does the streaming core lose words, and does it end utterances on time? Dense speech through
a real server, many runs, the loss detector of ``wirescribe/wer.py`` on every final transcript.

Each run builds its own ~60 s stream (``tests/support/dense.py``): the LibriVox utterances and
the short support-call prompts of ``tests/data/prompts``, in a seeded order, a seeded gap of
``--gaps`` seconds after each (0.25–0.9 s: dense speech), digital silence or a low white-noise
floor (``--noise -60``). It streams it at real-time pace over ``/ws/transcribe`` as WebM/Opus in
250 ms slices (or ``--format pcm16``), with ``events=true&words=true`` or without events, one
stream or ``--streams S`` at once (each its own seed), to a server it starts from ``--root``
(any checkout: the before/after comparison runs the same script against two trees). Per run:

* WER of each session's ``final`` text, and the offline reference point (each clip on its own,
  beam 5, the same model in this process);
* lost utterances: reference utterances with under half their words in the aligned final text,
  printed with what the transcript had in their place, the final segments and ``utterance_end``
  messages around them and the server's per-window debug lines (the evidence for the cause);
  lost tails: 3 or more trailing words of an utterance missing;
* with events: ``utterance_end`` delay from the clip's speech end (the clip's end less its
  trailing silence) to the message's arrival on the microphone's clock (+ one slice), ends that
  split a clip, pauses longer than ``endpointing`` without an end, ends that came only once the
  next clip had begun; and whether the ends' texts make the final text.

    python bench/loss_bench.py --runs 10                          # dense, events on
    python bench/loss_bench.py --runs 10 --no-events
    python bench/loss_bench.py --runs 2 --streams 8
    python bench/loss_bench.py --runs 1 --gaps 1.8,2.2 --seconds 70 --endpointing 800 --noise -60
    python bench/loss_bench.py --root /work/before --notes /work/notes/loss_before.md ...
    python bench/loss_bench.py --report bench/results/before_*.json bench/results/after_*.json

Prints markdown; writes bench/results/<name>.json (and appends to ``--notes``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _common import save_json, stats, table
from _dense import DENSE_GAPS, Clip, DenseSpeech, build_dense, clips, session_figures, start_root_server

from wirescribe.client import StreamResult, pcm16_slices, stream, webm_slices
from wirescribe.wer import word_error_rate


def offline_texts(pool: tuple[Clip, ...]) -> dict[str, str]:
    """Each clip transcribed on its own, beam 5 (the offline reference point of every stream)."""
    from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber

    model = Transcriber.load(ModelConfig())
    return {c.name: model.transcribe(c.audio, DecodeOptions(language="en", beam_size=5)).text.strip()
            for c in pool}  # fmt: skip


async def _session(
    url: str, chunks: list[bytes], slice_s: float, timeout: float
) -> tuple[float, StreamResult]:
    wall0 = time.time()  # stream() takes its own start right after this, before any await
    return wall0, await stream(url, chunks, interval=slice_s, timeout=timeout)


async def _run(
    url: str, streams: list[list[bytes]], slice_s: float, timeout: float
) -> list[tuple[float, StreamResult]]:
    return list(await asyncio.gather(*(_session(url, c, slice_s, timeout) for c in streams)))


def _encode(speech: DenseSpeech, fmt: str, slice_s: float) -> list[bytes]:
    return webm_slices(speech.audio, slice_s) if fmt == "webm" else pcm16_slices(speech.audio, slice_s)


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def evidence(run: int, s: dict[str, Any]) -> str:
    """The markdown for each lost utterance of one session: reference, what came instead, and
    the server's view of that stretch of audio."""
    out = []
    for x in s["lost"]:
        out.append(
            f"\n**Lost** — run {run}, session {s['session_id']} (seed {s['seed']}), utterance {x['index']} "
            f"`{x['clip']}` at {x['audio'][0]:.2f}–{x['audio'][1]:.2f} s of audio, {x['found']}/{x['words']} "
            f"words found\n\n- reference: “{x['reference']}”\n- utterance before: “{x['prev_reference']}”\n"
            f"- final text there (between the neighbours' found words): “{x['between']}”\n"
            f"- aligned inside it: “{x['heard']}”\n"
        )
        for seg in x["segments"]:
            out.append(f"- final segment {seg['start']:.2f}–{seg['end']:.2f}: “{seg['text']}”\n")
        for e in x["utterance_ends"]:
            out.append(f"- utterance_end {e['start']:.2f}–{e['end']:.2f}: “{e['text']}”\n")
        if x["windows"]:
            out.append("- server windows over it (s since stream start, message):\n\n```\n")
            out.append("\n".join(x["windows"][:40]) + "\n```\n")
    for t in s.get("tails", []):
        out.append(f"\n*Tail* — run {run}, session {s['session_id']}: utterance {t['index']} lost its last "
                   f"{t['missing_tail']} words: “{t['reference']}” → “{t['heard']}”\n")  # fmt: skip
    return "".join(out)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sessions = [s for r in runs for s in r["sessions"] if not s["failed"]]
    offline = [r["offline_wer"] for r in runs if r.get("offline_wer") is not None]
    delays = [d for s in sessions for d in (s.get("ends") or {}).get("delays", [])]
    ends = [s["ends"] for s in sessions if s.get("ends")]
    return {
        "runs": len(runs),
        "sessions": len(sessions),
        "failed": sum(1 for r in runs for s in r["sessions"] if s["failed"]),
        "wer_mean": float(np.mean([s["wer"] for s in sessions])) if sessions else None,
        "offline_wer_mean": float(np.mean(offline)) if offline else None,
        "lost": sum(len(s["lost"]) for s in sessions),
        "runs_with_loss": sum(1 for r in runs if any(s.get("lost") for s in r["sessions"])),
        "tails": sum(len(s["tails"]) for s in sessions),
        "utterances": sum(s["utterances"] for s in sessions),
        "utterance_end": stats(delays),
        "utterance_end_after_sent": stats([d for e in ends for d in e.get("after_sent", [])]),
        "splits": sum(e["splits"] for e in ends),
        "missed_ends": sum(e["missed"] for e in ends),
        "long_pauses": sum(e["long_pauses"] for e in ends),
        "ends_after_next": sum(e["after_next"] for e in ends),
        "ledger_mismatch": sum(1 for s in sessions if s.get("ledger_ok") is False),
        "load": [r["load"] for r in runs],
    }  # fmt: skip


def report(*configs: tuple[str, dict[str, Any]]) -> str:
    """One row per configuration: (label, ``summary()``)."""
    rows = []
    for label, sm in configs:
        ue = sm["utterance_end"]
        rows.append([
            label, sm["runs"], sm["sessions"], sm["wer_mean"] and sm["wer_mean"] * 100,
            sm["offline_wer_mean"] and sm["offline_wer_mean"] * 100, sm["lost"], sm["runs_with_loss"],
            sm["tails"], ue["median"], ue["p90"], (sm.get("utterance_end_after_sent") or {}).get("median"),
            ue["n"], sm["splits"],
            f"{sm['missed_ends']}/{sm['long_pauses']}", sm["ends_after_next"], sm["ledger_mismatch"],
            f"{sm['load'][0]} … {sm['load'][-1]}" if sm["load"] else "",
        ])  # fmt: skip
    return table([
        "config", "runs", "sessions", "WER % mean", "offline WER %", "lost utterances", "runs with a loss",
        "lost tails (≥3 words)", "utterance_end median (s)", "p90 (s)", "median after the slice was sent (s)",
        "ends", "ends inside a clip",
        "long pauses without end", "ends after next speech", "ends ≠ final", "load avg 1/5/15 (first … last)",
    ], rows)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--root",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="the checkout whose server to run (default: this one)",
    )
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--streams", type=int, default=1, help="concurrent sessions per run")
    p.add_argument("--seconds", type=float, default=60.0, help="stream length (whole clips, at least this)")
    p.add_argument(
        "--gaps", default=f"{DENSE_GAPS[0]},{DENSE_GAPS[1]}", help="pause after each clip: lo,hi (s)"
    )
    p.add_argument(
        "--noise", type=float, default=None, help="white-noise floor, dBFS RMS (default: digital silence)"
    )
    p.add_argument("--format", choices=("webm", "pcm16"), default="webm")
    p.add_argument(
        "--events",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="events=true&words=true (default) or plain protocol 1",
    )
    p.add_argument("--endpointing", type=int, default=None, help="ms (default: the server's)")
    p.add_argument("--clips", default="librivox,prompts", help="clip sets: librivox, prompts")
    p.add_argument(
        "--seed", type=int, default=1000, help="first seed; run r, stream k: seed + r * streams + k"
    )
    p.add_argument("--slice", type=float, default=0.25)
    p.add_argument("--offline", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--name", default="loss_bench", help="file name stem under bench/results/")
    p.add_argument("--notes", type=Path, default=None, help="markdown file to append figures and evidence to")
    p.add_argument(
        "--report",
        type=Path,
        nargs="+",
        default=None,
        help="print one table from saved bench/results/*.json files instead of running",
    )
    args = p.parse_args(argv)  # fmt: skip
    if args.report:
        saved = [json.loads(f.read_text()) for f in args.report]
        print(
            report(*((f"{d['label']} ({Path(d['root']).name} {d['commit']})", d["summary"]) for d in saved))
        )
        return 0
    gaps = tuple(float(x) for x in args.gaps.split(","))
    assert len(gaps) == 2
    pool = clips(args.clips.split(","))
    query = ["events=true&words=true"] if args.events else []
    query += [f"endpointing={args.endpointing}"] if args.endpointing else []
    query += ["format=pcm16&sample_rate=16000"] if args.format == "pcm16" else []
    endpointing = (args.endpointing or 800) / 1000
    pause = "silence" if args.noise is None else f"noise {args.noise:g} dBFS"
    label = (f"{args.streams}×{args.format}, {'events' if args.events else 'no events'}, gaps "
             f"{gaps[0]:g}–{gaps[1]:g} s, {pause}"
             + (f", endpointing {args.endpointing}" if args.endpointing else ""))  # fmt: skip
    root = args.root.resolve()
    print(f"## loss_bench: {label}; root {root}; load {_load()}", flush=True)
    offline = offline_texts(pool) if args.offline else None

    def note(text: str) -> None:
        print(text, flush=True)
        if args.notes:
            with args.notes.open("a") as f:
                f.write(text + "\n")

    commit = os.popen(f"git -C {root} rev-parse --short HEAD").read().strip()
    command = "python bench/loss_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    note(f"\n### {label} — root `{root}` ({commit}), {args.runs} runs, started "
         f"{time.strftime('%H:%M')} (load {_load()})\n\n`{command}`\n")  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="loss_bench_"))
    server = start_root_server(root, folder)
    url = server.ws + ("?" + "&".join(query) if query else "")
    runs: list[dict[str, Any]] = []
    try:
        warm = build_dense(pool, 3, gaps=gaps, seed=0)
        asyncio.run(stream(url, _encode(warm, args.format, args.slice), interval=None, timeout=args.timeout))
        for r in range(args.runs):
            load = _load()
            speeches = [build_dense(pool, args.seconds, gaps=gaps, seed=args.seed + r * args.streams + k,
                                    noise_dbfs=args.noise) for k in range(args.streams)]  # fmt: skip
            encoded = [_encode(s, args.format, args.slice) for s in speeches]
            results = asyncio.run(_run(url, encoded, args.slice, args.timeout))
            sessions = [
                session_figures(
                    res, sp, slice_s=args.slice, endpointing=endpointing, wall0=w0, log=server.log
                )
                for (w0, res), sp in zip(results, speeches, strict=True)
            ]
            off = None
            if offline is not None:
                texts = [" ".join(offline[pl.clip.name] for pl in sp.placed) for sp in speeches]
                off = float(
                    np.mean([word_error_rate(sp.reference, t) for sp, t in zip(speeches, texts, strict=True)])
                )
            run = {
                "run": r,
                "load": load,
                "seconds": speeches[0].seconds,
                "offline_wer": off,
                "sessions": sessions,
            }
            runs.append(run)
            ok = [s for s in sessions if not s["failed"]]
            delays = [d for s in ok for d in (s.get("ends") or {}).get("delays", [])]
            note(f"- run {r + 1}: {speeches[0].seconds:.0f} s × {len(sessions)}, WER "
                 f"{np.mean([s['wer'] for s in ok]) * 100 if ok else float('nan'):.1f} % (offline "
                 f"{(off or 0) * 100:.1f} %), lost {sum(len(s['lost']) for s in ok)}, tails "
                 f"{sum(len(s['tails']) for s in ok)}, failed {len(sessions) - len(ok)}"
                 + (f", utterance_end median {np.median(delays):.2f} s (n {len(delays)})" if delays else "")
                 + (", ends≠final" if any(s.get("ledger_ok") is False for s in ok) else "")
                 + f"; load before {load}")  # fmt: skip
            for s in ok:
                if s["lost"] or s["tails"]:
                    note(evidence(r + 1, s))
    finally:
        _server.stop(server)
    sm = summary(runs)
    note("\n" + report((label, sm)) + "\n")
    data = {"label": label, "root": str(root), "commit": commit, "query": query, "summary": sm, "runs": runs,
            "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    path = save_json(f"{args.name}.json", data)
    print(f"\nraw figures: {path}\nserver log: {server.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
