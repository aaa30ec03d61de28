"""G.711 µ-law and A-law (``mulaw``/``alaw``): decoded in-process by table, checked against the
standard's values and against ffmpeg's own G.711 codec on real speech."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.support.decoders import aligned, peak_hz, raw_decode, rms, run, tone
from wirescribe.audio import decode as audio_decode
from wirescribe.audio.decode import G711_FORMATS, SAMPLE_RATE, RawStreamDecoder, open_decoder

FFMPEG_NAMES = {"mulaw": "mulaw", "alaw": "alaw"}  # ffmpeg's raw G.711 muxers/demuxers


def ffmpeg_g711(audio: np.ndarray, fmt: str, rate: int = 8000) -> bytes:
    """16 kHz float32 speech → G.711 bytes at ``rate``, by ffmpeg's encoder (an independent one)."""
    cmd = [audio_decode.find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", "16000",
           "-ac", "1", "-i", "pipe:0", "-ar", str(rate), "-f", FFMPEG_NAMES[fmt], "pipe:1"]  # fmt: skip
    return subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=True).stdout


def ffmpeg_decode_g711(data: bytes, fmt: str, rate: int = 8000) -> np.ndarray:
    """G.711 bytes → float32 at their own rate, by ffmpeg's decoder."""
    cmd = [audio_decode.find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", FFMPEG_NAMES[fmt],
           "-ar", str(rate), "-ac", "1", "-i", "pipe:0", "-f", "f32le", "pipe:1"]  # fmt: skip
    out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4")


# Values from ITU-T G.711's tables (as 16-bit linear samples).
MULAW_KNOWN = {0xFF: 0, 0x7F: 0, 0x00: -32124, 0x80: 32124, 0xFE: 8, 0x7E: -8, 0xF0: 120, 0x70: -120}
ALAW_KNOWN = {0xD5: 8, 0x55: -8, 0xAA: 32256, 0x2A: -32256, 0xD4: 24, 0x54: -24, 0xC5: 264}


@pytest.mark.parametrize(("fmt", "known"), [("mulaw", MULAW_KNOWN), ("alaw", ALAW_KNOWN)])
def test_table_holds_the_standards_values(fmt: str, known: dict[int, int]) -> None:
    codes = bytes(known)
    out = raw_decode(codes, fmt, SAMPLE_RATE)  # at 16 kHz: no resampling, the table's values
    assert (out * 32768).round().astype(int).tolist() == list(known.values())


@pytest.mark.parametrize("fmt", G711_FORMATS)
def test_every_code_matches_ffmpegs_decoder(fmt: str) -> None:
    codes = bytes(range(256))
    ours = raw_decode(codes, fmt, SAMPLE_RATE)
    theirs = ffmpeg_decode_g711(codes, fmt, SAMPLE_RATE)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("fmt", G711_FORMATS)
def test_every_code_matches_audioop(fmt: str) -> None:
    audioop = pytest.importorskip("audioop")  # in the standard library up to Python 3.12
    codes = bytes(range(256))
    to_linear = audioop.ulaw2lin if fmt == "mulaw" else audioop.alaw2lin
    reference = np.frombuffer(to_linear(codes, 2), dtype="<i2")
    assert np.array_equal(raw_decode(codes, fmt, SAMPLE_RATE) * 32768, reference.astype(np.float32))


@pytest.mark.parametrize("fmt", G711_FORMATS)
def test_speech_at_8k_decodes_like_ffmpeg_and_keeps_its_length(fmt: str, speech: np.ndarray) -> None:
    encoded = ffmpeg_g711(speech, fmt)
    # Cut into odd frame sizes, as 20 ms telephony frames (160 bytes) and anything else arrive.
    out = raw_decode(encoded, fmt, 8000, chunk=[160, 333, 1, 4096])
    assert abs(len(out) - len(speech)) <= 0.005 * SAMPLE_RATE
    lag, corr, energy = aligned(out, speech)
    assert lag <= 40 and corr > 0.95 and 0.85 <= energy <= 1.1, (lag, corr, energy)


@pytest.mark.parametrize("fmt", G711_FORMATS)
def test_tone_keeps_its_pitch(fmt: str) -> None:
    src = tone(440.0, 1.0, rate=16000)
    out = raw_decode(ffmpeg_g711(src, fmt), fmt, 8000)
    assert abs(peak_hz(out) - 440.0) <= 1
    assert 0.9 <= rms(out[800:-800]) / rms(src) <= 1.05


@pytest.mark.parametrize("fmt", G711_FORMATS)
def test_open_decoder_gives_the_raw_decoder(fmt: str) -> None:
    decoder = run(open_decoder(fmt, 8000))
    assert isinstance(decoder, RawStreamDecoder)
    run(decoder.aclose())
