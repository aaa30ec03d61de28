"""Stream a speech file through this server's OpenAI Realtime and Deepgram endpoints with the
vendors' own Python clients (``pip install openai deepgram-sdk``), printing what each sends.

    python examples/voice_agents.py talk.wav                       # server on 127.0.0.1:8000
    python examples/voice_agents.py talk.wav --server http://HOST:8000 --token "$STT_TOKEN"

The only thing that differs from using OpenAI's or Deepgram's service is where the clients
point: ``base_url`` for ``openai``, ``environment`` for ``deepgram-sdk`` (LiveKit Agents and
Pipecat take the same base URLs: see the README).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import time
from collections.abc import AsyncIterator

CHUNK = 0.1  # seconds of audio per message, sent at real-time pace


def pcm16(path: str, rate: int) -> bytes:
    """Any audio file → mono PCM16 at ``rate`` (ffmpeg; ``imageio-ffmpeg``'s when installed)."""
    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        ffmpeg = "ffmpeg"
    cmd = [
        ffmpeg,
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        path,
        "-ac",
        "1",
        "-ar",
        str(rate),
        "-f",
        "s16le",
        "-",
    ]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


async def paced(pieces: list[bytes]) -> AsyncIterator[bytes]:
    start = time.monotonic()
    for i, piece in enumerate(pieces):
        await asyncio.sleep(max(0.0, start + (i + 1) * CHUNK - time.monotonic()))
        yield piece


async def openai_realtime(server: str, token: str, path: str) -> None:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{server}/v1", api_key=token)
    audio = pcm16(path, 24000)
    pieces = [audio[i : i + 4800] for i in range(0, len(audio), 4800)]
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(
            session={
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                    }
                },
            }
        )

        async def send() -> None:
            async for piece in paced(pieces):
                await conn.input_audio_buffer.append(audio=base64.b64encode(piece).decode())
            await conn.input_audio_buffer.commit()

        sender = asyncio.create_task(send())
        async for event in conn:
            if event.type == "conversation.item.input_audio_transcription.delta":
                print(f"openai  delta     {event.delta!r}")
            elif event.type == "conversation.item.input_audio_transcription.completed":
                print(f"openai  completed {event.transcript!r}")
                if sender.done():
                    break  # the commit's answer comes last
            elif event.type == "error":
                print(f"openai  error     {event.error.message}")


async def deepgram_live(server: str, token: str, path: str) -> None:
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    ws = "ws" + server.removeprefix("http")
    env = DeepgramClientEnvironment(base=server, production=ws, agent=ws, agent_rest=server)
    client = AsyncDeepgramClient(api_key=token, environment=env)
    audio = pcm16(path, 16000)
    pieces = [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
    async with client.listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000, channels=1, language="en", punctuate=True,
        interim_results=True, endpointing=500, utterance_end_ms=1000, vad_events=True,
    ) as conn:  # fmt: skip

        async def send() -> None:
            async for piece in paced(pieces):
                await conn.send_media(piece)
            await conn.send_close_stream()

        sender = asyncio.create_task(send())
        async for message in conn:
            kind = getattr(message, "type", "")
            if kind == "Results":
                alt = message.channel.alternatives[0]
                label = "final  " if message.is_final else "interim"
                end = "  (speech_final)" if message.speech_final else ""
                if alt.transcript or end:
                    print(f"deepgram {label} {alt.transcript!r}{end}")
            elif kind in ("SpeechStarted", "UtteranceEnd", "Metadata", "Error"):
                print(f"deepgram {kind}")
        await sender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--token", default="unused", help="the server's STT_TOKEN, when it has one")
    args = parser.parse_args()
    asyncio.run(openai_realtime(args.server, args.token, args.file))
    asyncio.run(deepgram_live(args.server, args.token, args.file))


if __name__ == "__main__":
    main()
