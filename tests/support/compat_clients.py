"""The official clients of other vendors' live protocols, pointed at this server: the ``openai``
package's Realtime client (``/v1/realtime``) and ``deepgram-sdk``'s live client (``/v1/listen``).

Each runner streams 16 kHz float32 speech at real-time pace (a chunk is sent once its audio has
been "spoken", as from a microphone) and returns every server message with its arrival time on
the audio clock (seconds since the first chunk was sent). The end-to-end tests and
``bench/compat_bench.py`` share them.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Timed:
    at: float  # seconds on the audio clock
    message: dict[str, Any]


@dataclass
class SdkRun:
    messages: list[Timed] = field(default_factory=list)
    close_code: int | None = None
    sent_seconds: float = 0.0  # audio clock when the last chunk went out

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [t.message for t in self.messages if t.message.get("type") == kind]


def to_pcm16(audio: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16 kHz float32 → little-endian pcm16 at ``rate`` (linear interpolation)."""
    if rate != SAMPLE_RATE:
        n = int(len(audio) * rate / SAMPLE_RATE)
        audio = np.interp(np.arange(n) * SAMPLE_RATE / rate, np.arange(len(audio)), audio).astype(np.float32)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def chunks(data: bytes, bytes_per_second: int, seconds: float) -> list[bytes]:
    step = int(bytes_per_second * seconds) // 2 * 2
    return [data[i : i + step] for i in range(0, len(data), step)]


async def openai_realtime(
    http_base: str,
    audio: np.ndarray,
    *,
    api_key: str = "unused",
    chunk_seconds: float = 0.1,
    realtime: bool = True,
    turn_detection: dict[str, Any] | None = None,
    commit_at_end: bool = True,
    settle: float = 3.0,
    timeout: float = 180.0,
) -> SdkRun:
    """The official ``openai`` client's GA Realtime connection (``client.realtime.connect``) with
    ``intent=transcription``: ``session.update`` (PCM16 at 24 kHz, server VAD unless
    ``turn_detection`` says otherwise), the audio as ``input_audio_buffer.append`` events, then a
    commit; collects events until none came for ``settle`` seconds after the commit."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{http_base}/v1", api_key=api_key)
    run = SdkRun()
    pcm = to_pcm16(audio, 24000)
    turn = (
        turn_detection if turn_detection is not None else {"type": "server_vad", "silence_duration_ms": 500}
    )
    async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
        t0 = time.monotonic()
        last = asyncio.Event()

        async def receive() -> None:
            async for event in conn:
                run.messages.append(Timed(time.monotonic() - t0, event.to_dict()))
                last.set()

        receiver = asyncio.create_task(receive())
        try:
            session: Any = {
                "type": "transcription",
                "audio": {"input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
                    "turn_detection": turn if turn else None,
                }},
            }  # fmt: skip
            await conn.session.update(session=session)
            t0 = time.monotonic()
            for i, piece in enumerate(chunks(pcm, 48000, chunk_seconds)):
                if realtime:
                    await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_seconds - time.monotonic()))
                await conn.input_audio_buffer.append(audio=base64.b64encode(piece).decode())
            run.sent_seconds = time.monotonic() - t0
            if commit_at_end:
                await conn.input_audio_buffer.commit()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not receiver.done():
                last.clear()
                try:
                    await asyncio.wait_for(last.wait(), settle)
                except asyncio.TimeoutError:
                    break
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
    return run


async def deepgram_live(
    http_base: str,
    audio: np.ndarray,
    *,
    api_key: str = "unused",
    chunk_seconds: float = 0.1,
    realtime: bool = True,
    timeout: float = 180.0,
    **options: Any,
) -> SdkRun:
    """The official ``deepgram-sdk`` live client (``AsyncDeepgramClient.listen.v1.connect``),
    its environment pointed at this server: linear16 at 16 kHz with ``options`` as query
    parameters, then ``CloseStream``; collects every message until the server closes."""
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    ws_base = "ws" + http_base.removeprefix("http")
    env = DeepgramClientEnvironment(base=http_base, production=ws_base, agent=ws_base, agent_rest=http_base)
    client = AsyncDeepgramClient(api_key=api_key, environment=env)
    run = SdkRun()
    pcm = to_pcm16(audio)
    query = {"model": "nova-3", "encoding": "linear16", "sample_rate": 16000, "channels": 1, **options}
    async with client.listen.v1.connect(**query) as conn:
        t0 = time.monotonic()

        async def receive() -> None:
            async for message in conn:
                if not isinstance(message, bytes):
                    data = message.model_dump() if hasattr(message, "model_dump") else dict(message)
                    run.messages.append(Timed(time.monotonic() - t0, data))

        receiver = asyncio.create_task(receive())
        for i, piece in enumerate(chunks(pcm, 32000, chunk_seconds)):
            if realtime:
                await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_seconds - time.monotonic()))
            await conn.send_media(piece)
        run.sent_seconds = time.monotonic() - t0
        await conn.send_close_stream()
        await asyncio.wait_for(receiver, timeout)  # ends when the server closes (1000: no error)
        run.close_code = conn._websocket.close_code  # the SDK keeps the socket here
    return run
