"""Soak test: one long live session and many short ones against a real server, for a bounded time.

    .venv/bin/python bench/soak.py                  # 10 minutes
    .venv/bin/python bench/soak.py --minutes 2      # a quick look
    .venv/bin/python bench/soak.py --minutes 60 --format webm

Starts its own server on a loopback port (never talks to anything else), then for ``--minutes``:

* one long session streams LibriVox speech (the utterances cycled, with pauses) in real time,
  as raw pcm16 frames or, with ``--format webm``, as WebM/Opus encoded on the fly by a local
  ffmpeg, the way a browser's MediaRecorder sends it; at the end it sends eof and waits for the
  final;
* every ``--short-every`` seconds a short session sends one utterance as WebM as fast as it can,
  then eof, and times the final (at most ``--short-concurrency`` at once).

Every ``--report-every`` seconds it prints a row: the server's RSS, the long session's commit
latency (from the end of a word in the audio to the message whose ``committed`` first holds it;
word times from an offline transcription of the utterances), its updates, the short sessions
finished and their time from eof to final, errors. At the end: a summary, the
rows as JSON in ``bench/results/soak-<time>.json`` and, if matplotlib is installed (it is in
``bench/requirements.txt``), a plot next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _server
import numpy as np
import websockets
from _common import RESULTS, fmt, librivox, machine, rss_mib, save_json, stats, table, truth_words

from wirescribe.asr.model import ModelConfig, Transcriber
from wirescribe.audio.decode import SAMPLE_RATE, encode_audio, find_ffmpeg
from wirescribe.wer import normalize_words, word_error_rate

FRAME_SECONDS = 0.1  # one pcm16 frame of the long session
MAX_MINUTES = 60.0


@dataclass
class Tallies:
    """What the sessions saw, appended as it happens (times: seconds since the soak started)."""

    long_latency: list[tuple[float, float]] = field(default_factory=list)  # (at, word end -> committed)
    long_updates: list[float] = field(default_factory=list)  # when each transcript arrived
    long_sent: float = 0.0  # audio seconds sent by the long session
    long_final: dict[str, Any] = field(default_factory=dict)
    short: list[tuple[float, float, float]] = field(default_factory=list)  # (at, eof->final s, wer)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Row:
    at: float
    rss_mib: float
    long_audio: float
    latency_median: float | None
    latency_max: float | None
    updates: int
    short_done: int
    short_final_median: float | None
    short_final_max: float | None
    errors: int


def speech_stream(seed: int = 0) -> list[tuple[np.ndarray, int]]:
    """(audio, utterance index) of the utterances in random order, each followed by a 0.5-2 s
    pause; the caller cycles through them."""
    rng = random.Random(seed)
    utts = librivox()
    parts = []
    for index in rng.sample(range(len(utts)), len(utts)):
        pause = np.zeros(int(rng.uniform(0.5, 2.0) * SAMPLE_RATE), dtype=np.float32)
        parts.append((np.concatenate([utts[index][0], pause]), index))
    return parts


def truth_word_ends() -> list[list[tuple[str, float]]]:
    """Per utterance: its words (normalised) and where each ends (s), from an offline beam-5
    transcription with word timestamps, the reference the commit latency is measured from."""
    model = Transcriber.load(ModelConfig())
    out = []
    for audio, _ in librivox():
        words, _ = truth_words(model, audio)
        out.append([(n, w.end) for w in words for n in normalize_words(w.text)])
    return out


class CommitClock:
    """Matches newly committed words to the words spoken (greedily, a few words ahead, so a
    misheard word is skipped rather than derailing the rest) and yields their latency: arrival
    minus the end of the word in the audio, both in seconds since the stream started."""

    LOOKAHEAD = 30

    def __init__(self) -> None:
        self.spoken: list[tuple[str, float]] = []
        self._next = 0
        self._committed = ""

    def speak(self, words: list[tuple[str, float]], offset: float) -> None:
        self.spoken += [(w, offset + end) for w, end in words]

    def commit(self, committed: str, at: float) -> list[float]:
        new, self._committed = committed[len(self._committed) :], committed
        latencies = []
        for word in normalize_words(new):
            window = self.spoken[self._next : self._next + self.LOOKAHEAD]
            for k, (spoken, end) in enumerate(window):
                if spoken == word and end <= at + 0.5:  # a word cannot be committed before it is said
                    latencies.append(at - end)
                    self._next += k + 1
                    break
        return latencies


async def long_session(
    url: str, fmt_name: str, truth: list[list[tuple[str, float]]], until: float, t0: float, tally: Tallies
) -> None:
    """Stream speech in real time until ``until`` (monotonic), then eof; record the latency of
    every committed word, and the final."""
    parts, clock = speech_stream(), CommitClock()
    frame = int(FRAME_SECONDS * SAMPLE_RATE)
    query = "format=pcm16" if fmt_name == "pcm16" else "format=auto"
    async with websockets.connect(f"{url}?{query}", max_size=None) as ws:
        ready = json.loads(await ws.recv())
        assert ready["type"] == "ready", ready
        started = time.monotonic()
        eof_at = [0.0]

        async def reader() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                now = time.monotonic()
                if msg["type"] == "transcript":
                    tally.long_updates.append(now - t0)
                    for latency in clock.commit(msg["committed"], now - started):
                        tally.long_latency.append((now - t0, latency))
                elif msg["type"] == "final":
                    tally.long_final = {"audio_seconds": msg["audio_seconds"], "chars": len(msg["text"]),
                                        "eof_to_final": now - eof_at[0]}  # fmt: skip
                elif msg["type"] == "error":
                    tally.errors.append(f"long: {msg['code']}: {msg['message']}")

        reading = asyncio.create_task(reader())
        encoder = await WebmEncoder.start(ws) if fmt_name == "webm" else None
        sent = 0
        while time.monotonic() < until:
            for part, index in parts:
                clock.speak(truth[index], sent / SAMPLE_RATE)
                for i in range(0, len(part), frame):
                    chunk = part[i : i + frame]
                    delay = started + sent / SAMPLE_RATE - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if encoder is None:
                        await ws.send(pcm16(chunk))
                    else:
                        await encoder.feed(pcm16(chunk))
                    sent += len(chunk)
                    tally.long_sent = sent / SAMPLE_RATE
                    if time.monotonic() >= until:
                        break
                if time.monotonic() >= until:
                    break
        if encoder is not None:
            await encoder.finish()
        eof_at[0] = time.monotonic()
        await ws.send(json.dumps({"type": "eof"}))
        await asyncio.wait_for(reading, 120)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class WebmEncoder:
    """A local ffmpeg turning pcm16 into WebM/Opus as it comes, forwarding its output to ``ws``."""

    def __init__(self, proc: asyncio.subprocess.Process, ws: Any) -> None:
        self._proc, self._ws = proc, ws
        self._forwarding = asyncio.create_task(self._forward())

    @classmethod
    async def start(cls, ws: Any) -> WebmEncoder:
        cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error",
               "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
               "-c:a", "libopus", "-b:a", "32k", "-f", "webm", "-cluster_time_limit", "250",
               "-flush_packets", "1", "pipe:1"]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        return cls(proc, ws)

    async def _forward(self) -> None:
        assert self._proc.stdout is not None
        while chunk := await self._proc.stdout.read(4096):
            await self._ws.send(chunk)

    async def feed(self, data: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(data)
        await self._proc.stdin.drain()

    async def finish(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        await self._forwarding
        await self._proc.wait()


async def short_sessions(
    url: str, until: float, t0: float, every: float, concurrency: int, tally: Tallies
) -> None:
    """A short WebM session every ``every`` seconds until ``until``; times eof -> final."""
    utts = librivox()
    encoded = [(encode_audio(a, "webm"), text) for a, text in utts]
    gate = asyncio.Semaphore(concurrency)
    rng = random.Random(1)

    async def one() -> None:
        data, reference = rng.choice(encoded)
        async with gate:
            try:
                async with websockets.connect(url, max_size=None) as ws:
                    await ws.recv()  # ready
                    for i in range(0, len(data), 4000):
                        await ws.send(data[i : i + 4000])
                    eof = time.monotonic()
                    await ws.send(json.dumps({"type": "eof"}))
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg["type"] == "final":
                            now = time.monotonic()
                            tally.short.append((now - t0, now - eof, word_error_rate(reference, msg["text"])))
                        elif msg["type"] == "error":
                            tally.errors.append(f"short: {msg['code']}: {msg['message']}")
            except (OSError, websockets.WebSocketException) as e:
                tally.errors.append(f"short: {type(e).__name__}: {e}")

    tasks: list[asyncio.Task[None]] = []
    next_at = time.monotonic()
    while next_at < until:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        tasks.append(asyncio.create_task(asyncio.wait_for(one(), 120)))
        next_at += every
    await asyncio.gather(*tasks, return_exceptions=True)


async def reporter(pid: int, until: float, t0: float, every: float, tally: Tallies, rows: list[Row]) -> None:
    headers = ["min", "RSS MiB", "long audio s", "commit latency med s", "max s", "updates",
               "short done", "eof→final med s", "eof→final max s", "errors"]  # fmt: skip
    print(table(headers, []), flush=True)
    last = 0.0
    while True:
        await asyncio.sleep(max(0.0, min(every, until - time.monotonic())))
        now = time.monotonic() - t0
        lats = [lat for at, lat in tally.long_latency if last <= at < now]
        updates = sum(1 for at in tally.long_updates if last <= at < now)
        finals = [took for at, took, _ in tally.short if last <= at < now]
        lat, fin = stats(lats), stats(finals)
        row = Row(now, rss_mib(pid), tally.long_sent, lat["median"], lat["max"], updates,
                  len(finals), fin["median"], fin["max"], len(tally.errors))  # fmt: skip
        rows.append(row)
        print(
            table(headers, [[f"{now / 60:.1f}", *list(asdict(row).values())[1:]]]).splitlines()[-1],
            flush=True,
        )
        last = now
        if time.monotonic() >= until:
            return


def plot(rows: list[Row], tally: Tallies, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    a.plot([r.at / 60 for r in rows], [r.rss_mib for r in rows], marker="o")
    a.set_ylabel("server RSS (MiB)")
    b.plot([at / 60 for at, _ in tally.long_latency], [lat for _, lat in tally.long_latency], ".", ms=2)
    b.set_ylabel("long: word end → committed (s)")
    c.plot([at / 60 for at, _, _ in tally.short], [took for _, took, _ in tally.short], ".")
    c.set_ylabel("short: eof → final (s)")
    c.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    folder = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}"
    print("timing the words of the utterances offline…", flush=True)
    truth = await asyncio.to_thread(truth_word_ends)
    # faulthandler: a hung server can be made to print every thread (kill -ABRT <pid>)
    server = _server.start(folder, timed=False, env={"PYTHONFAULTHANDLER": "1"})
    try:
        t0 = time.monotonic()
        until = t0 + args.minutes * 60
        tally, rows = Tallies(), list[Row]()
        rss_start = rss_mib(server.pid)
        await asyncio.gather(
            long_session(server.ws, args.format, truth, until, t0, tally),
            short_sessions(server.ws, until, t0, args.short_every, args.short_concurrency, tally),
            reporter(server.pid, until, t0, args.report_every, tally, rows),
        )
        rss_end = rss_mib(server.pid)
    finally:
        _server.stop(server)
    lats = [lat for _, lat in tally.long_latency]
    summary = {
        "minutes": args.minutes,
        "format": args.format,
        "machine": machine(),
        "rss_mib": {"start": rss_start, "end": rss_end, "max": max(r.rss_mib for r in rows)},
        "long": {
            "audio_sent": tally.long_sent,
            "updates": len(tally.long_updates),
            "words_committed": len(lats),
            "commit_latency": stats(lats),
            "commit_latency_first_minute": stats([lat for at, lat in tally.long_latency if at < 60]),
            "commit_latency_last_minute": stats(
                [lat for at, lat in tally.long_latency if at > args.minutes * 60 - 60]
            ),
            "final": tally.long_final,
        },
        "short": {
            "sessions": len(tally.short),
            "eof_to_final": stats([t for _, t, _ in tally.short]),
            "wer_mean": float(np.mean([w for _, _, w in tally.short])) if tally.short else None,
        },
        "errors": tally.errors,
        "rows": [asdict(r) for r in rows],
    }
    stamp = folder.name
    json_path = save_json(f"{stamp}.json", summary)
    png = plot(rows, tally, RESULTS / f"{stamp}.png")
    lat = stats(lats)
    print(
        f"\nlong session: {fmt(tally.long_sent, 1)} s of audio, {len(tally.long_updates)} updates, "
        f"{len(lats)} words committed, commit latency median {fmt(lat['median'])} s, "
        f"p90 {fmt(lat['p90'])} s, max {fmt(lat['max'])} s; final {tally.long_final}"
    )
    print(
        f"short sessions: {len(tally.short)}, eof→final {summary['short']['eof_to_final']}, "
        f"mean WER {fmt(summary['short']['wer_mean'])}"
    )
    rss = summary["rss_mib"]
    print(f"server RSS: {rss['start']:.0f} MiB at start, {rss['end']:.0f} at the end, {rss['max']:.0f} max")
    print(f"errors: {len(tally.errors)} {tally.errors[:5]}")
    print(f"saved {json_path}" + (f" and {png}" if png else " (no matplotlib: no plot)"))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help=f"how long (at most {MAX_MINUTES:g})")
    parser.add_argument(
        "--format", choices=["pcm16", "webm"], default="pcm16", help="the long session's audio"
    )
    parser.add_argument("--short-every", type=float, default=5.0, help="seconds between short sessions")
    parser.add_argument("--short-concurrency", type=int, default=2, help="short sessions at once, at most")
    parser.add_argument("--report-every", type=float, default=30.0, help="seconds between table rows")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be in (0, {MAX_MINUTES:g}]")
    if args.short_every <= 0 or args.short_concurrency < 1 or args.report_every <= 0:
        parser.error("--short-every and --report-every must be positive, --short-concurrency at least 1")
    summary = asyncio.run(soak(args))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
