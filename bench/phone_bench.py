"""Phone audio against wideband, in one run: the WER of the same real speech as a telephony bridge
forwards it (G.711 µ-law at 8 kHz, 20 ms frames) and as 16 kHz linear PCM.

The speech: the project's five LibriVox utterances joined with 1 s pauses (~30 s). Its phone
version is made by ffmpeg (its own resampler to 8 kHz, its own µ-law encoder), not by the
server's code. Each stream is sent at real-time pace in 20 ms frames, one session at a time,
to one real server (``uvicorn server:app``):

* ``/v1/listen`` (Deepgram's protocol): ``encoding=linear16&sample_rate=16000``, and
  ``encoding=mulaw&sample_rate=8000``; the transcript is the ``is_final`` results joined;
* ``/v1/realtime`` (OpenAI's, beta shape): ``input_audio_format: g711_ulaw``, and the default
  ``pcm16`` at 24 kHz (the wideband speech brought to 24 kHz by soxr, as a client would); server
  VAD; the transcript is the turns' ``…transcription.completed`` joined.

Also the offline WER of the same audio (the model on each whole utterance, beam 5), wideband and
the phone version decoded to 16 kHz: what the phone band costs the model by itself.

    flock /tmp/bench.lock python bench/phone_bench.py            # ~2.5 min
    flock /tmp/bench.lock python bench/phone_bench.py --rounds 3 # for a figure: see below
    flock /tmp/bench.lock python bench/phone_bench.py --streams listen-mulaw-8k realtime-g711-8k

The reference is 71 words, so one word is 1.4 points of WER, and one streamed session of each
differs from the next by more than the phone band does (live decoding on a shared machine):
a figure to compare paths wants several rounds.

Prints a markdown table; writes bench/results/phone_bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
import websockets
from _common import Speech, build_speech, machine, save_json, speech_truth, table

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.audio.decode import SAMPLE_RATE, find_ffmpeg
from wirescribe.audio.raw import RawConverter
from wirescribe.devserver import start_server, stop_server
from wirescribe.wer import word_error_rate

FRAME = 0.02  # seconds per frame, as RTP carries a phone call
SETTLE = 3.0  # seconds without a message after the end before an OpenAI session is done


def to_mulaw_8k(audio: np.ndarray) -> bytes:
    """16 kHz float32 → G.711 µ-law at 8 kHz, by ffmpeg (resampler and encoder not the server's)."""
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ac", "1",
           "-ar", str(SAMPLE_RATE), "-i", "pipe:0", "-ar", "8000", "-f", "mulaw", "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=True).stdout


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Stream:
    name: str
    path: str  # "listen" or "realtime"
    fmt: str  # the wire format, for the table
    rate: int
    data: bytes  # the whole stream in its wire format
    bytes_per_second: int

    def frames(self) -> list[bytes]:
        step = int(self.bytes_per_second * FRAME)
        return [self.data[i : i + step] for i in range(0, len(self.data), step)]


def streams(audio: np.ndarray) -> dict[str, Stream]:
    mulaw = to_mulaw_8k(audio)
    at24k = soxr.resample(audio, SAMPLE_RATE, 24000, quality="HQ")
    every = [
        Stream("listen-linear16-16k", "listen", "linear16", 16000, to_pcm16(audio), 32000),
        Stream("listen-mulaw-8k", "listen", "mulaw", 8000, mulaw, 8000),
        Stream("realtime-pcm16-24k", "realtime", "pcm16", 24000, to_pcm16(at24k), 48000),
        Stream("realtime-g711-8k", "realtime", "g711_ulaw", 8000, mulaw, 8000),
    ]
    return {stream.name: stream for stream in every}


async def paced(frames: Sequence[bytes], send: Callable[[bytes], Any]) -> None:
    """Send each frame once its audio has been "spoken" (real time, as a call forwards it)."""
    t0 = time.monotonic()
    for i, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, t0 + (i + 1) * FRAME - time.monotonic()))
        await send(frame)


async def listen(ws_base: str, stream: Stream) -> str:
    """Deepgram's protocol: the frames, then CloseStream; the ``is_final`` transcripts joined."""
    query = f"encoding={stream.fmt}&sample_rate={stream.rate}&channels=1&punctuate=true&language=en"
    finals: list[str] = []
    async with websockets.connect(f"{ws_base}/v1/listen?{query}", max_size=None) as ws:

        async def receive() -> None:
            async for raw in ws:
                m = json.loads(raw)
                if m.get("type") == "Results" and m.get("is_final"):
                    finals.append(m["channel"]["alternatives"][0]["transcript"])

        receiver = asyncio.create_task(receive())
        await paced(stream.frames(), ws.send)
        await ws.send(json.dumps({"type": "CloseStream"}))
        await asyncio.wait_for(receiver, 120)  # the server closes after the final results
    return " ".join(t for t in finals if t)


