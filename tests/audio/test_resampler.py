"""The band-limited resampler (libsoxr) that every raw rate change goes through: no mirror image
of a phone call's band above 4 kHz, a chirp's round trip, exact timing, and a stream cut
anywhere giving the samples of one call."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from tests.support.decoders import random_sizes, run
from wirescribe.audio.raw import RawConverter, RawStreamDecoder, Resampler, g711_to_float


def resample_in_pieces(x: np.ndarray, src: int, dst: int, sizes: list[int]) -> np.ndarray:
    r = Resampler(src, dst)
    out, at = [], 0
    for size in sizes:
        out.append(r.process(x[at : at + size]))
        at += size
    assert at == len(x)
    return np.concatenate([*out, r.flush()])


def spectrum_db(x: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and magnitudes (dB below the peak) of ``x`` under a Blackman window."""
    magnitude = np.abs(np.fft.rfft(x * np.blackman(len(x))))
    return np.fft.rfftfreq(len(x), 1 / rate), 20 * np.log10(magnitude / magnitude.max() + 1e-20)


def test_a_phone_band_tone_upsampled_has_no_image_above_4_khz() -> None:
    """3.4 kHz at 8 kHz, the top of the telephone band: a linear interpolator mirrors it to
    4.6 kHz only ~4 dB down; band-limited, nothing above 4 kHz is within 90 dB of it."""
    t = np.arange(8000 * 2) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 3400 * t)).astype(np.float32)
    out = resample_in_pieces(tone, 8000, 16000, [160] * 100)  # 20 ms frames, as a phone sends
    freqs, db = spectrum_db(out[4000:-4000], 16000)
    assert abs(freqs[np.argmax(db)] - 3400) < 5
    assert db[freqs > 4100].max() < -90, db[freqs > 4100].max()
    assert np.sqrt(2) * out[4000:-4000].std() == pytest.approx(0.5, rel=0.01)  # the tone kept its level


@pytest.mark.parametrize(
    ("src", "via", "top"), [(8000, 16000, 3500.0), (16000, 44100, 7000.0), (16000, 48000, 7000.0)]
)
def test_a_chirp_survives_the_round_trip(src: int, via: int, top: float) -> None:
    """A sweep from 100 Hz to ``top`` (inside both rates' bands) there and back is the same
    sweep: the error is over 50 dB below the signal, and nothing moved in time."""
    seconds = 2.0
    t = np.arange(int(src * seconds)) / src
    sweep = 100 * t + (top - 100) / (2 * seconds) * t**2  # phase in cycles: 100 Hz → top
    chirp = (0.5 * np.sin(2 * np.pi * sweep)).astype(np.float32)
    there = resample_in_pieces(chirp, src, via, random_sizes(len(chirp), 40, seed=1))
    back = resample_in_pieces(there, via, src, random_sizes(len(there), 40, seed=2))
    assert len(there) == seconds * via and len(back) == len(chirp)
    inner = slice(src // 10, -src // 10)  # the sweep's abrupt start and end ring at the edges
    error = back[inner] - chirp[inner]
    snr = 10 * np.log10(np.mean(chirp[inner] ** 2) / np.mean(error**2))
    assert snr > 50, snr


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (24000, 16000), (44100, 16000), (16000, 24000)])
def test_small_pieces_give_exactly_the_one_shot_result(src: int, dst: int) -> None:
    x = np.random.default_rng(3).uniform(-0.5, 0.5, src).astype(np.float32)
    whole = resample_in_pieces(x, src, dst, [len(x)])
    for sizes in ([1] * 50 + [len(x) - 50], [src // 50] * 50, random_sizes(len(x), 97, seed=5)):
        assert np.array_equal(resample_in_pieces(x, src, dst, sizes), whole)
    assert np.array_equal(whole, soxr.resample(x, src, dst, quality="HQ"))  # soxr's own one-shot
    assert len(whole) == dst  # one second in, one second out


def test_timing_is_kept_a_click_stays_where_it_was() -> None:
    x = np.zeros(8000, np.float32)
    x[4000] = 1.0  # a click at 0.5 s
    out = resample_in_pieces(x, 8000, 16000, [160] * 50)
    assert abs(int(np.argmax(np.abs(out))) - 8000) <= 1


def test_a_flushed_resampler_takes_nothing_more() -> None:
    r = Resampler(8000, 16000)
    r.process(np.ones(800, np.float32))
    assert r.flush().size > 0
    assert r.process(np.ones(800, np.float32)).size == 0 and r.flush().size == 0


def test_mulaw_at_8k_is_one_table_lookup_and_one_resampling() -> None:
    codes = bytes(np.random.default_rng(9).integers(0, 256, 8000, dtype=np.uint8))
    converter = RawConverter("mulaw", 8000)
    pieces = [converter.convert(codes[i : i + 160]) for i in range(0, len(codes), 160)]
    out = np.concatenate([*pieces, converter.flush()])
    assert np.array_equal(out, soxr.resample(g711_to_float(codes, "mulaw"), 8000, 16000, quality="HQ"))


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (24000, 16000)])
def test_drain_gives_everything_so_far_and_the_stream_goes_on(src: int, dst: int) -> None:
    """A finalize drains the resampler: every sample of the input so far comes out, nothing
    moves in time, and only the 10 ms either side of the cut differ from an uncut stream."""
    x = np.random.default_rng(1).uniform(-0.5, 0.5, src).astype(np.float32)
    r = Resampler(src, dst)
    before = np.concatenate([r.process(x[: src // 2]), r.drain()])
    assert len(before) == dst // 2
    out = np.concatenate([before, r.process(x[src // 2 :]), r.flush()])
    whole = soxr.resample(x, src, dst, quality="HQ")
    assert len(out) == len(whole)
    away = np.ones(len(out), bool)
    away[dst // 2 - dst // 100 : dst // 2 + dst // 100] = False
    assert np.abs(out - whole)[away].max() < 1e-4


def test_the_raw_decoder_drains_at_a_finalize() -> None:
    async def go() -> int:
        decoder = RawStreamDecoder("mulaw", 8000)
        codes = bytes(np.random.default_rng(2).integers(0, 256, 8000, dtype=np.uint8))
        for i in range(0, len(codes), 160):
            await decoder.feed(codes[i : i + 160])
        decoder.drain()
        ready = decoder._queue.qsize()  # the blocks out before the end of the stream
        await decoder.close()
        blocks = [b async for b in decoder]
        return sum(len(b) for b in blocks[:ready])

    assert run(go()) == 16000  # all of the second, before the end of the stream
