"""Latency of the OpenAI Realtime and Deepgram adapters against the native protocol, same run.

One server; the same speech (LibriVox utterances with 1 s pauses) streamed in real time as raw
PCM16 in 100 ms chunks, one session at a time, the three protocols interleaved round by round:

* native ``/ws/transcribe?format=pcm16`` over a plain WebSocket;
* ``/v1/realtime`` through the official ``openai`` client (PCM16 at 24 kHz, server VAD);
* ``/v1/listen`` through the official ``deepgram-sdk`` client (linear16 at 16 kHz, interim results).

For every word: **first-word latency**, from its end in the audio (offline word times, as in
``stream_bench.py``) to the first message that shows it (native ``text``; Deepgram's interim or
final results; OpenAI's deltas, which carry committed text only), and **committed-word latency**,
to the first message that commits it (native ``committed``, Deepgram ``is_final``, OpenAI deltas).
The adapters' overhead is their median minus the native one; the target is under 50 ms.

    flock /tmp/bench.lock python bench/compat_bench.py                 # 3 rounds of ~20 s
    flock /tmp/bench.lock python bench/compat_bench.py --rounds 1 --seconds 10   # smoke

Prints a markdown table; writes bench/results/compat_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from _common import (
    build_speech,
    commit_latencies,
    first_seen_latencies,
    machine,
    save_json,
    speech_truth,
    stats,
    table,
)

from tests.support.compat_clients import SdkRun, Timed, chunks, deepgram_live, openai_realtime, to_pcm16
from wirescribe.asr.model import ModelConfig, Transcriber
from wirescribe.devserver import start_server, stop_server
from wirescribe.wer import word_error_rate

CHUNK = 0.1
PROTOCOLS = ("native", "openai", "deepgram")


async def native(ws_base: str, audio: np.ndarray) -> SdkRun:
    """The native protocol, paced exactly as the SDK runners pace theirs."""
    run = SdkRun()
    pcm = to_pcm16(audio)
    async with websockets.connect(f"{ws_base}/ws/transcribe?format=pcm16&sample_rate=16000") as ws:
        await ws.recv()  # ready
        t0 = time.monotonic()

        async def receive() -> None:
            async for raw in ws:
                run.messages.append(Timed(time.monotonic() - t0, json.loads(raw)))

        receiver = asyncio.create_task(receive())
        for i, piece in enumerate(chunks(pcm, 32000, CHUNK)):
            await asyncio.sleep(max(0.0, t0 + (i + 1) * CHUNK - time.monotonic()))
            await ws.send(piece)
        run.sent_seconds = time.monotonic() - t0
        await ws.send(json.dumps({"type": "eof"}))
        await asyncio.wait_for(receiver, 120)
    return run


def outputs(protocol: str, run: SdkRun) -> tuple[list[tuple[float, str]], list[tuple[float, str]], str]:
    """(committed text over time, shown text over time, final text) of one run."""
    committed: list[tuple[float, str]] = []
    shown: list[tuple[float, str]] = []
    final = ""
    acc = ""
    item = ""
    for t in run.messages:
        m = t.message
        if protocol == "native":
            if m["type"] == "transcript":
                committed.append((t.at, m["committed"]))
                shown.append((t.at, m["text"]))
            elif m["type"] == "final":
                final = m["text"]
        elif protocol == "openai":
            if m["type"] == "conversation.item.input_audio_transcription.delta":
                acc += m["delta"] if m["item_id"] == item else " " + m["delta"]  # a turn's first is stripped
                item = m["item_id"]
                committed.append((t.at, acc))
                shown.append((t.at, acc))
            final = acc
        elif m["type"] == "Results":
            text = m["channel"]["alternatives"][0]["transcript"]
            if m["is_final"]:
                acc = f"{acc} {text}".strip() if text else acc
                committed.append((t.at, acc))
                shown.append((t.at, acc))
            else:
                shown.append((t.at, f"{acc} {text}".strip()))
            final = acc
    return committed, shown, final


async def one(protocol: str, http: str, audio: np.ndarray) -> SdkRun:
    if protocol == "native":
        return await native("ws" + http.removeprefix("http"), audio)
    if protocol == "openai":
        return await openai_realtime(http, audio, chunk_seconds=CHUNK, settle=2.0)
    return await deepgram_live(
        http, audio, chunk_seconds=CHUNK, interim_results=True, punctuate=True, endpointing=800,
        utterance_end_ms=1000, vad_events=True, language="en",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0, help="speech per session (whole utterances)")
    parser.add_argument("--app", default="server:app", help="the ASGI app uvicorn serves")
    args = parser.parse_args()

    speech = build_speech(args.seconds)
    print(
        f"speech: {speech.seconds:.1f} s, {speech.utterances} utterances; loading the truth clock…",
        flush=True,
    )
    truth, _ = speech_truth(Transcriber.load(ModelConfig()), speech)
    log = Path(tempfile.mkdtemp()) / "server.log"
    server = start_server(log, app=args.app.split(), env={"STT_MAX_SESSIONS_PER_CLIENT": "0"})
    per: dict[str, dict[str, list[float]]] = {p: {"first": [], "commit": [], "wer": []} for p in PROTOCOLS}
    try:
        for r in range(args.rounds):
            order = PROTOCOLS[r % 3 :] + PROTOCOLS[: r % 3]  # each protocol goes first once per 3 rounds
            for protocol in order:
                run = asyncio.run(one(protocol, server.http, speech.audio))
                committed, shown, final = outputs(protocol, run)
                per[protocol]["commit"] += commit_latencies(truth, committed)
                per[protocol]["first"] += first_seen_latencies(truth, shown)
                per[protocol]["wer"].append(word_error_rate(speech.reference, final))
                print(f"round {r + 1} {protocol}: WER {per[protocol]['wer'][-1]:.3f}", flush=True)
    finally:
        stop_server(server)

    base = {k: stats(per["native"][k])["median"] for k in ("first", "commit")}
    rows: list[list[Any]] = []
    for p in PROTOCOLS:
        first, commit = stats(per[p]["first"]), stats(per[p]["commit"])
        over_first = None if p == "native" else 1000 * (first["median"] - base["first"])  # type: ignore[operator]
        over_commit = None if p == "native" else 1000 * (commit["median"] - base["commit"])  # type: ignore[operator]
        rows.append([p, first["median"], first["p90"], commit["median"], commit["p90"], commit["n"],
                     over_first, over_commit, float(np.mean(per[p]["wer"]))])  # fmt: skip
    print()
    print(table(["protocol", "first-word median s", "first p90 s", "committed median s", "committed p90 s",
                 "words", "first overhead ms", "committed overhead ms", "WER"], rows))  # fmt: skip
    save_json("compat_bench.json", {"machine": machine(), "args": vars(args), "rows": rows,
                                    "latencies": per})  # fmt: skip


if __name__ == "__main__":
    main()