async def realtime(ws_base: str, stream: Stream) -> str:
    """OpenAI's protocol (beta shape, as telephony bridges send it): the format, server VAD,
    the frames as appends, a commit; the turns' completed transcripts joined."""
    headers = {"OpenAI-Beta": "realtime=v1"}
    turns: list[str] = []
    async with websockets.connect(
        f"{ws_base}/v1/realtime?intent=transcription", additional_headers=headers, max_size=None
    ) as ws:
        seen = asyncio.Event()

        async def receive() -> None:
            async for raw in ws:
                m = json.loads(raw)
                seen.set()
                if m["type"] == "error":
                    raise RuntimeError(m["error"]["message"])
                if m["type"] == "conversation.item.input_audio_transcription.completed":
                    turns.append(m["transcript"])

        receiver = asyncio.create_task(receive())
        session = {
            "input_audio_format": stream.fmt,
            "input_audio_transcription": {"model": "gpt-4o-transcribe", "language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        }
        await ws.send(json.dumps({"type": "transcription_session.update", "session": session}))

        async def append(frame: bytes) -> None:
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()})
            )

        await paced(stream.frames(), append)
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        while not receiver.done():
            seen.clear()
            try:
                await asyncio.wait_for(seen.wait(), SETTLE)
            except asyncio.TimeoutError:
                break
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    return " ".join(t for t in turns if t)


def offline_text(model: Transcriber, audio: np.ndarray, speech: Speech) -> str:
    """The model on each whole utterance of ``audio`` (16 kHz, placed as in ``speech``), beam 5."""
    options = DecodeOptions(language="en", beam_size=5)
    return " ".join(model.transcribe(audio[a:b], options).text.strip() for a, b, _ in speech.placed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", nargs="*", help="which streams (default: all four)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="sessions per stream, the streams' order rotated each round"
    )
    args = parser.parse_args()

    speech = build_speech(repeats=1, pause=1.0)
    every = streams(speech.audio)
    chosen = [every[name] for name in (args.streams or every)]
    print(f"speech: {speech.seconds:.1f} s, {speech.utterances} utterances", flush=True)

    model = Transcriber.load(ModelConfig())
    _, offline_wide = speech_truth(model, speech)
    phone = RawConverter("mulaw", 8000)
    phone_16k = np.concatenate([phone.convert(every["listen-mulaw-8k"].data), phone.flush()])
    offline_phone = offline_text(model, phone_16k, speech)
    del model

    server = start_server(Path(tempfile.mkdtemp()) / "server.log", env={"STT_MAX_SESSIONS_PER_CLIENT": "0"})
    texts: dict[str, list[str]] = {stream.name: [] for stream in chosen}
    try:
        ws_base = f"ws://127.0.0.1:{server.port}"
        for r in range(args.rounds):
            for stream in chosen[r % len(chosen) :] + chosen[: r % len(chosen)]:
                run = listen if stream.path == "listen" else realtime
                texts[stream.name].append(asyncio.run(run(ws_base, stream)))
                wer = word_error_rate(speech.reference, texts[stream.name][-1])
                print(f"round {r + 1} {stream.name}: WER {wer:.3f}", flush=True)
    finally:
        stop_server(server)

    wers = {
        name: float(np.mean([word_error_rate(speech.reference, t) for t in ts])) for name, ts in texts.items()
    }
    base = wers.get("listen-linear16-16k")
    offline = [("16 kHz float", offline_wide), ("µ-law 8 kHz → 16 kHz", offline_phone)]
    rows: list[list[Any]] = [
        ["offline (beam 5)", audio, "—", 100 * word_error_rate(speech.reference, text), None]
        for audio, text in offline
    ]
    for stream in chosen:
        versus = None if base is None else 100 * (wers[stream.name] - base)
        rows.append([f"/v1/{stream.path}", f"{stream.fmt} {stream.rate // 1000} kHz", f"{FRAME * 1000:g} ms",
                     100 * wers[stream.name], versus])  # fmt: skip
    print()
    print(f"{len(speech.reference.split())} words; streamed WER: mean of {args.rounds} session(s) per stream")
    print(table(["path", "audio", "frames", "WER %", "vs /v1/listen linear16 (points)"], rows))
    save_json("phone_bench.json", {
        "machine": machine(), "rounds": args.rounds, "seconds": speech.seconds, "reference": speech.reference,
        "offline": {"wideband": offline_wide, "phone": offline_phone}, "texts": texts, "rows": rows,
    })  # fmt: skip


if __name__ == "__main__":
    main()
