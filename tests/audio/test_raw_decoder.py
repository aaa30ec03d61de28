"""audio_decode's raw decoders: pcm16/f32 without ffmpeg, resampled to 16 kHz; open_decoder."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from tests.support.decoders import (
    aligned,
    peak_hz,
    random_sizes,
    raw_decode,
    rms,
    run,
    tone,
)
from wirescribe.audio import decode as audio_decode
from wirescribe.audio.decode import (
    SAMPLE_RATE,
    DecodeError,
    FfmpegStreamDecoder,
    RawStreamDecoder,
    Resampler,
    open_decoder,
)

# -- raw pcm16 / f32 ---------------------------------------------------------------------------


def test_pcm16_at_16k_is_exact() -> None:
    ints = np.array([0, 1, -1, 32767, -32768, 1000, -1000, 12345], dtype="<i2")
    out = raw_decode(ints.tobytes(), "pcm16", 16000)
    assert np.array_equal(out, ints.astype(np.float32) / 32768)


def test_f32_at_16k_is_exact() -> None:
    src = np.random.default_rng(1).uniform(-1, 1, 5000).astype("<f4")
    assert np.array_equal(raw_decode(src.tobytes(), "f32", 16000), src)


@pytest.mark.parametrize("fmt", ["pcm16", "f32"])
@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_raw_resampling_keeps_duration_and_pitch(fmt: str, rate: int) -> None:
    seconds, freq = 2.0, 1000.0
    src = tone(freq, seconds, rate=rate)
    data = (src * 32767).astype("<i2").tobytes() if fmt == "pcm16" else src.astype("<f4").tobytes()
    out = raw_decode(data, fmt, rate, chunk=[640, 333, 4096])
    assert abs(len(out) - seconds * SAMPLE_RATE) <= 0.005 * SAMPLE_RATE
    assert abs(peak_hz(out) - freq) <= 1
    assert 0.9 <= rms(out[800:-800]) / rms(src) <= 1.05


@pytest.mark.parametrize("rate", [8000, 48000])
def test_raw_resampling_keeps_speech(rate: int, speech: np.ndarray) -> None:
    cmd = [audio_decode.find_ffmpeg(), "-nostdin", "-loglevel", "error", "-f", "f32le", "-ar", "16000",
           "-ac", "1", "-i", "pipe:0", "-ar", str(rate), "-f", "f32le", "pipe:1"]  # fmt: skip
    at_rate = subprocess.run(cmd, input=speech.tobytes(), capture_output=True, check=True).stdout
    out = raw_decode(at_rate, "f32", rate)
    assert abs(len(out) - len(speech)) <= 0.01 * SAMPLE_RATE
    _, corr, energy = aligned(out, speech, max_lag=200)
    assert corr > (0.9 if rate == 8000 else 0.98)  # 8 kHz loses everything above 4 kHz
    assert energy > 0.8


def test_downsampling_filters_what_16k_cannot_hold() -> None:
    """A 12 kHz tone at 48 kHz is above 16 kHz's Nyquist: it must vanish, not alias to 4 kHz."""
    src = tone(12000, 1.0, rate=48000)
    out = raw_decode(src.astype("<f4").tobytes(), "f32", 48000)
    assert rms(out[200:-200]) < 0.02 * rms(src)


@pytest.mark.parametrize("rate", [16000, 44100, 8000])
def test_raw_chunking_does_not_change_the_result(rate: int) -> None:
    src = tone(700, 0.5, rate=rate) + tone(2500, 0.5, rate=rate, amp=0.1)
    data = (src * 32767).astype("<i2").tobytes()
    whole = raw_decode(data, "pcm16", rate, chunk=len(data))
    for sizes in ([1], [3], [1, 2, 5, 7, 1001], random_sizes(len(data), 60, seed=11)):
        out = raw_decode(data, "pcm16", rate, chunk=sizes)
        assert len(out) == len(whole)
        assert np.allclose(out, whole, atol=1e-6)


def test_f32_split_inside_samples() -> None:
    src = np.linspace(-1, 1, 999, dtype="<f4")
    assert np.array_equal(raw_decode(src.tobytes(), "f32", 16000, chunk=[1, 2, 3, 5]), src)


def test_f32_nan_is_a_decode_error() -> None:
    data = np.array([0.1, np.nan, 0.2], dtype="<f4").tobytes()
    with pytest.raises(DecodeError):
        raw_decode(data, "f32", 16000)


def test_raw_trailing_partial_sample_and_empty_input() -> None:
    assert raw_decode(b"", "pcm16", 16000).size == 0
    assert raw_decode(b"\x01", "pcm16", 16000).size == 0
    out = raw_decode(np.array([100, 200], "<i2").tobytes() + b"\x07", "pcm16", 16000)
    assert np.array_equal(out, np.array([100, 200], np.float32) / 32768)


def test_raw_feed_after_close_is_ignored() -> None:
    async def go() -> np.ndarray:
        decoder = RawStreamDecoder("pcm16", 16000)
        await decoder.feed(np.ones(10, "<i2").tobytes())
        await decoder.close()
        await decoder.feed(np.ones(10, "<i2").tobytes())
        await decoder.aclose()
        return np.concatenate([b async for b in decoder])

    assert len(run(go())) == 10


def test_raw_decoder_rejects_other_formats() -> None:
    with pytest.raises(ValueError):
        RawStreamDecoder("mp3", 16000)


def test_open_decoder_picks_the_decoder() -> None:
    async def go() -> tuple[object, object]:
        raw = await open_decoder("f32", 48000)
        piped = await open_decoder("auto", 16000)
        try:
            return raw, piped
        finally:
            await raw.aclose()
            await piped.aclose()

    raw, piped = run(go())
    assert isinstance(raw, RawStreamDecoder) and isinstance(piped, FfmpegStreamDecoder)


def test_resampler_same_rate_is_identity() -> None:
    r = Resampler(16000, 16000)
    x = np.arange(10, dtype=np.float32)
    assert np.array_equal(r.process(x), x) and r.flush().size == 0
