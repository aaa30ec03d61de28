"""audio_decode: real encoded audio through ffmpeg and the raw decoders, no model.

Every async test runs in ``asyncio.run`` under ``asyncio.wait_for``, so a decoder that hangs
fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

import audio_decode
from audio_decode import (
    ENCODINGS,
    SAMPLE_RATE,
    DecodeError,
    DecoderFailure,
    FfmpegStreamDecoder,
    RawStreamDecoder,
    Resampler,
    decode_file,
    encode_audio,
    open_decoder,
)

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


@pytest.fixture(scope="module")
def speech(utterances: list) -> np.ndarray:
    """About 7 s of real read speech, 16 kHz mono float32."""
    return decode_file(utterances[0].wav)


@pytest.fixture(scope="module")
def encoded(speech: np.ndarray) -> Callable[[str], bytes]:
    """``encoded(fmt)``: the speech encoded once per format."""
    cache: dict[str, bytes] = {}

    def get(fmt: str) -> bytes:
        if fmt not in cache:
            cache[fmt] = encode_audio(speech, fmt)
        return cache[fmt]

    return get


# -- containers through one ffmpeg process ---------------------------------------------------

# (format, allowed extra/missing seconds, minimum correlation after alignment)
CONTAINERS = [
    ("webm", 0.05, 0.97),  # MediaRecorder's format
    ("ogg", 0.05, 0.97),
    ("mp3", 0.15, 0.97),  # LAME's encoder delay and padding are not trimmed from a pipe
    ("wav", 0.01, 0.999),
    ("mp4", 0.12, 0.97),  # fragmented MP4 (AAC priming samples stay)
    ("flac", 0.01, 0.999),
]


@pytest.mark.parametrize(("fmt", "slack", "min_corr"), CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_stream_decodes_container_like_the_source(
    fmt: str, slack: float, min_corr: float, speech: np.ndarray, encoded: Encoded
) -> None:
    out = ffmpeg_decode(encoded(fmt))
    assert abs(len(out) - len(speech)) / SAMPLE_RATE <= slack
    lag, corr, energy = aligned(out, speech)
    assert lag <= 0.1 * SAMPLE_RATE
    assert corr >= min_corr, f"{fmt}: correlation {corr:.3f}"
    assert 0.85 <= energy <= 1.15, f"{fmt}: energy ratio {energy:.3f}"
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 1.5


def test_wav_is_sample_exact(speech: np.ndarray, encoded: Encoded) -> None:
    out = ffmpeg_decode(encoded("wav"))
    assert len(out) == len(speech)
    assert np.max(np.abs(out - speech)) <= 1 / 32768 + 1e-6  # pcm16 quantisation only


@pytest.mark.parametrize("fmt", sorted(ENCODINGS))
def test_encode_audio_round_trips_every_advertised_format(fmt: str, tmp_path: Path) -> None:
    """``encode_audio`` lists ``fmt`` as known: it must produce a file ``decode_file`` reads back."""
    src = tone(440, 2.0)
    path = tmp_path / f"tone.{fmt}"
    path.write_bytes(encode_audio(src, fmt))
    out = decode_file(path)
    assert abs(len(out) - len(src)) / SAMPLE_RATE < 0.15
    assert abs(peak_hz(out[:16000]) - 440) <= 2


def test_encode_audio_at_another_rate_decodes_to_16k() -> None:
    src = tone(1000, 1.5, rate=44100)
    out = ffmpeg_decode(encode_audio(src, "wav", sample_rate=44100))
    assert abs(len(out) - 1.5 * SAMPLE_RATE) <= 2
    assert abs(peak_hz(out) - 1000) <= 2


def test_encode_audio_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown audio format"):
        encode_audio(tone(440, 0.1), "xyz")


@pytest.mark.parametrize("fmt", ["webm", "ogg", "mp3", "wav"])
def test_output_arrives_before_the_stream_ends(fmt: str, speech: np.ndarray, encoded: Encoded) -> None:
    """A live decoder must not sit on its output until stdin closes."""
    data = encoded(fmt)

    async def go() -> float:
        decoder = await FfmpegStreamDecoder.start()
        try:
            await decoder.feed(data[: len(data) * 2 // 3])  # about 4.7 s of audio; stdin stays open
            got = 0
            async for block in decoder:
                got += len(block)
                if got >= 2 * SAMPLE_RATE:
                    break
            return got / SAMPLE_RATE
        finally:
            await decoder.aclose()

    assert run(go(), timeout=10) >= 2.0


# -- chunk boundaries --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["webm", "ogg", "mp3", "mp4"])
def test_chunking_does_not_change_the_result(fmt: str) -> None:
    data = encode_audio(np.concatenate([tone(440, 1.5), tone(1250, 1.5, amp=0.2)]), fmt)
    whole = ffmpeg_decode(data, chunk=len(data))
    assert abs(len(whole) - 3 * SAMPLE_RATE) < 0.15 * SAMPLE_RATE
    for sizes in ([1], [3, 1, 7, 333, 4097, 2], random_sizes(len(data), 40, seed=7)):
        assert np.array_equal(ffmpeg_decode(data, chunk=sizes), whole), sizes[:8]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "fraction"), [("webm", 0.5), ("ogg", 0.37), ("mp3", 0.61), ("mp4", 0.55)])
def test_truncated_stream_decodes_what_it_can(
    fmt: str, fraction: float, speech: np.ndarray, encoded: Encoded
) -> None:
    data = encoded(fmt)
    try:
        out = ffmpeg_decode(data[: int(len(data) * fraction) + 1])
    except DecodeError as e:
        assert str(e)
        return
    assert len(out) <= len(speech) + 0.15 * SAMPLE_RATE
    assert len(out) >= 0.2 * len(speech)  # most of what arrived was usable
    _, corr, _ = aligned(out, speech)
    assert corr > 0.9


@pytest.mark.parametrize("cut", [1, 12, 44, 45])
def test_wav_cut_in_its_header(cut: int, encoded: Encoded) -> None:
    with pytest.raises(DecodeError) as info:
        ffmpeg_decode(encoded("wav")[:cut])
    assert "Invalid data" in str(info.value)


def test_junk_raises_decode_error_with_ffmpegs_reason() -> None:
    junk = b"this is not audio, just a text file sent as binary frames\n" * 100
    with pytest.raises(DecodeError) as info:
        ffmpeg_decode(junk)
    assert "Invalid data found when processing input" in str(info.value)


def test_random_bytes_raise_decode_error() -> None:
    junk = np.random.default_rng(3).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    with pytest.raises(DecodeError) as info:
        ffmpeg_decode(junk, chunk=1000)
    assert str(info.value)


def test_lots_of_junk_refused_by_feed_or_iteration() -> None:
    """ffmpeg gives up early; feeding on must raise DecodeError (not BrokenPipeError), not hang."""

    async def go() -> str:
        decoder = await FfmpegStreamDecoder.start()
        try:
            for _ in range(400):
                await decoder.feed(b"junk " * 2000)
            await decoder.close()
            async for _block in decoder:
                pass
        except DecodeError as e:
            return str(e)
        finally:
            await decoder.aclose()
        return ""

    assert "Invalid data" in run(go())


def test_empty_stream() -> None:
    """No bytes at all, then eof: nothing decoded or a DecodeError, promptly."""
    try:
        out = ffmpeg_decode(b"")
    except DecodeError as e:
        assert str(e)
    else:
        assert out.size == 0


# -- the process is always reaped --------------------------------------------------------------


def test_aclose_mid_stream_reaps_ffmpeg(encoded: Encoded) -> None:
    data = encoded("webm")

    async def go() -> tuple[int, int | None]:
        decoder = await FfmpegStreamDecoder.start()
        await decoder.feed(data[: len(data) // 2])
        async for _block in decoder:
            break  # ffmpeg is running and mid-stream
        await decoder.aclose()
        await decoder.aclose()  # twice is fine
        return decoder.pid, decoder._proc.returncode

    pid, code = run(go(), timeout=10)
    assert code is not None
    assert gone(pid)


def test_aclose_without_input_reaps_ffmpeg() -> None:
    async def go() -> tuple[int, int | None]:
        decoder = await FfmpegStreamDecoder.start()
        await decoder.aclose()
        return decoder.pid, decoder._proc.returncode

    pid, code = run(go(), timeout=10)
    assert code is not None and gone(pid)


def test_aclose_after_full_decode_reaps_ffmpeg(encoded: Encoded) -> None:
    async def go() -> tuple[int, int | None]:
        decoder = await FfmpegStreamDecoder.start()
        await drain(decoder, [encoded("ogg")])
        return decoder.pid, decoder._proc.returncode

    pid, code = run(go(), timeout=10)
    assert code == 0 and gone(pid)


def test_aclose_returns_when_the_reader_stopped_with_output_pending() -> None:
    """A session that stops reading (client gone, its decode task cancelled) after sending a lot
    of audio at once must still be able to close its decoder. Here ffmpeg has produced well
    over asyncio's stdout buffer (2 x 64 KiB) that nobody reads any more."""
    data = encode_audio(tone(440, 30.0), "wav")  # 30 s: ~1.9 MB of float32 output

    async def go() -> tuple[int, bool]:
        decoder = await FfmpegStreamDecoder.start()
        feeding = asyncio.create_task(decoder.feed(data))
        async for _block in decoder:
            break
        await asyncio.sleep(0.5)  # ffmpeg fills the pipe and the reader's buffer, then blocks
        try:
            await asyncio.wait_for(decoder.aclose(), 2)
            hung = False
        except asyncio.TimeoutError:
            hung = True
        finally:
            feeding.cancel()
            assert decoder._proc.stdout is not None
            await decoder._proc.stdout.read()  # unstick the pipe so that this test leaks nothing
            await decoder.aclose()
        return decoder.pid, hung

    pid, hung = run(go(), timeout=10)
    assert not hung, "aclose() hangs once ffmpeg's unread output fills asyncio's stdout buffer"
    assert gone(pid)


