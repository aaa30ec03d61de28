"""How long decoded audio takes to come out of the live decoder after its bytes went in.

    .venv/bin/python bench/decoder_latency.py                      # every variant below
    .venv/bin/python bench/decoder_latency.py --variant webm-silence --trace

``--turns`` utterances with a quiet stretch between each two (``--gap`` seconds of digital
silence or of -60 dBFS white noise), encoded the way clients send it, cut into ``--slice``
seconds of audio each and fed at real-time pace into the decoder a live session opens
(:func:`wirescribe.audio.decode.open_decoder`) while a reader collects its output, as the
session does:

* ``webm-*``: libopus in WebM, 20 ms frames (:func:`wirescribe.client.webm_slices`: what the
  benchmarks and MediaRecorder send), cut by block time;
* ``webm-dtx-*``: the same with Opus DTX on, as WebRTC stacks send it: in silence a frame only
  every 400 ms, the packets between left out (libopus marks them 1-2 bytes long; ffmpeg's
  muxer would keep them, so they are dropped here): the block timestamps jump;
* ``ogg-*``: Ogg/Opus, one page per packet, cut by the pages' granule positions;
* ``pcm16-*``: raw 16-bit PCM (no ffmpeg), the reference.

For every slice the delay is the wall time from feeding it until the decoder's output covers
the audio it carried (within one 20 ms frame), so 0 means "out at once" and 0.25 means "only
once the next slice pushed it through"; inf: not out before eof. The first slice is shown apart
(ffmpeg waits for 2 KiB to recognise the container), "rest" is every later slice, "quiet" the
slices whose audio is all quiet stretch. Figures depend little on the machine: the decoder
does almost no work, the pace is the sender's.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wirescribe.audio.decode import SAMPLE_RATE, decode_file, find_ffmpeg, open_decoder  # noqa: E402
from wirescribe.audio.webm import time_slices  # noqa: E402
from wirescribe.client import pcm16_slices, webm_slices  # noqa: E402

DATA = ROOT / "tests" / "data" / "librivox"
FRAME = 0.02  # one Opus frame: output within this of the slice's end counts as complete
OPUS = ["-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20"]
DTX = ["-dtx", "1", "-bsf:a", r"noise=drop=lt(size\,3)"]  # leave out what libopus marks as DTX
OGG_PAGES = ["-page_duration", "20000"]  # one page per packet, as a live Ogg sender flushes them
VARIANTS = ("webm-silence", "webm-noise", "webm-dtx-silence", "ogg-silence", "ogg-noise", "pcm16-silence")


@dataclass(frozen=True)
class Stream:
    """What the sender sends: ``slices[i]`` carries the audio up to ``ends[i]`` seconds."""

    fmt: str  # the session's declared format: "pcm16" or a container for ffmpeg
    slices: list[bytes]
    ends: list[float]
    quiet: list[tuple[float, float]]  # the quiet stretches, in seconds of the stream


@dataclass(frozen=True)
class Result:
    delays: list[float]  # per slice, seconds from feeding it to its audio being out
    quiet_delays: list[float]
    trace: list[tuple[float, float, int]]  # (wall s, seconds of audio fed, samples out)
    out_seconds: float  # decoded before close (after the settle wait)
    audio_seconds: float


def speech_with_gaps(turns: int, gap: float, noise: bool) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """``turns`` LibriVox utterances (cycled) with a quiet stretch between each two, and where
    those stretches lie (seconds)."""
    utterances = [decode_file(w) for w in sorted(DATA.glob("*.wav"))]
    rng = np.random.default_rng(0)
    parts: list[np.ndarray] = []
    quiet: list[tuple[float, float]] = []
    for k in range(turns):
        if k:
            start = sum(map(len, parts)) / SAMPLE_RATE
            stretch = np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)
            if noise:  # -60 dBFS RMS white noise
                stretch = (rng.standard_normal(len(stretch)) * 10 ** (-60 / 20)).astype(np.float32)
            parts.append(stretch)
            quiet.append((start, start + gap))
        parts.append(utterances[(1 + 3 * k) % len(utterances)])
    return np.concatenate(parts), quiet


def ffmpeg_encode(audio: np.ndarray, args: list[str]) -> bytes:
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error",
           "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "-i", "pipe:0", *args, "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=True).stdout


def ogg_time_slices(data: bytes, slice_seconds: float) -> list[bytes]:
    """Ogg cut after the last page ending at or before each multiple of ``slice_seconds``
    (Opus granule positions count 48 kHz samples; the headers go with the first slice)."""
    cuts, boundary, pos = [], slice_seconds, 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS":
            raise ValueError(f"no Ogg page at byte {pos}")
        granule = int.from_bytes(data[pos + 6 : pos + 14], "little", signed=True)
        nseg = data[pos + 26]
        end = pos + 27 + nseg + sum(data[pos + 27 : pos + 27 + nseg])
        while granule > 0 and granule / 48000 > boundary + 1e-9:
            cuts.append(pos)  # this page ends after the boundary: cut before it
            boundary += slice_seconds
        pos = end
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


def make_stream(variant: str, turns: int, gap: float, slice_s: float) -> Stream:
    kind, _, quietness = variant.rpartition("-")
    audio, quiet = speech_with_gaps(turns, gap, noise=quietness == "noise")
    total = len(audio) / SAMPLE_RATE
    if kind == "webm":
        slices = webm_slices(audio, slice_s)
    elif kind == "webm-dtx":
        slices = time_slices(ffmpeg_encode(audio, [*OPUS, *DTX, "-f", "webm"]), slice_s)
    elif kind == "ogg":
        slices = ogg_time_slices(ffmpeg_encode(audio, [*OPUS, *OGG_PAGES, "-f", "ogg"]), slice_s)
    elif kind == "pcm16":
        slices = pcm16_slices(audio, slice_s)
    else:
        raise ValueError(f"unknown variant {variant!r}")
    ends = [min((i + 1) * slice_s, total) for i in range(len(slices))]
    return Stream("pcm16" if kind == "pcm16" else kind.split("-")[0], slices, ends, quiet)


async def measure(stream: Stream, slice_s: float, settle: float) -> Result:
    decoder = await open_decoder(stream.fmt, SAMPLE_RATE)
    trace: list[tuple[float, float, int]] = []
    out = 0
    fed_seconds = 0.0
    t0 = time.monotonic()

    async def reader() -> None:
        nonlocal out
        async for block in decoder:
            out += len(block)
            trace.append((time.monotonic() - t0, fed_seconds, out))

    reading = asyncio.create_task(reader())
    fed_at: list[float] = []
    try:
        for i, piece in enumerate(stream.slices):
            await asyncio.sleep(max(0.0, t0 + i * slice_s - time.monotonic()))
            fed_at.append(time.monotonic() - t0)
            fed_seconds = stream.ends[i]
            await decoder.feed(piece)
        await asyncio.sleep(settle)
        out_before_close = out / SAMPLE_RATE
        await decoder.close()
        await reading
    finally:
        await decoder.aclose()
    delays, quiet_delays = [], []
    for i, end in enumerate(stream.ends):
        need = (end - FRAME) * SAMPLE_RATE
        done = next((t for t, _, n in trace if n >= need), None)
        delay = (done if done is not None else float("inf")) - fed_at[i]
        delays.append(max(0.0, delay))
        if any(a <= end - slice_s and end <= b for a, b in stream.quiet):
            quiet_delays.append(max(0.0, delay))
    return Result(delays, quiet_delays, trace, out_before_close, stream.ends[-1])


def summary(values: list[float]) -> str:
    if not values:
        return "       -"
    return f"{statistics.median(values):6.3f} {max(values):6.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", choices=VARIANTS, action="append", help="default: all")
    p.add_argument("--turns", type=int, default=3, help="utterances, a quiet stretch between each two")
    p.add_argument("--gap", type=float, default=2.0, help="each quiet stretch (s)")
    p.add_argument("--slice", type=float, default=0.25, help="slice length and send interval (s)")
    p.add_argument("--settle", type=float, default=1.0, help="wait after the last slice, before eof (s)")
    p.add_argument("--trace", action="store_true", help="print every output block: wall s, fed s, out s")
    args = p.parse_args()
    print(f"{args.turns} utterances, {args.gap:.1f} s quiet stretches, {args.slice * 1000:.0f} ms slices "
          "at real-time pace; delay from feeding a slice to its audio out (s)")  # fmt: skip
    print(f"{'variant':18} {'first':>6} {'rest: median   max':>19} {'quiet: median   max':>20} "
          f"{'out before eof':>15}")  # fmt: skip
    for variant in args.variant or VARIANTS:
        stream = make_stream(variant, args.turns, args.gap, args.slice)
        result = asyncio.run(measure(stream, args.slice, args.settle))
        rest, quiet = summary(result.delays[1:]), summary(result.quiet_delays)
        print(f"{variant:18} {result.delays[0]:6.3f} {rest:>19} {quiet:>20} "
              f"{result.out_seconds:6.2f}/{result.audio_seconds:5.2f} s")  # fmt: skip
        if args.trace:
            for wall, fed, n in result.trace:
                print(f"    t={wall:6.3f}  fed={fed:6.2f}  out={n / SAMPLE_RATE:6.3f}")


if __name__ == "__main__":
    main()
