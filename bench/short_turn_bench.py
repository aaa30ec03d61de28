"""Short turns through a real server: latency, admission, and where the model's time goes.

A call centre or a quick back-and-forth: turns of 2–5 s (the support-call prompts of
``tests/data/prompts``, Piper's voice; a prompt under 2 s of speech is joined to the next after a
0.2 s breath), each followed by a seeded gap of 0.25–0.9 s — many utterance closings per second,
and gaps shorter than the 800 ms endpointing, long enough to start an early closing pass that the
resumed speech interrupts. Each session streams its own seeded ~``--seconds`` s of it as
WebM/Opus in 250 ms slices at real-time pace, with ``events=true&words=true``; ``N`` sessions start
0.2 s apart, on a fresh server per level (the timed app, ``bench/_timed_app.py``: same server,
every model call timed), so a level's admission starts from what nothing has measured yet.

Per level (``--levels``, default 1, 4, 8, 12 streams):

* sessions admitted and refused (``busy``/1013: the admission by measured load, ``api/admission.py``);
* commit latency (each committed word's arrival on the microphone's clock, + one slice, minus its
  end in the audio, as ``bench/stream_bench.py``): median over every word, the worst session's p90;
  ``final`` after ``eof``, max; WER of each session's final text (mean, max);
* model calls per second by kind, from ``/metrics`` (``stt_model_windows_total``): closing
  windows (the urgent rank: a pause, ``finalize``, ``eof``), of them the closing passes that did
  not end their utterance (the session's debug log's closing windows less its ``utterance_end``
  messages: an early closing pass the speech interrupted, or a second pass over speech the first
  missed), refreshes and other windows; closing windows lightened under load
  (``stt_scheduler_lightened_total``, ``asr/load.py``);
* CPU seconds of the server process (model, VAD, ffmpeg children reaped) and model busy seconds
  per second of audio streamed by the sessions admitted;
* the admission's limit and the model call time it measured, at the level's end;
* the load average before and after (the machine is shared: figures taken under load are not
  the quiet machine's).

    python bench/short_turn_bench.py                              # ~6 min: 4 levels of 60 s
    python bench/short_turn_bench.py --levels 12 --env STT_ADMISSION=fixed   # admit all 12
    python bench/short_turn_bench.py --levels 1,12 --seconds 45

Prints markdown; writes bench/results/<--name>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import sys
import tempfile
import time
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server
from _common import commit_latencies, machine, save_json, stats, table, truth_words
from _dense import DENSE_GAPS, Clip, DenseSpeech, build_dense

from tests.support.dense import prompt_clips
from wirescribe.asr.model import ModelConfig, Transcriber, Word
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

BREATH = 0.2  # seconds between two prompts joined into one turn
_FINAL_WINDOW = re.compile(r"^session (\w+): window [\d.]+-[\d.]+ final ")


def turns(min_speech: float = 2.0) -> tuple[Clip, ...]:
    """The prompts as turns of 2–5 s: one under ``min_speech`` s of speech is joined to the
    next (the last to the first) after a breath."""
    clips = list(prompt_clips())
    out: list[Clip] = []
    i = 0
    while i < len(clips):
        a = clips[i]
        if a.speech_end / SAMPLE_RATE >= min_speech:
            out.append(a)
            i += 1
            continue
        b = clips[(i + 1) % len(clips)]
        head = np.concatenate([a.audio[: a.speech_end], np.zeros(int(BREATH * SAMPLE_RATE), np.float32)])
        out.append(Clip(f"{a.name}+{b.name}", np.concatenate([head, b.audio]), f"{a.text} {b.text}",
                        len(head) + b.speech_end))  # fmt: skip
        i += 2
    return tuple(out)


def truth_of(speech: DenseSpeech, cache: dict[str, list[Word]], model: Transcriber) -> list[Word]:
    """Each turn's offline words (beam 5, full context), shifted to where it sits: the clock
    commit latencies are measured from."""
    words: list[Word] = []
    for p in speech.placed:
        if p.clip.name not in cache:
            cache[p.clip.name] = truth_words(model, p.clip.audio)[0]
        start = p.first / SAMPLE_RATE
        words += [Word(w.start + start, w.end + start, w.text, w.probability) for w in cache[p.clip.name]]
    return words


def warm_up(http: str, clip: Clip) -> None:
    """One upload through the model before the level: its first call's set-up is not a
    session's latency. An upload, not a live session: admission counts live sessions' commit
    latency, and a warm-up streamed faster than real time would count as a late one."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes((np.clip(clip.audio, -1, 1) * 32767).astype("<i2").tobytes())
    body = buffer.getvalue()
    reply = httpx.post(f"{http}/v1/audio/transcriptions", files={"file": ("warm.wav", body)}, timeout=120)
    reply.raise_for_status()


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and its reaped children (Linux /proc: utime, stime, cutime, cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def _one(url: str, chunks: list[bytes], delay: float, slice_s: float, timeout: float) -> StreamResult:
    await asyncio.sleep(delay)
    return await stream(url, chunks, interval=slice_s, timeout=timeout)


async def _level(url: str, streams: list[list[bytes]], stagger: float, slice_s: float,
                 timeout: float) -> list[StreamResult]:  # fmt: skip
    return list(
        await asyncio.gather(*(_one(url, c, k * stagger, slice_s, timeout) for k, c in enumerate(streams)))
    )


def session_figures(r: StreamResult, speech: DenseSpeech, truth: list[Word], slice_s: float,
                    closing_windows: Counter[str]) -> dict[str, Any]:  # fmt: skip
    ready = r.of_type("ready")
    sid = ready[0].get("session_id") if ready else None
    out: dict[str, Any] = {
        "session_id": sid,
        "errors": [e.get("code") for e in r.errors],
        "close_code": r.close_code,
    }
    if not ready:
        return {**out, "admitted": False}
    final = r.final
    if final is None or r.eof_at is None:
        return {**out, "admitted": True, "failed": True}
    final_at = next(m.at for m in r.messages if m.message.get("type") == "final")
    msgs = [m for m in r.messages if m.message.get("type") == "transcript"]
    commits = [(m.at + slice_s, m.message["committed"]) for m in msgs] + [(final_at + slice_s, final["text"])]
    latency = commit_latencies(truth, commits)
    ends = [e for e in r.of_type("utterance_end") if e.get("text", "").strip()]
    return {
        **out, "admitted": True, "failed": False,
        "wer": word_error_rate(speech.reference, final["text"]),
        "commit_latency": latency, "commit_latency_p90": stats(latency)["p90"],
        "eof_to_final": final_at - r.eof_at,
        "closing_windows": closing_windows.get(sid or "", 0), "utterance_ends": len(ends),
        "audio_seconds": speech.seconds,
    }  # fmt: skip


def closing_windows_by_session(log: Path) -> Counter[str]:
    """Windows committed whole (closing passes; a window cut for length too, rare in short
    turns) per session id, from the session logger's debug lines."""
    out: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and (m := _FINAL_WINDOW.match(parts[3])):
            out[m[1]] += 1
    return out


def _delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def run_level(n: int, args: argparse.Namespace, pool: tuple[Clip, ...], model: Transcriber,
              cache: dict[str, list[Word]]) -> dict[str, Any]:  # fmt: skip
    env = dict(e.split("=", 1) for e in args.env)
    folder = Path(tempfile.mkdtemp(prefix=f"short_turn_{n}_"))
    speeches = [build_dense(pool, args.seconds, gaps=DENSE_GAPS, seed=args.seed + k) for k in range(n)]
    truths = [truth_of(s, cache, model) for s in speeches]
    encoded = [webm_slices(s.audio, args.slice) for s in speeches]
    server = _server.start(folder, timed=True, env=env)
    try:
        warm_up(server.http, pool[0])
        load_before = os.getloadavg()
        before, cpu0, began = _server.scrape(server), process_cpu(server.pid), time.time()
        url = f"{server.ws}?events=true&words=true"
        results = asyncio.run(_level(url, encoded, args.stagger, args.slice, args.timeout))
        wall, cpu = time.time() - began, process_cpu(server.pid) - cpu0
        after = _server.scrape(server)
        load_after = os.getloadavg()
    finally:
        _server.stop(server)
    closing = closing_windows_by_session(server.log)
    sessions = [session_figures(r, s, t, args.slice, closing)
                for r, s, t in zip(results, speeches, truths, strict=True)]  # fmt: skip
    ok = [s for s in sessions if s.get("admitted") and not s.get("failed")]
    audio = sum(s["audio_seconds"] for s in ok)
    windows = {
        k: _delta(after, before, f'stt_model_windows_total{{kind="{k}"}}') for k in ("closing", "other")
    }
    closing_passes = sum(s["closing_windows"] for s in ok)
    busy = _delta(after, before, "stt_scheduler_busy_seconds_total")
    unended = sum(max(0, s["closing_windows"] - s["utterance_ends"]) for s in ok)
    p90s = [s["commit_latency_p90"] for s in ok if s["commit_latency_p90"] is not None]
    return {
        "streams": n, "admitted": sum(1 for s in sessions if s.get("admitted")),
        "refused": sum(1 for s in sessions if "busy" in s["errors"]),
        "failed": sum(1 for s in sessions if s.get("failed")),
        "commit_latency": stats([x for s in ok for x in s["commit_latency"]]),
        "worst_session_p90": max(p90s, default=None), "session_p90": stats(p90s),
        "eof_to_final": stats([s["eof_to_final"] for s in ok]),
        "wer_mean": float(np.mean([s["wer"] for s in ok])) if ok else None,
        "wer_max": max((s["wer"] for s in ok), default=None),
        "wall_seconds": wall, "audio_seconds": audio,
        "closing_per_s": windows["closing"] / wall, "other_per_s": windows["other"] / wall,
        "unended_closing_per_s": unended / wall, "closing_passes_logged": closing_passes,
        "lightened": _delta(after, before, "stt_scheduler_lightened_total"),
        "deferred": _delta(after, before, "stt_scheduler_deferred_total"),
        "cpu_per_audio_s": cpu / audio if audio else None,
        "busy_per_audio_s": busy / audio if audio else None,
        "admission_limit": after.get("stt_admission_limit"),
        "call_seconds": after.get("stt_admission_call_seconds"),
        "load_before": load_before, "load_after": load_after, "sessions": sessions,
    }  # fmt: skip


def report(levels: list[dict[str, Any]]) -> str:
    rows = []
    for lv in levels:
        cl, ef = lv["commit_latency"], lv["eof_to_final"]
        rows.append([
            lv["streams"], f"{lv['admitted']}/{lv['refused']}", cl["median"], lv["worst_session_p90"],
            ef["max"],
            lv["wer_mean"] and lv["wer_mean"] * 100, lv["wer_max"] and lv["wer_max"] * 100,
            lv["closing_per_s"], lv["unended_closing_per_s"], lv["other_per_s"], int(lv["lightened"]),
            lv["cpu_per_audio_s"], lv["busy_per_audio_s"], lv.get("admission_limit"), lv.get("call_seconds"),
            " / ".join(f"{x:.2f}" for x in lv["load_before"]) + f" → {lv['load_after'][0]:.2f}",
        ])  # fmt: skip
    return table([
        "streams", "admitted/refused", "commit latency median (s)", "worst session's p90 (s)",
        "final after eof, max (s)", "WER % mean", "WER % max", "closing windows/s",
        "of them not ending their utterance/s",
        "refresh and other windows/s", "closing windows lightened", "server CPU s per audio s",
        "model busy (wall) s per audio s", "admission limit at the end", "model call (s), measured",
        "load 1/5/15 before → 1 after",
    ], rows)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,4,8,12", help="concurrent sessions per level")
    p.add_argument(
        "--seconds", type=float, default=60.0, help="speech per session (whole turns, at least this)"
    )
    p.add_argument("--stagger", type=float, default=0.2, help="seconds between session starts")
    p.add_argument("--slice", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=2000, help="session k's stream: seed + k")
    p.add_argument("--env", action="append", default=[], help="STT_X=value for the server (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--name", default="short_turn_bench", help="file name stem under bench/results/")
    args = p.parse_args(argv)
    pool = turns()
    lengths = [c.speech_end / SAMPLE_RATE for c in pool]
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"## short_turn_bench: {len(pool)} turns of {min(lengths):.1f}-{max(lengths):.1f} s of speech, "
          f"gaps {DENSE_GAPS[0]}-{DENSE_GAPS[1]} s, {args.seconds:g} s per session; env {args.env}; "
          f"load {load}", flush=True)  # fmt: skip
    model = Transcriber.load(ModelConfig())
    cache: dict[str, list[Word]] = {}
    levels = []
    for n in (int(x) for x in args.levels.split(",")):
        lv = run_level(n, args, pool, model, cache)
        levels.append(lv)
        median = lv["commit_latency"]["median"]
        print(f"- {n} streams: admitted {lv['admitted']}, commit latency median {median}, worst p90 "
              f"{lv['worst_session_p90']}, load after {lv['load_after'][0]:.2f}", flush=True)  # fmt: skip
    print("\n" + report(levels))
    commit = os.popen("git rev-parse --short HEAD").read().strip()
    path = save_json(f"{args.name}.json", {"args": vars(args), "commit": commit, "machine": machine(),
                                            "levels": levels})  # fmt: skip
    print(f"\ncommit {commit}; raw figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
