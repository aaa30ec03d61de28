"""Helpers of the decoder tests: bounded async runs, test tones, alignment, piecewise feeding.

Every async decode runs in ``asyncio.run`` under ``asyncio.wait_for``, so a decoder that hangs
fails its test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np

from wirescribe.audio import decode as audio_decode
from wirescribe.audio.decode import SAMPLE_RATE, FfmpegStreamDecoder, RawStreamDecoder

T = TypeVar("T")
Encoded = Callable[[str], bytes]
LIMIT = 20.0  # seconds any one decode may take before the test calls it a hang


def run(coro: Awaitable[T], timeout: float = LIMIT) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def tone(freq: float, seconds: float, rate: int = SAMPLE_RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(audio: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.argmax(spectrum) * rate / len(audio))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def aligned(out: np.ndarray, ref: np.ndarray, max_lag: int = 2400) -> tuple[int, float, float]:
    """(lag of ``out`` behind ``ref``, correlation, energy ratio) over the common span."""
    n = min(len(out) - max_lag, len(ref))
    assert n > SAMPLE_RATE, "too little decoded audio to compare"
    lag = max(range(max_lag), key=lambda k: float(np.dot(out[k : k + n], ref[:n])))
    a, b = out[lag : lag + n], ref[:n]
    return lag, float(np.corrcoef(a, b)[0, 1]), rms(a) / rms(b)


def split(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycled."""
    pieces, i, k = [], 0, 0
    while i < len(data):
        pieces.append(data[i : i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    return pieces


async def drain(decoder: audio_decode.StreamDecoder, pieces: Sequence[bytes]) -> np.ndarray:
    """Feed ``pieces`` while reading concurrently (as a session does), close, collect.

    An error from either side is raised; the decoder is always closed.
    """

    async def feeder() -> None:
        for piece in pieces:
            await decoder.feed(piece)
        await decoder.close()

    async def reader() -> list[np.ndarray]:
        return [block async for block in decoder]

    feeding, reading = asyncio.create_task(feeder()), asyncio.create_task(reader())
    try:
        _, blocks = await asyncio.gather(feeding, reading)
    finally:
        for task in (feeding, reading):
            task.cancel()
        await asyncio.gather(feeding, reading, return_exceptions=True)
        await decoder.aclose()
    for block in blocks:
        assert block.dtype == np.float32 and block.ndim == 1 and block.size
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def ffmpeg_decode(data: bytes, chunk: int | Sequence[int] = 4096) -> np.ndarray:
    async def go() -> np.ndarray:
        sizes = [chunk] if isinstance(chunk, int) else chunk
        return await drain(await FfmpegStreamDecoder.start(), split(data, sizes))

    return run(go())


def raw_decode(data: bytes, fmt: str, rate: int, chunk: int | Sequence[int] = 4096) -> np.ndarray:
    sizes = [chunk] if isinstance(chunk, int) else chunk
    return run(drain(RawStreamDecoder(fmt, rate), split(data, sizes)))


def random_sizes(total: int, pieces: int, seed: int) -> list[int]:
    """Sizes of ``pieces`` random pieces that add up to ``total``."""
    cuts = np.random.default_rng(seed).choice(np.arange(1, total), size=pieces - 1, replace=False)
    return np.diff([0, *sorted(cuts.tolist()), total]).tolist()


def gone(pid: int) -> bool:
    """True once ``pid`` has exited *and* been reaped (no zombie left behind)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
