"""Raw audio without ffmpeg: ``pcm16``/``f32`` little-endian and G.711 ``mulaw``/``alaw`` mono.

Telephony's 8-bit companded samples (what OpenAI Realtime's ``g711_ulaw``/``g711_alaw`` and
Deepgram's ``mulaw``/``alaw`` carry) go through a 256-entry table; every raw format is then
resampled here to 16 kHz (:class:`Resampler`, also used by the compat dialects). Output comes
out in the ``feed()`` call that brought its bytes: nothing is held back but the resampler's few
samples of filter history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np

from wirescribe.audio.types import SAMPLE_RATE, DecodeError

RAW_FORMATS = ("pcm16", "f32")
G711_FORMATS = ("mulaw", "alaw")  # one byte a sample, usually at 8 kHz: decoded by table lookup


def _g711_table(fmt: str) -> np.ndarray:
    """The 256 linear values (float32, full scale 1.0) of G.711 µ-law or A-law code bytes, as
    ITU-T G.711 defines them (the same values as the reference decoders, e.g. ``audioop``)."""
    codes = np.arange(256, dtype=np.int32)
    if fmt == "mulaw":
        u = ~codes & 0xFF  # transmitted inverted
        magnitude = ((((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)) - 0x84
        linear = np.where(u & 0x80, -magnitude, magnitude)
    else:
        a = codes ^ 0x55  # even bits transmitted inverted
        exponent, mantissa = (a >> 4) & 0x07, a & 0x0F
        shifted = ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
        magnitude = np.where(exponent == 0, (mantissa << 4) + 8, shifted)
        linear = np.where(a & 0x80, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


_G711_TABLES = {fmt: _g711_table(fmt) for fmt in G711_FORMATS}


def g711_to_float(data: bytes, fmt: str) -> np.ndarray:
    """G.711 ``mulaw``/``alaw`` bytes → float32 samples at their own rate."""
    return _G711_TABLES[fmt][np.frombuffer(data, dtype=np.uint8)]


class RawStreamDecoder:
    """Raw ``pcm16``/``f32`` little-endian mono, or G.711 ``mulaw``/``alaw`` mono: no ffmpeg;
    resampled to 16 kHz when needed."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        if fmt not in RAW_FORMATS + G711_FORMATS:
            raise ValueError(f"not a raw format: {fmt}")
        self._table = _G711_TABLES.get(fmt)
        self._dtype = np.dtype({"pcm16": "<i2", "f32": "<f4"}.get(fmt, "u1"))
        self._resampler = Resampler(sample_rate, SAMPLE_RATE)
        self._rest = b""
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._closed = False

    async def feed(self, data: bytes) -> None:
        if self._closed:
            return
        data = self._rest + data
        usable = len(data) // self._dtype.itemsize * self._dtype.itemsize
        self._rest = data[usable:]
        if not usable:
            return
        raw = np.frombuffer(data[:usable], dtype=self._dtype)
        if self._table is not None:
            samples = self._table[raw]
        else:
            samples = raw.astype(np.float32)
            if self._dtype.kind == "i":
                samples /= 32768.0
            elif not np.all(np.isfinite(samples)):
                raise DecodeError("f32 audio contains NaN or infinite samples")
        out = self._resampler.process(samples)
        if out.size:
            self._queue.put_nowait(out)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            tail = self._resampler.flush()
            if tail.size:
                self._queue.put_nowait(tail)
            self._queue.put_nowait(None)

    async def aclose(self) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while (block := await self._queue.get()) is not None:
            yield block


class Resampler:
    """Streaming resampler: windowed-sinc low-pass (when downsampling), then linear interpolation.

    Keeps a little history between calls so block boundaries leave no clicks or gaps.
    """

    _TAPS = 63

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._step = src_rate / dst_rate  # input samples per output sample
        self._pos = 0.0  # position of the next output sample, in input samples of _buf
        self._buf = np.zeros(0, dtype=np.float32)
        if src_rate > dst_rate:
            cutoff = 0.45 * dst_rate / src_rate  # cycles per input sample, a little under Nyquist
            n = np.arange(self._TAPS) - (self._TAPS - 1) / 2
            taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(self._TAPS)
            self._taps: np.ndarray | None = (taps / taps.sum()).astype(np.float32)
            self._hist = np.zeros(self._TAPS - 1, dtype=np.float32)
        else:
            self._taps = None

    def _filter(self, x: np.ndarray) -> np.ndarray:
        if self._taps is None:
            return x
        padded = np.concatenate([self._hist, x])
        self._hist = padded[-(self._TAPS - 1) :]
        return np.convolve(padded, self._taps, mode="valid").astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample one block; output length follows the running rate ratio."""
        if self.src_rate == self.dst_rate:
            return x.astype(np.float32, copy=False)
        self._buf = np.concatenate([self._buf, self._filter(x)])
        last = len(self._buf) - 1  # need samples on both sides of each output point
        if last < 1 or self._pos > last - 1:
            return np.zeros(0, dtype=np.float32)
        positions = np.arange(self._pos, last, self._step)
        out = np.interp(positions, np.arange(len(self._buf)), self._buf).astype(np.float32)
        self._pos = positions[-1] + self._step
        drop = int(self._pos) - 1 if self._pos >= 1 else 0
        self._buf = self._buf[drop:]
        self._pos -= drop
        return out

    def flush(self) -> np.ndarray:
        """Emit what is left (the filter's delay line included) at the end of the stream."""
        if self.src_rate == self.dst_rate:
            return np.zeros(0, dtype=np.float32)
        pad = np.zeros((self._TAPS // 2 if self._taps is not None else 0) + 2, dtype=np.float32)
        return self.process(pad)
