"""A reference client for ``/ws/transcribe``: stream audio bytes, collect the server's messages.

Used by ``cli.py stream``, ``test_transcription.py``, the tests and the benchmarks, so every
one of them speaks the protocol the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed

from wirescribe.audio.decode import SAMPLE_RATE, encode_audio
from wirescribe.audio.webm import time_slices


class ClientError(Exception):
    """The server could not be reached or broke the protocol."""


@dataclass
class Received:
    message: dict[str, Any]
    at: float  # seconds since streaming started


@dataclass
class StreamResult:
    messages: list[Received] = field(default_factory=list)
    close_code: int | None = None
    eof_at: float | None = None  # seconds since start when eof was sent

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r.message for r in self.messages if r.message.get("type") == kind]

    @property
    def final(self) -> dict[str, Any] | None:
        finals = self.of_type("final")
        return finals[-1] if finals else None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.of_type("error")


def webm_slices(audio: np.ndarray, slice_seconds: float = 0.25) -> list[bytes]:
    """16 kHz float32 audio as WebM/Opus cut into ``slice_seconds`` of audio each, by the
    blocks' timestamps (as MediaRecorder does), not by byte share: Opus is variable-bitrate."""
    return time_slices(encode_audio(audio, "webm"), slice_seconds)


def pcm16_slices(audio: np.ndarray, slice_seconds: float = 0.02) -> list[bytes]:
    """16 kHz float32 audio as raw pcm16 frames of ``slice_seconds``."""
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = int(SAMPLE_RATE * slice_seconds) * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


async def stream(
    url: str,
    chunks: Sequence[bytes | str],
    *,
    interval: float | None = 0.25,
    send_eof: bool = True,
    on_message: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 120.0,
    headers: dict[str, str] | None = None,
) -> StreamResult:
    """Send ``chunks`` (audio paced ``interval`` seconds apart; None: as fast as possible), then
    ``eof``; collect every message until the server closes. A ``str`` chunk is a control
    message (``finalize``, ``configure``, ...): sent as a text frame at once, taking no slot of
    the audio's pace."""
    result = StreamResult()
    start = time.perf_counter()
    try:
        ws = await asyncio.wait_for(
            websockets.connect(url, max_size=None, additional_headers=headers), timeout=10
        )
    except websockets.InvalidStatus as e:
        raise ClientError(f"the server refused the connection: HTTP {e.response.status_code}") from e
    except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake) as e:
        raise ClientError(f"no server at {url} ({e})") from e

    async def reader() -> None:
        try:
            async for raw in ws:
                msg = json.loads(raw)
                result.messages.append(Received(msg, time.perf_counter() - start))
                if on_message is not None:
                    on_message(msg)
        except ConnectionClosed:
            pass

    async with ws:
        reading = asyncio.create_task(reader())
        try:
            i = 0
            for chunk in chunks:
                if isinstance(chunk, str):
                    await ws.send(chunk)
                    continue
                if interval:
                    delay = start + i * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                i += 1
                if chunk:  # an empty time slice: nothing was recorded in it
                    await ws.send(chunk)
            if send_eof:
                await ws.send(json.dumps({"type": "eof"}))
                result.eof_at = time.perf_counter() - start
        except ConnectionClosed:
            pass  # the server ended the session early: its reason is in the messages
        try:
            await asyncio.wait_for(reading, timeout)
        except asyncio.TimeoutError as e:
            raise ClientError(f"no reply from the server within {timeout:g} s") from e
    result.close_code = ws.close_code
    return result
