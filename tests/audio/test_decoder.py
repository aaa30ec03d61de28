"""audio_decode: real encoded audio through ffmpeg (containers, chunking, bad input, reaping,
decode_file), no model. The raw pcm16/f32 decoders are in ``test_raw_decoder.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.decoders import (
    Encoded,
    aligned,
    drain,
    ffmpeg_decode,
    gone,
    peak_hz,
    random_sizes,
    run,
    tone,
)
from wirescribe.audio import decode as audio_decode
from wirescribe.audio.decode import (
    ENCODINGS,
    SAMPLE_RATE,
    DecodeError,
    DecoderFailure,
    FfmpegStreamDecoder,
    decode_file,
    encode_audio,
)


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
    monkeypatch.setattr(audio_decode, "_configured_ffmpeg", "/nonexistent/ffmpeg")  # FFMPEG_BINARY
    assert audio_decode.find_ffmpeg() == "/nonexistent/ffmpeg"
    with pytest.raises(DecoderFailure):
        run(FfmpegStreamDecoder.start())


def test_missing_ffmpeg_in_decode_file_is_a_decoder_failure(
    monkeypatch: pytest.MonkeyPatch, utterances: list
) -> None:
    """DecoderFailure is documented as 'ffmpeg missing'; FileNotFoundError means the *input* is
    missing. decode_file/encode_audio must not blur the two."""
    monkeypatch.setattr(audio_decode, "_configured_ffmpeg", "/nonexistent/ffmpeg")  # FFMPEG_BINARY
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
