"""Accuracy at utterance end (protocol 1.1): live WER against the offline pass, in one run.

Streams the project's LibriVox speech (the 5 utterances, 1 s apart, ``--repeats`` rounds) as
WebM/Opus in 250 ms slices at real-time pace, with ``events=true&words=true``, through a server
it starts itself, ``--runs`` times at each concurrency level, and reports:

* offline WER with beam 5: the whole file in one pass, and utterance by utterance;
* live WER per level: the mean over sessions, each run's mean, and the spread (max - min) of
  the run means;
* committed-word latency (median, p90): from a word's end in the audio to its arrival in
  ``committed`` (word ends from the offline per-utterance pass, as in ``stream_bench.py``);
* ``utterance_end`` delay: from the end of the utterance's last word to the message's arrival;
* how often the closing pass heard an early-committed word differently (``/metrics``'
  ``stt_early_commit_words_total``): the cost of committing words before the utterance ends.

    python bench/accuracy_bench.py                       # 3 runs at 1 and 4 streams (~8 min)
    python bench/accuracy_bench.py --runs 1 --streams 1  # smoke

Prints markdown tables; writes bench/results/accuracy_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _common import (
    SAMPLE_RATE,
    build_speech,
    commit_latencies,
    librivox,
    machine,
    save_json,
    speech_truth,
    stats,
    table,
)

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber, Word
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate


def early_commits(server: _server.BenchServer) -> tuple[float, float]:
    """(agreed, disagreed) early-committed words the server has counted so far."""
    m = _server.scrape(server)
    agreed = m.get('stt_early_commit_words_total{closing_pass="agreed"}', 0.0)
    return agreed, m.get('stt_early_commit_words_total{closing_pass="disagreed"}', 0.0)


def utterance_end_delays(result: StreamResult, truth: list[Word], slice_s: float) -> list[float]:
    """Seconds from the end of each utterance's last spoken word to its ``utterance_end``."""
    out = []
    for r in result.messages:
        m = r.message
        if m["type"] != "utterance_end" or not m["words"]:
            continue
        spoken = [w.end for w in truth if w.end <= m["end"] + 0.3]
        if spoken:
            out.append(r.at + slice_s - spoken[-1])
    return out


def session_figures(
    result: StreamResult, truth: list[Word], reference: str, slice_s: float
) -> dict[str, Any]:
    final = result.final
    if final is None:
        return {"failed": True, "errors": result.errors}
    final_at = next(r.at for r in result.messages if r.message["type"] == "final")
    commits = [
        (r.at + slice_s, r.message["committed"]) for r in result.messages if r.message["type"] == "transcript"
    ]
    commits.append((final_at + slice_s, final["text"]))
    return {
        "failed": False,
        "wer": word_error_rate(reference, final["text"]),
        "commit_latency": commit_latencies(truth, commits),
        "utterance_end_delay": utterance_end_delays(result, truth, slice_s),
        "utterances": len(result.of_type("utterance_end")),
        "eof_to_final": final_at - (result.eof_at or final_at),
        "text": final["text"],
    }


