"""Stream speech through a real server at real-time pace, 1…N sessions at once; compare with
the seed's literal design (whole buffer re-transcribed on every chunk).

For each concurrency level N it starts N WebSocket sessions together (``ws_client.stream``,
WebM/Opus cut into 250 ms slices by block time, as MediaRecorder does, sent 250 ms apart) on one
server it started itself — a level of fewer than ``--min-sessions`` streams is run again until it
has that many sessions — and reports:

* WER of each session's ``final`` text against the reference (offline WER as the reference point);
* committed-word latency: from a word's end in the audio to its arrival in ``committed``
  (word end times from an offline beam-5 word-timestamped transcription of each utterance,
  aligned with difflib);
  first-seen latency: the same up to its first appearance in ``text`` (tentative included);
* time from sending ``eof`` to receiving ``final``;
* lag: when an update was applied, how much audio had been spoken that its window did not
  cover yet (from the server's per-update debug log); the longest gap between updates;
* per-call model compute (a timed subclass of the transcriber, see ``_timed_app.py``), the
  model's utilisation (busy seconds / wall seconds) and the server's peak RSS.

Times follow a live microphone's clock: a slice is sent once its audio has been "spoken", so a
word ending at audio time T was spoken at T, and its latency is its arrival time minus T.

    python bench/stream_bench.py                          # full: 1, 2, 4, 8 streams of ~60 s
    python bench/stream_bench.py --seconds 20 --streams 1 --min-sessions 1 --baseline-cap 30  # smoke
    python bench/stream_bench.py --dense --streams 1,4,8,12,16 --seconds 50 --no-baseline

``--dense``: the utterances follow each other with 0.25-0.9 s gaps (uniform, seeded), as in a
meeting or a call, instead of 1 s pauses; it also reports each level's worst session (the
highest p90 of one session's commit latency) and the model calls per second split into
windows that close an utterance (the strong decode) and tentative refreshes.

Prints markdown tables; writes bench/results/stream_bench.{json,png}.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _baseline import LITERAL_OPTIONS, LiteralCall, LiteralRun, simulate_literal
from _common import (
    DENSE_GAPS,
    RESULTS,
    SAMPLE_RATE,
    build_speech,
    commit_latencies,
    first_seen_latencies,
    machine,
    rss_mib,
    save_json,
    speech_truth,
    stats,
)
from _stream_report import plot, print_report

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber, Word
from wirescribe.audio.decode import decode_file
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate


@dataclass
class Session:
    wall0: float  # unix time the stream started
    result: StreamResult


async def _one(url: str, chunks: list[bytes], interval: float, delay: float, timeout: float) -> Session:
    await asyncio.sleep(delay)
    wall0 = time.time()  # stream() takes its own start right after this, before any await
    return Session(wall0, await stream(url, chunks, interval=interval, timeout=timeout))


async def run_level(
    server: _server.BenchServer, chunks: list[bytes], n: int, interval: float, stagger: float, timeout: float
) -> tuple[list[Session], float, float, float]:
    """N concurrent sessions; returns them, the level's start/end (unix) and the peak RSS."""
    peak = rss_mib(server.pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mib(server.pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    began = time.time()
    sessions = await asyncio.gather(
        *(_one(server.ws, chunks, interval, i * stagger, timeout) for i in range(n))
    )
    ended = time.time()
    done.set()
    await sampler
    return list(sessions), began, ended, max(peak, rss_mib(server.pid))


def session_figures(
    s: Session, truth: list[Word], reference: str, duration: float, slice_s: float,
    updates: list[_server.LoggedUpdate],
) -> dict[str, Any]:  # fmt: skip
    """One session's figures, on the microphone clock (message time + one slice)."""
    r = s.result
    final = r.final
    msgs = [m for m in r.messages if m.message.get("type") == "transcript"]
    ready = r.of_type("ready")
    sid = ready[0]["session_id"] if ready else None
    out: dict[str, Any] = {"session_id": sid, "errors": r.errors, "close_code": r.close_code}
    if final is None or r.eof_at is None:
        return {**out, "failed": True}
    final_at = next(m.at for m in r.messages if m.message.get("type") == "final")
    commits = [(m.at + slice_s, m.message["committed"]) for m in msgs] + [(final_at + slice_s, final["text"])]
    texts = [(m.at + slice_s, m.message["text"]) for m in msgs] + [(final_at + slice_s, final["text"])]
    streaming = [m.at for m in msgs if m.at <= r.eof_at]
    gaps = np.diff([0.0, *streaming]) if streaming else np.array([])
    mine = [u for u in updates if u.session == sid and u.at - s.wall0 <= r.eof_at]
    lags = [min(u.at - s.wall0 + slice_s, duration) - u.end for u in mine]
    commit_latency = commit_latencies(truth, commits)
    return {
        **out,
        "failed": False,
        "wer": word_error_rate(reference, final["text"]),
        "commit_latency": commit_latency,
        "commit_latency_p90": stats(commit_latency)["p90"],
        "first_seen_latency": first_seen_latencies(truth, texts),
        "eof_to_final": final_at - r.eof_at,
        "updates": len(msgs),
        "model_updates": len([u for u in updates if u.session == sid]),
        "max_gap": float(gaps.max()) if len(gaps) else None,
        "lag": lags,
        "final_text": final["text"],
    }


def level_figures(
    n: int, sessions: list[dict[str, Any]], calls: list[_server.LoggedCall], began: float, ended: float,
    peak_rss: float,
) -> dict[str, Any]:  # fmt: skip
    ok = [s for s in sessions if not s["failed"]]
    mine = [c for c in calls if began <= c.started <= ended]
    pooled = lambda key: [x for s in ok for x in s[key]]  # noqa: E731
    wall = ended - began
    closing = [c for c in mine if c.closing]
    session_p90 = [s["commit_latency_p90"] for s in ok if s["commit_latency_p90"] is not None]
    return {
        "streams": n,
        "failed_sessions": len(sessions) - len(ok),
        "wer_mean": float(np.mean([s["wer"] for s in ok])) if ok else None,
        "wer_max": max((s["wer"] for s in ok), default=None),
        "commit_latency": stats(pooled("commit_latency")),
        "worst_session_p90": max(session_p90, default=None),
        "session_p90": stats(session_p90),
        "first_seen_latency": stats(pooled("first_seen_latency")),
        "eof_to_final": stats([s["eof_to_final"] for s in ok]),
        "lag": stats(pooled("lag")),
        "updates_per_session": stats([s["updates"] for s in ok]),
        "max_gap": max((s["max_gap"] for s in ok if s["max_gap"] is not None), default=None),
        "compute": stats([c.took for c in mine]) if mine else None,
        "window_seconds": stats([c.audio for c in mine]) if mine else None,
        "model_calls": len(mine),
        "closing_calls_per_s": len(closing) / wall if mine else None,
        "tentative_calls_per_s": (len(mine) - len(closing)) / wall if mine else None,
        "closing_compute": stats([c.took for c in closing]) if closing else None,
        "tentative_compute": stats([c.took for c in mine if not c.closing]) if mine else None,
        "utilisation": sum(c.took for c in mine) / (ended - began) if mine else None,
        "wall_seconds": ended - began,
        "peak_rss_mib": peak_rss,
        "sessions": sessions,
    }


def baseline_figures(run: LiteralRun, truth: list[Word], reference: str, slice_s: float) -> dict[str, Any]:
    compute = [c.compute for c in run.calls]
    return {
        "slice": slice_s,
        "options": {
            "beam_size": LITERAL_OPTIONS.beam_size,
            "context": "30 s (full)",
            "temperature_fallback": True,
        },
        "stream_seconds": run.stream_seconds,
        "chunks": run.chunks,
        "calls_done": len(run.calls),
        "finished": run.finished,
        "cap_seconds": run.cap,
        "backlog_chunks": run.backlog_chunks,
        "behind_at_eof": run.behind_at_eof,
        "eof_to_final": run.eof_to_final,
        "compute": stats(compute),
        "compute_first": compute[0] if compute else None,
        "compute_last": compute[-1] if compute else None,
        "whole_buffer_compute": run.final_compute,
        "max_lag": max((c.lag for c in run.calls), default=None),
        "wer_last_output": word_error_rate(reference, run.last_text),
        "wer_whole_buffer": word_error_rate(reference, run.final_text or ""),
        "first_seen_latency": stats(first_seen_latencies(truth, [(c.finished, c.text) for c in run.calls])),
        "calls": [[c.audio_end, c.started, c.finished, c.compute] for c in run.calls],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--streams", default="1,2,4,8", help="concurrency levels, comma-separated")
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stream length (whole utterances, at least this long); default: --repeats rounds",
    )
    p.add_argument("--repeats", type=int, default=2, help="rounds of the 5 utterances (~30 s each)")
    p.add_argument("--pause", type=float, default=1.0, help="silence after each utterance (s)")
    p.add_argument(
        "--dense", action="store_true", help="0.25-0.9 s gaps between utterances instead of --pause"
    )
    p.add_argument("--slice", type=float, default=0.25, help="WebM slice and send interval (s)")
    p.add_argument("--stagger", type=float, default=0.0, help="delay between session starts (s)")
    p.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also simulate the seed's literal design",
    )
    p.add_argument(
        "--baseline-cap",
        type=float,
        default=180.0,
        help="seconds after the stream's end the literal design may take to catch up",
    )
    p.add_argument(
        "--plain", action="store_true", help="run server:app as it is (no per-call compute figures)"
    )
    p.add_argument(
        "--min-sessions", type=int, default=4, help="repeat a level until it has this many sessions"
    )
    p.add_argument("--timeout", type=float, default=300.0, help="per-session wait for the server (s)")
    p.add_argument("--name", default=None, help="file name stem under bench/results/ (default:"
                   " stream_bench, or stream_bench_dense with --dense)")  # fmt: skip
    args = p.parse_args(argv)  # fmt: skip
    levels = [int(x) for x in args.streams.split(",") if x.strip()]
    name = args.name or ("stream_bench_dense" if args.dense else "stream_bench")

    pause: float | tuple[float, float] = DENSE_GAPS if args.dense else args.pause
    speech = build_speech(args.seconds, repeats=args.repeats, pause=pause)
    chunks = webm_slices(speech.audio, args.slice)
    # Slices are cut by the blocks' timestamps (as MediaRecorder does) and sent this far apart, so
    # the audio goes out at real-time pace and slice i has been "spoken" when slice i+1 is sent.
    slice_s = args.slice
    print(f"speech: {speech.utterances} utterances, {speech.seconds:.1f} s, {len(chunks)} WebM slices; "
          f"machine {machine()}", flush=True)  # fmt: skip

    model = Transcriber.load(ModelConfig())
    model.transcribe(speech.audio[: SAMPLE_RATE * 2], DecodeOptions(language="en"))  # warm up
    t = time.perf_counter()
    truth, offline_text = speech_truth(model, speech)
    offline_s = time.perf_counter() - t
    offline_wer = word_error_rate(speech.reference, offline_text)
    print(f"offline (per utterance, beam 5): WER {offline_wer:.3f} in {offline_s:.1f} s "
          f"(RTF {offline_s / speech.seconds:.3f})", flush=True)  # fmt: skip

    data: dict[str, Any] = {
        "machine": machine(), "model": model.name, "stream_seconds": speech.seconds, "slice": slice_s,
        "utterances": speech.utterances, "reference": speech.reference, "offline_wer": offline_wer,
        "offline_text": offline_text, "offline_seconds": offline_s, "stagger": args.stagger,
        "timed_server": not args.plain, "pause": pause, "levels": [],
    }  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="stream_bench_"))
    server = _server.start(folder, timed=not args.plain)
    print(f"server pid {server.pid} on port {server.port}, log {server.log}", flush=True)
    try:
        warm = webm_slices(speech.audio[: SAMPLE_RATE * 5], args.slice)
        asyncio.run(stream(server.ws, warm, interval=None, timeout=args.timeout))
        for n in levels:
            # Fewer than --min-sessions streams: repeat the level, so every WER is a mean over
            # as many sessions (one session's WER moves by a whole word from run to run).
            load = [round(x, 2) for x in os.getloadavg()]  # other work on the machine, before the level
            before = _server.scrape(server)
            rounds = [
                asyncio.run(run_level(server, chunks, n, slice_s, args.stagger, args.timeout))
                for _ in range(max(1, -(-args.min_sessions // n)))
            ]
            sessions = [x for r in rounds for x in r[0]]
            began, ended, peak = rounds[0][1], rounds[-1][2], max(r[3] for r in rounds)
            updates, calls = _server.read_log(server.log)
            figures = [
                session_figures(s, truth, speech.reference, speech.seconds, slice_s, updates)
                for s in sessions
            ]
            lv = level_figures(n, figures, calls, began, ended, peak)
            lv["loadavg_before"] = load
            after = _server.scrape(server)
            lv["server"] = {  # the server's own view of the level (its /metrics, differences)
                k: after.get(k, 0.0) - before.get(k, 0.0)
                for k in ("stt_scheduler_deferred_total", 'stt_model_windows_total{kind="closing"}',
                          'stt_model_windows_total{kind="other"}', "stt_commit_latency_seconds_count",
                          "stt_commit_latency_seconds_sum", "stt_session_lag_seconds_count")
            }  # fmt: skip
            data["levels"].append(lv)
            comp = lv["compute"] or {}
            print(f"{n} streams: WER {lv['wer_mean']}, commit latency {lv['commit_latency']['median']} "
                  f"(p90 {lv['commit_latency']['p90']}, worst session's p90 {lv['worst_session_p90']}), "
                  f"eof→final {lv['eof_to_final']['median']}, compute median {comp.get('median')}, "
                  f"busy {lv['utilisation']}, failed {lv['failed_sessions']}", flush=True)  # fmt: skip
    finally:
        _server.stop(server)

    if args.baseline:
        with tempfile.TemporaryDirectory() as tmp:  # the same Opus-coded audio the server heard
            webm = Path(tmp) / "stream.webm"
            webm.write_bytes(b"".join(chunks))
            heard = decode_file(webm)
        print(f"literal design: {len(heard) / SAMPLE_RATE:.1f} s, up to {args.baseline_cap:g} s to catch up…",
              flush=True)  # fmt: skip

        def progress(c: LiteralCall) -> None:
            if c.chunk % 20 == 0:
                print(f"  chunk {c.chunk}: buffer {c.audio_end:.1f} s, compute {c.compute:.2f} s, "
                      f"lag {c.lag:.1f} s", flush=True)  # fmt: skip

        run = simulate_literal(
            model, heard, slice_seconds=args.slice, cap=args.baseline_cap, progress=progress
        )
        data["baseline"] = baseline_figures(run, truth, speech.reference, args.slice)

    print_report(data)
    json_path = save_json(f"{name}.json", data)
    png = RESULTS / f"{name}.png"
    plot(data, png)
    print(f"\nraw figures: {json_path}\nplot: {png}\nserver log: {server.log}")
    return 0 if all(lv["failed_sessions"] == 0 for lv in data["levels"]) else 1


if __name__ == "__main__":
    sys.exit(main())