def test_decode_error_from_iteration_still_reaps() -> None:
    async def go() -> int:
        decoder = await FfmpegStreamDecoder.start()
        with pytest.raises(DecodeError):
            await drain(decoder, [b"not audio" * 100])
        return decoder.pid

    assert gone(run(go()))


def test_missing_ffmpeg_is_a_decoder_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FFMPEG_BINARY", "/nonexistent/ffmpeg")
    assert audio_decode.find_ffmpeg() == "/nonexistent/ffmpeg"
    with pytest.raises(DecoderFailure):
        run(FfmpegStreamDecoder.start())


def test_missing_ffmpeg_in_decode_file_is_a_decoder_failure(
    monkeypatch: pytest.MonkeyPatch, utterances: list
) -> None:
    """DecoderFailure is documented as 'ffmpeg missing'; FileNotFoundError means the *input* is
    missing. decode_file/encode_audio must not blur the two."""
    monkeypatch.setenv("FFMPEG_BINARY", "/nonexistent/ffmpeg")
    with pytest.raises(DecoderFailure):
        decode_file(utterances[0].wav)
    with pytest.raises(DecoderFailure):
        encode_audio(tone(440, 0.1), "wav")


# -- decode_file -------------------------------------------------------------------------------


def test_decode_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_file(tmp_path / "nope.wav")
    with pytest.raises(FileNotFoundError):
        decode_file(tmp_path)  # a directory is not an audio file


def test_decode_file_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("hello, this is not audio\n" * 50)
    with pytest.raises(DecodeError) as info:
        decode_file(path)
    assert str(path) in str(info.value) and "Invalid data" in str(info.value)


def test_decode_file_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ogg"
    path.touch()
    with pytest.raises(DecodeError):
        decode_file(path)


def test_decode_file_matches_stream_decoding(speech: np.ndarray, encoded: Encoded, tmp_path: Path) -> None:
    path = tmp_path / "speech.ogg"
    path.write_bytes(encoded("ogg"))
    assert np.array_equal(decode_file(path), ffmpeg_decode(encoded("ogg")))


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
