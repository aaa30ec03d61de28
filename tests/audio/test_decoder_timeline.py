"""The live decoder keeps the sender's clock: what was fed comes out without waiting for more
input, however quiet; gaps in the timestamps (Opus DTX) come out as silence instead of vanishing;
a second stream appended to the first loses nothing. Real ffmpeg, real Opus, no model.

``bench/decoder_latency.py`` measures the same at real-time pace (per slice, wall time).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.decoders import ffmpeg_decode, run
from tests.support.speech import Utterance
from wirescribe.audio.decode import SAMPLE_RATE, FfmpegStreamDecoder, decode_file, encode_audio, find_ffmpeg
from wirescribe.audio.webm import block_times, time_slices

QUIET = 2.0  # seconds between the two utterances
SETTLE = 5.0  # seconds the decoder gets to catch up: a guard against a hang, not a measure
OPUS = ["-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20"]


def turns(utterances: list[Utterance], noise: bool = False) -> np.ndarray:
    """Speech, a quiet stretch (digital silence, or -60 dBFS white noise), speech."""
    quiet = np.zeros(int(QUIET * SAMPLE_RATE), dtype=np.float32)
    if noise:
        quiet = (np.random.default_rng(0).standard_normal(len(quiet)) * 1e-3).astype(np.float32)
    return np.concatenate([decode_file(utterances[1].wav), quiet, decode_file(utterances[4].wav)])


def dtx_webm(audio: np.ndarray) -> bytes:
    """WebM/Opus as a DTX sender writes it: in silence one frame every 400 ms and nothing between
    (libopus marks the frames it would leave out 1-2 bytes long; the noise filter drops them)."""
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "f32le", "-ac", "1",
           "-ar", str(SAMPLE_RATE), "-i", "pipe:0", *OPUS, "-dtx", "1",
           "-bsf:a", r"noise=drop=lt(size\,3)", "-f", "webm", "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=True).stdout


async def decoded_without_eof(pieces: list[bytes], want: float) -> float:
    """Feed every piece, keep stdin open, read until ``want`` seconds are out (or SETTLE passes);
    the seconds decoded."""
    decoder = await FfmpegStreamDecoder.start()
    got = 0

    async def read() -> None:
        nonlocal got
        async for block in decoder:
            got += len(block)
            if got >= want * SAMPLE_RATE:
                return

    try:
        reading = asyncio.create_task(read())
        for piece in pieces:
            await decoder.feed(piece)
        await asyncio.wait({reading}, timeout=SETTLE)
        reading.cancel()
        return got / SAMPLE_RATE
    finally:
        await decoder.aclose()


@pytest.mark.parametrize(
    ("kind", "upto"),
    [("silence", 4.0), ("silence", 5.0), ("noise", 4.0), ("dtx", 4.0), ("dtx", 5.0)],
    ids=["silence-mid-pause", "silence-after-pause", "noise-mid-pause", "dtx-mid-pause", "dtx-after-pause"],
)
def test_what_was_fed_comes_out_without_more_input(
    kind: str, upto: float, utterances: list[Utterance]
) -> None:
    """Slices up to ``upto`` s (in the pause, or just after it), then nothing more: at least all but
    0.3 s of them is decoded. A decoder that held quiet audio back until later bytes pushed it
    through (or, for DTX, never produced the pause at all) stops short."""
    audio = turns(utterances, noise=kind == "noise")
    assert 2.5 < len(decode_file(utterances[1].wav)) / SAMPLE_RATE < 3.5  # 4.0 s is mid-pause
    data = dtx_webm(audio) if kind == "dtx" else encode_audio(audio, "webm")
    slices = time_slices(data, 0.25)[: int(upto / 0.25)]
    got = run(decoded_without_eof(slices, upto - 0.3), timeout=SETTLE + 10)
    assert got >= upto - 0.3, f"{kind}: {got:.2f} s out of {upto:.2f} s fed"


def test_dtx_gaps_keep_the_senders_clock(utterances: list[Utterance]) -> None:
    """The DTX stream really has gaps, and decodes to the source's length with the pause silent
    where the source had it (without the gap filling, 2 s of pause shrank to ~0.1 s)."""
    audio = turns(utterances)
    data = dtx_webm(audio)
    starts = [t for _, t in block_times(data)]
    assert max(np.diff(starts)) >= 0.3  # frames left out in the pause
    out = ffmpeg_decode(data)
    assert abs(len(out) - len(audio)) <= 0.03 * SAMPLE_RATE
    pause_start = len(decode_file(utterances[1].wav))
    inside = out[pause_start + SAMPLE_RATE // 4 : pause_start + int((QUIET - 0.25) * SAMPLE_RATE)]
    assert np.sqrt(np.mean(np.square(inside))) < 1e-3  # silence (or comfort noise), not speech
    after = out[pause_start + int(QUIET * SAMPLE_RATE) :][:SAMPLE_RATE]
    assert np.sqrt(np.mean(np.square(after))) > 0.01  # the second utterance where it belongs


@pytest.mark.parametrize("fmt", ["webm", "ogg", "flac", "wav"])
def test_a_second_stream_appended_loses_nothing(fmt: str, utterances: list[Utterance]) -> None:
    """A client that restarts its recorder on the same socket sends a second stream whose clock
    starts at 0 again: its audio follows the first's (the gap filling must not trim it as a jump
    back in time)."""
    audio = decode_file(utterances[1].wav)
    data = encode_audio(audio, fmt)
    out = ffmpeg_decode(data + data)
    assert len(out) >= 2 * len(audio) - 0.05 * SAMPLE_RATE


def test_decode_file_fills_dtx_gaps_too(utterances: list[Utterance], tmp_path: Path) -> None:
    """Files go through the same output filters: a DTX recording keeps its length."""
    audio = turns(utterances)
    path = tmp_path / "dtx.webm"
    path.write_bytes(dtx_webm(audio))
    assert abs(len(decode_file(path)) - len(audio)) <= 0.03 * SAMPLE_RATE
