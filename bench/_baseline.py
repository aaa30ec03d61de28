"""The seed's literal design, simulated in-process with the real model and real compute times.

The original server kept the whole session's audio and, for every received chunk, transcribed
the whole buffer again, sequentially in its receive loop: chunk *k* is read only once the
call for chunk *k-1* has returned, so when a call takes longer than a chunk's duration the
chunks queue up in the socket and every one of them still gets its own whole-buffer call.

Here chunks "arrive" on an audio clock at real-time pace (chunk *k*, covering audio up to
``(k+1) * slice``, arrives when that audio has been spoken, as from a live microphone); call
*k* starts at ``max(arrival k, end of call k-1)`` and lasts its measured compute time. No
sleeping is needed: the clock is advanced by measured times, so the figures are those of a
real-time run while the run itself only costs the compute.

Decoding: faster-whisper's ``transcribe()`` defaults, as the seed called it — beam 5, the
temperature fallback, the full 30 s encoder context, no word timestamps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from _common import SAMPLE_RATE

from wirescribe.asr.model import DecodeOptions, Transcriber

LITERAL_OPTIONS = DecodeOptions(language="en", beam_size=5, word_timestamps=False)


@dataclass(frozen=True)
class LiteralCall:
    chunk: int
    audio_end: float  # seconds of audio in the buffer it transcribed
    started: float  # on the audio clock
    finished: float
    compute: float
    text: str

    @property
    def lag(self) -> float:
        """How long after its newest audio was spoken this transcript was ready."""
        return self.finished - self.audio_end


@dataclass
class LiteralRun:
    stream_seconds: float
    chunks: int
    cap: float  # seconds after the end of the stream it was given to catch up
    calls: list[LiteralCall] = field(default_factory=list)
    final_text: str | None = None  # the whole-buffer transcript (what it would end with)
    final_compute: float | None = None

    @property
    def finished(self) -> bool:
        return len(self.calls) == self.chunks

    @property
    def backlog_chunks(self) -> int:
        return self.chunks - len(self.calls)

    @property
    def eof_to_final(self) -> float | None:
        """Seconds from eof (sent right after the last chunk) to the last chunk's transcript."""
        return self.calls[-1].finished - self.stream_seconds if self.finished else None

    @property
    def behind_at_eof(self) -> float:
        """Seconds of audio not yet transcribed when the stream ended."""
        done = [c.audio_end for c in self.calls if c.finished <= self.stream_seconds]
        return self.stream_seconds - (max(done) if done else 0.0)

    @property
    def last_text(self) -> str:
        return self.calls[-1].text if self.calls else ""


def simulate_literal(
    model: Transcriber,
    audio: np.ndarray,
    *,
    slice_seconds: float = 0.25,
    cap: float = 180.0,
    options: DecodeOptions = LITERAL_OPTIONS,
    progress: Callable[[LiteralCall], None] | None = None,
) -> LiteralRun:
    """One whole-buffer call per chunk, queued; stop starting calls ``cap`` s after the stream
    ended (the backlog left is reported). If it did not finish, one more call on the whole
    buffer gives the transcript it would eventually have sent."""
    step = int(slice_seconds * SAMPLE_RATE)
    chunks = math.ceil(len(audio) / step)
    run = LiteralRun(len(audio) / SAMPLE_RATE, chunks, cap)
    clock = 0.0
    for k in range(chunks):
        end = min(len(audio), (k + 1) * step)
        start = max(clock, end / SAMPLE_RATE)
        if start > run.stream_seconds + cap:
            break
        t = time.perf_counter()
        result = model.transcribe(audio[:end], options)
        took = time.perf_counter() - t
        clock = start + took
        call = LiteralCall(k, end / SAMPLE_RATE, start, clock, took, result.text)
        run.calls.append(call)
        if progress is not None:
            progress(call)
    if run.finished:
        run.final_text, run.final_compute = run.calls[-1].text, run.calls[-1].compute
    else:
        t = time.perf_counter()
        run.final_text = model.transcribe(audio, options).text
        run.final_compute = time.perf_counter() - t
    return run


def literal_cost_curve(
    model: Transcriber,
    audio: np.ndarray,
    *,
    upto: float = 90.0,
    step: float = 5.0,
    options: DecodeOptions = LITERAL_OPTIONS,
    progress: Callable[[float, float], None] | None = None,
) -> list[tuple[float, float]]:
    """Compute time of one literal update (whole buffer) at buffer lengths ``step, 2*step, …,
    upto`` seconds: (buffer seconds, compute seconds). The literal design makes one such call
    per 250 ms chunk, so it falls behind for good once a call takes longer than that."""
    out = []
    seconds = step
    while seconds <= min(upto, len(audio) / SAMPLE_RATE) + 1e-9:
        t = time.perf_counter()
        model.transcribe(audio[: int(seconds * SAMPLE_RATE)], options)
        took = time.perf_counter() - t
        out.append((seconds, took))
        if progress is not None:
            progress(seconds, took)
        seconds += step
    return out