async def level(url: str, chunks: list[bytes], n: int, slice_s: float) -> list[StreamResult]:
    return list(await asyncio.gather(*(stream(url, chunks, interval=slice_s, timeout=300) for _ in range(n))))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,4", help="concurrency levels, comma-separated")
    p.add_argument("--runs", type=int, default=3, help="runs of every level (for the spread)")
    p.add_argument("--repeats", type=int, default=2, help="rounds of the 5 utterances (~30 s each)")
    p.add_argument("--slice", type=float, default=0.25, help="WebM slice and send interval (s)")
    p.add_argument("--query", default="", help="more query parameters, e.g. endpointing=600")
    p.add_argument("--name", default="accuracy_bench", help="file name stem under bench/results/")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.streams.split(",") if x.strip()]

    speech = build_speech(repeats=args.repeats, pause=1.0)
    chunks = webm_slices(speech.audio, args.slice)
    print(f"speech: {speech.utterances} utterances, {speech.seconds:.1f} s; machine {machine()}", flush=True)
    model = Transcriber.load(ModelConfig())
    truth, per_utterance_text = speech_truth(model, speech)
    refs = [text for _, text in librivox()]
    first_round = speech.placed[: len(speech.placed) // args.repeats]
    end = first_round[-1][1] + SAMPLE_RATE // 2
    whole = model.transcribe(speech.audio[:end], DecodeOptions(language="en", beam_size=5)).text
    offline = {
        "per_utterance": word_error_rate(speech.reference, per_utterance_text),
        "whole_file": word_error_rate(" ".join(refs[i] for _, _, i in first_round), whole),
    }
    print(f"offline beam 5: whole file (one round, one pass) WER {offline['whole_file']:.3f}; "
          f"utterance by utterance WER {offline['per_utterance']:.3f}", flush=True)  # fmt: skip

    data: dict[str, Any] = {"machine": machine(), "seconds": speech.seconds, "offline": offline, "levels": {}}
    server = _server.start(Path(tempfile.mkdtemp(prefix="accuracy_bench_")), timed=False)
    url = server.ws + "?events=true&words=true" + (f"&{args.query}" if args.query else "")
    try:
        asyncio.run(stream(url, webm_slices(speech.audio[: 5 * SAMPLE_RATE], args.slice), interval=None))
        for run in range(args.runs):
            for n in levels:
                before = early_commits(server)
                began = time.time()
                results = asyncio.run(level(url, chunks, n, args.slice))
                after = early_commits(server)
                figures = [session_figures(r, truth, speech.reference, args.slice) for r in results]
                entry = {
                    "run": run, "wall": time.time() - began, "sessions": figures,
                    "early_words": after[0] + after[1] - before[0] - before[1],
                    "early_disagreed": after[1] - before[1],
                }  # fmt: skip
                data["levels"].setdefault(str(n), []).append(entry)
                ok = [f for f in figures if not f["failed"]]
                wer = np.mean([f["wer"] for f in ok]) if ok else float("nan")
                print(
                    f"run {run + 1}, {n} stream(s): WER {wer:.3f}, failed {len(figures) - len(ok)}",
                    flush=True,
                )
    finally:
        _server.stop(server)
    print_report(data, levels)
    path = save_json(f"{args.name}.json", data)
    print(f"\nraw figures: {path}")
    return 0


def print_report(data: dict[str, Any], levels: list[int]) -> None:
    off = data["offline"]
    rows = []
    for n in levels:
        runs = data["levels"][str(n)]
        sessions = [s for r in runs for s in r["sessions"] if not s["failed"]]
        run_means = [float(np.mean([s["wer"] for s in r["sessions"] if not s["failed"]])) for r in runs]
        latency = stats([x for s in sessions for x in s["commit_latency"]])
        delay = stats([x for s in sessions for x in s["utterance_end_delay"]])
        early = sum(r["early_words"] for r in runs)
        disagreed = sum(r["early_disagreed"] for r in runs)
        rows.append([
            n, float(np.mean([s["wer"] for s in sessions])) * 100,
            " / ".join(f"{w * 100:.1f}" for w in run_means), (max(run_means) - min(run_means)) * 100,
            latency["median"], latency["p90"], delay["median"], delay["p90"],
            stats([s["eof_to_final"] for s in sessions])["median"],
            f"{disagreed:.0f}/{early:.0f} ({100 * disagreed / early:.1f} %)" if early else "—",
        ])  # fmt: skip
    print(f"\noffline beam 5 WER: whole file {off['whole_file'] * 100:.1f} %, "
          f"utterance by utterance {off['per_utterance'] * 100:.1f} %\n")  # fmt: skip
    print(table(
        ["streams", "live WER %", "per run", "spread (pts)", "commit median s", "commit p90 s",
         "utterance_end delay median s", "p90 s", "eof→final s", "early words heard otherwise"],
        rows,
    ))  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
