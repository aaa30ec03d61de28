"""Raw audio without ffmpeg: ``pcm16``/``f32`` little-endian and G.711 ``mulaw``/``alaw`` mono.

Telephony's 8-bit companded samples (what OpenAI Realtime's ``g711_ulaw``/``g711_alaw`` and
Deepgram's ``mulaw``/``alaw`` carry) go through a 256-entry table; every raw format at another
rate is then resampled here straight to 16 kHz (:class:`Resampler`, also used by the compat
dialects): 8 kHz µ-law is one table lookup and one resampling, never an intermediate rate.

The resampler is libsoxr's (python-soxr), band-limited: an 8 kHz phone call brought to 16 kHz
gets no mirror image of its 0–4 kHz band above 4 kHz (a linear interpolator leaves one only a
few dB down, which the model hears as a second, upside-down voice), and audio brought down from
44.1 or 48 kHz gets no alias. soxr works in blocks, so output can trail its input by up to
~115 ms at 8 kHz (~40 ms from 24 or 48 kHz): ``close()`` flushes the rest, a ``finalize``
drains it (:meth:`RawStreamDecoder.drain`), and where the stream is cut into frames never
changes the samples that come out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import soxr

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


class RawConverter:
    """Raw bytes of one format and rate → float32 samples at 16 kHz, synchronously: the raw
    decoder's work, and what a dialect uses to bring its client's audio to the session's rate
    itself. A sample split across calls waits for its other bytes."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        if fmt not in RAW_FORMATS + G711_FORMATS:
            raise ValueError(f"not a raw format: {fmt}")
        self._table = _G711_TABLES.get(fmt)
        self._dtype = np.dtype({"pcm16": "<i2", "f32": "<f4"}.get(fmt, "u1"))
        self._resampler = Resampler(sample_rate, SAMPLE_RATE)
        self._rest = b""

    def convert(self, data: bytes) -> np.ndarray:
        """The 16 kHz samples ready after ``data``; :class:`DecodeError` for NaN in ``f32``."""
        data = self._rest + data
        usable = len(data) // self._dtype.itemsize * self._dtype.itemsize
        self._rest = data[usable:]
        if not usable:
            return np.zeros(0, dtype=np.float32)
        raw = np.frombuffer(data[:usable], dtype=self._dtype)
        if self._table is not None:
            samples = self._table[raw]
        else:
            samples = raw.astype(np.float32)
            if self._dtype.kind == "i":
                samples /= 32768.0
            elif not np.all(np.isfinite(samples)):
                raise DecodeError("f32 audio contains NaN or infinite samples")
        return self._resampler.process(samples)

    def drain(self) -> np.ndarray:
        """The samples the resampler holds back, now; the stream goes on (:meth:`Resampler.drain`)."""
        return self._resampler.drain()

    def flush(self) -> np.ndarray:
        """The samples the resampler still holds, at the end of the stream."""
        return self._resampler.flush()


class RawStreamDecoder:
    """Raw ``pcm16``/``f32`` little-endian mono, or G.711 ``mulaw``/``alaw`` mono: no ffmpeg;
    resampled to 16 kHz when needed."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self._converter = RawConverter(fmt, sample_rate)
        self._queue: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._closed = False

    async def feed(self, data: bytes) -> None:
        if self._closed:
            return
        out = self._converter.convert(data)
        if out.size:
            self._queue.put_nowait(out)

    def drain(self) -> None:
        """Decode now what the resampler holds back, for a ``finalize`` that must hear it all."""
        out = self._converter.drain() if not self._closed else np.zeros(0, np.float32)
        if out.size:
            self._queue.put_nowait(out)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            tail = self._converter.flush()
            if tail.size:
                self._queue.put_nowait(tail)
            self._queue.put_nowait(None)

    async def aclose(self) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        while (block := await self._queue.get()) is not None:
            yield block


class Resampler:
    """Streaming band-limited resampler: libsoxr's ``HQ`` recipe (flat to 91 % of the lower
    rate's Nyquist frequency, images and aliases over 100 dB down).

    Stateful: a stream cut into blocks anywhere gives exactly the samples of one call over all
    of it, timed from its first sample (soxr compensates its filter's delay). A call may return
    fewer samples than its input makes — soxr holds back what it has not yet processed, one
    block at most — and :meth:`flush` returns the rest at the end of the stream.
    """

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._stream = self._new_stream()

    def _new_stream(self) -> soxr.ResampleStream | None:
        if self.src_rate == self.dst_rate:
            return None
        return soxr.ResampleStream(self.src_rate, self.dst_rate, 1, dtype="float32", quality="HQ")

    def process(self, x: np.ndarray) -> np.ndarray:
        """Resample one block; returns what soxr has ready (float32)."""
        if self.src_rate == self.dst_rate:
            return x.astype(np.float32, copy=False)
        if self._stream is None:  # flushed: the stream has ended
            return np.zeros(0, dtype=np.float32)
        return self._stream.resample_chunk(np.ascontiguousarray(x, dtype=np.float32))

    def drain(self) -> np.ndarray:
        """Everything held back, now — at a commit (a client's ``finalize``), whose audio must
        all be heard — and the stream goes on from a fresh filter: the samples either side of
        this point lose a few milliseconds of each other's filter context, nothing moves in time."""
        tail = self.flush()
        self._stream = self._new_stream()
        return tail

    def flush(self) -> np.ndarray:
        """Emit what is left at the end of the stream; after it the resampler takes nothing more."""
        stream, self._stream = self._stream, None
        if stream is None:
            return np.zeros(0, dtype=np.float32)
        return stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
