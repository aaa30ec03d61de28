"""Audio decoding: bytes in, 16 kHz mono float32 out.

Two shapes of the same job:

* :class:`FfmpegStreamDecoder` — one ffmpeg subprocess per live session, fed through stdin as
  WebSocket frames arrive, read back as float32 blocks (async iteration).
* :func:`decode_file` — one-shot decoding of a file for the CLI and file transcription.

Raw ``pcm16``/``f32`` and G.711 ``mulaw``/``alaw`` skip ffmpeg (:mod:`wirescribe.audio.raw`);
:func:`open_decoder` picks one or the other for a session's declared format. The shared
contract (:data:`SAMPLE_RATE`, the two errors, :class:`StreamDecoder`) lives in
:mod:`wirescribe.audio.types`; every name stays importable from here.

ffmpeg is the one the operator named (``FFMPEG_BINARY``, :func:`use_ffmpeg`), else the build
bundled with the pinned ``imageio-ffmpeg`` wheel, else one on ``PATH`` (:func:`find_ffmpeg`).

**Output follows the input's timestamps.** An encoder with discontinuous transmission (Opus DTX,
as WebRTC stacks send it) stops sending frames in silence — one every 400 ms — and the container
carries the gap only in its timestamps. Decoded as is, a 2 s pause would shrink to a few tens of
milliseconds of audio, so endpointing never saw it and later audio came out early against the
sender's clock. ``aresample=async=1`` fills such gaps with silence (from the timestamps, as the
next frame arrives) before the output resampling; ``asetpts`` first turns a jump *back* in time
(a second stream appended to the first: chained Ogg, a MediaRecorder restarted on the same
socket) into a continuation, so that aresample pads forward gaps but never trims audio. Streams
without gaps decode sample for sample as without the filters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from wirescribe.audio.child import ChildProcess
from wirescribe.audio.raw import G711_FORMATS, RAW_FORMATS, RawStreamDecoder, Resampler, g711_to_float
from wirescribe.audio.types import SAMPLE_RATE, DecodeError, DecoderFailure, StreamDecoder

__all__ = [
    "ENCODINGS", "G711_FORMATS", "INPUT_FORMATS", "MAX_ALLOC_BYTES", "RAW_FORMATS", "SAMPLE_RATE",
    "DecodeError", "DecoderFailure", "FfmpegStreamDecoder", "RawStreamDecoder", "Resampler",
    "StreamDecoder", "decode_file", "encode_audio", "ffmpeg_version", "find_ffmpeg", "g711_to_float",
    "open_decoder", "untrusted_input_args", "use_ffmpeg",
]  # fmt: skip

log = logging.getLogger(__name__)

_READ_BYTES = 4 * SAMPLE_RATE // 10  # 100 ms of float32 per read: small blocks, low latency
_STDERR_KEEP = 4000  # characters of ffmpeg's stderr quoted in errors


# The demuxers a client's bytes may reach: audio containers, none of which can name another
# resource. Not HLS, DASH, concat, SDP, image sequences, subtitles or playlists, which make
# ffmpeg open files or URLs named inside the input (a file read or a request for the client).
INPUT_FORMATS = ("matroska", "webm", "ogg", "mp3", "wav", "flac", "mov", "mp4", "m4a", "aac", "mpegts")
# The largest single allocation ffmpeg may make for a client's input: far above what decoding
# any real audio needs, far below what a header that lies about its sizes can ask for.
MAX_ALLOC_BYTES = 64 << 20

_configured_ffmpeg: str | None = None  # the operator's choice (Settings.ffmpeg_binary)


def use_ffmpeg(binary: str | None) -> None:
    """Decode with ``binary`` from now on (``None``: the bundled one, see :func:`find_ffmpeg`).
    Called once at start-up by the server and the CLI with ``FFMPEG_BINARY``."""
    global _configured_ffmpeg
    _configured_ffmpeg = binary


def find_ffmpeg() -> str:
    """The ffmpeg executable: the one the operator named (``FFMPEG_BINARY``), else the build
    bundled with the pinned imageio-ffmpeg wheel (a known version, whatever the machine has),
    else one on ``PATH``."""
    if _configured_ffmpeg:
        return _configured_ffmpeg
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as e:  # not installed, or no binary for this platform
        on_path = shutil.which("ffmpeg")
        if on_path:
            return on_path
        raise DecoderFailure("ffmpeg not found: imageio-ffmpeg has none here and none is on PATH") from e


def ffmpeg_version(binary: str) -> str:
    """The first line of ``binary -version`` (for the start-up log), or why it could not run."""
    try:
        out = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"cannot run it: {e}"
    return (out.stdout.splitlines() or ["no version line"])[0]


def untrusted_input_args(protocol: str) -> list[str]:
    """ffmpeg options for input a client sent: one protocol (``pipe`` for a live stream,
    ``file`` for an upload spooled to disk), audio container demuxers only, bounded allocations."""
    return [
        "-max_alloc", str(MAX_ALLOC_BYTES),
        "-protocol_whitelist", protocol,
        "-format_whitelist", ",".join(INPUT_FORMATS),
    ]  # fmt: skip


# Frame timestamps, made monotonic: a frame that starts before the one it follows (a stream
# appended after another, its clock restarted) is placed right after that one, not on top of it.
_MONOTONIC_PTS = (
    "asetpts='if(isnan(PREV_INPTS),PTS,"
    "PREV_OUTPTS+if(lt(PTS,PREV_INPTS),NB_SAMPLES/SAMPLE_RATE/TB,PTS-PREV_INPTS))'"
)
# Gaps in the timestamps (DTX: no frames sent in silence) filled with silence; resampled to 16 kHz.
_FILL_GAPS = f"aresample={SAMPLE_RATE}:async=1:min_hard_comp=0.015"


def _output_args() -> list[str]:
    """Mono 16 kHz float32 on stdout, laid out on the input's clock (see the module's docstring)."""
    return ["-vn", "-af", f"{_MONOTONIC_PTS},{_FILL_GAPS}", "-ac", "1", "-ar", str(SAMPLE_RATE),
            "-f", "f32le", "pipe:1"]  # fmt: skip


def _ffmpeg_reason(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    return "; ".join(lines[-5:])[-_STDERR_KEEP:] if lines else "ffmpeg could not decode the input"


def decode_file(path: str | Path, *, timeout: float | None = None) -> np.ndarray:
    """Decode any file ffmpeg can read into 16 kHz mono float32.

    Raises :class:`FileNotFoundError` for a missing file and :class:`DecodeError` (quoting
    ffmpeg's reason) for one that is not audio.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(p)]
    try:
        proc = subprocess.run(cmd + _output_args(), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise DecodeError(f"decoding {p} took longer than {timeout} s") from e
    except OSError as e:
        raise DecoderFailure(f"cannot run ffmpeg ({cmd[0]}): {e}") from e
    if proc.returncode != 0:
        raise DecodeError(f"{p}: {_ffmpeg_reason(proc.stderr.decode(errors='replace'))}")
    audio = np.frombuffer(proc.stdout[: len(proc.stdout) // 4 * 4], dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise DecodeError(f"{p}: no audio stream")
    return audio


class FfmpegStreamDecoder:
    """One ffmpeg process decoding a container stream (WebM, Ogg, MP3, WAV, fMP4…) from a pipe.

    ``feed()`` writes to ffmpeg's stdin, ``close()`` closes stdin so ffmpeg flushes, and async
    iteration yields float32 blocks until ffmpeg exits; a non-zero exit raises
    :class:`DecodeError` with ffmpeg's own reason. ``aclose()`` always reaps the process.
    """

    def __init__(self, proc: ChildProcess) -> None:
        self._proc = proc
        self._stderr: list[bytes] = []
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        self._stdin_closed = proc.stdin is None
        self._iterating = False  # an ``async for`` is reading stdout (feed must not read it too)

    @classmethod
    async def start(cls, path: str | Path | None = None) -> FfmpegStreamDecoder:
        """Spawn ffmpeg reading stdin, or the file at ``path`` (seekable: MP4/M4A with their index
        at the end decode only this way).

        From a pipe, nothing is held back but the start: ffmpeg reads 2 KiB (its smallest format
        probe) before its first output, so the first 250 ms slice of 32 kbit/s WebM comes out
        with the second; from then on each frame is written as soon as its bytes are in
        (``-flush_packets 1``), in silence too (``bench/decoder_latency.py``)."""
        if path is None:
            source = [*untrusted_input_args("pipe"), "-probesize", "4096", "-analyzeduration", "0",
                      "-i", "pipe:0", "-flush_packets", "1"]  # fmt: skip
        else:
            source = [*untrusted_input_args("file"), "-i", f"file:{path}"]
        cmd = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", *source, *_output_args()]
        try:
            proc = await ChildProcess.start(cmd, stdin=path is None)  # not forked: see child_process
        except OSError as e:
            raise DecoderFailure(f"cannot start ffmpeg: {e}") from e
        return cls(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    async def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(4096):
            if sum(map(len, self._stderr)) < 64 * 1024:  # bounded: ffmpeg can be chatty on junk
                self._stderr.append(chunk)

    def _reason(self) -> str:
        return _ffmpeg_reason(b"".join(self._stderr).decode(errors="replace"))

    async def feed(self, data: bytes) -> None:
        """Write encoded bytes; a dead ffmpeg means the input was refused (:class:`DecodeError`),
        or, when a signal killed it, that the decoder failed (:class:`DecoderFailure`)."""
        if self._stdin_closed or not data:
            return
        assert self._proc.stdin is not None
        try:
            if self._proc.stdin.is_closing():  # ffmpeg is gone; uvloop raises RuntimeError on a write
                raise BrokenPipeError("ffmpeg's stdin is closed")
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as e:
            if self._iterating:  # the iterator reads stdout to its end: only wait for the exit
                await self._proc.wait()
            else:
                await self._reap()
            raise self._exit_error() from e

    def _exit_error(self) -> DecodeError | DecoderFailure:
        code = self._proc.returncode
        if code is not None and code < 0:
            return DecoderFailure(f"ffmpeg was killed (signal {-code})")
        return DecodeError(self._reason())

    async def close(self) -> None:
        """No more input: close stdin so ffmpeg flushes what it holds and exits."""
        if self._stdin_closed:
            return
        self._stdin_closed = True
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._proc.stdin.close()
            await self._proc.stdin.wait_closed()

    async def __aiter__(self) -> AsyncIterator[np.ndarray]:
        assert self._proc.stdout is not None
        self._iterating = True
        rest = b""
        try:
            while chunk := await self._proc.stdout.read(_READ_BYTES):
                chunk = rest + chunk
                usable = len(chunk) // 4 * 4
                rest = chunk[usable:]
                if usable:
                    yield np.frombuffer(chunk[:usable], dtype="<f4").astype(np.float32)
        finally:
            self._iterating = False
        code = await self._proc.wait()
        await self._stderr_task
        if code != 0:
            raise self._exit_error()

    async def _reap(self) -> None:
        """Wait for ffmpeg's exit. Its stdout is read to the end first: asyncio's ``wait()``
        returns only once every pipe is closed, and a full pipe would never close."""
        assert self._proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while await self._proc.stdout.read(1 << 16):
                pass
        await self._proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._stderr_task

    async def aclose(self) -> None:
        """Kill ffmpeg if it still runs and reap it; safe to call more than once."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        await self._reap()


async def open_decoder(fmt: str, sample_rate: int) -> StreamDecoder:
    """The decoder for a session's declared ``format``."""
    if fmt in RAW_FORMATS + G711_FORMATS:
        return RawStreamDecoder(fmt, sample_rate)
    return await FfmpegStreamDecoder.start()


ENCODINGS: dict[str, list[str]] = {
    "webm": ["-c:a", "libopus", "-b:a", "32k", "-f", "webm"],
    "ogg": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "opus": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "mp3": ["-c:a", "libmp3lame", "-q:a", "4", "-f", "mp3"],
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
    "flac": ["-c:a", "flac", "-f", "flac"],
    "m4a": ["-c:a", "aac", "-b:a", "64k", "-movflags", "frag_keyframe+empty_moov", "-f", "ipod"],
    "mp4": ["-c:a", "aac", "-b:a", "64k", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4"],
}


def encode_audio(audio: np.ndarray, fmt: str, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode mono float32 audio into a container format named like a file extension."""
    if fmt not in ENCODINGS:
        raise ValueError(f"unknown audio format {fmt!r} (known: {', '.join(ENCODINGS)})")
    cmd = [
        find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error",
        "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-i", "pipe:0",
        *ENCODINGS[fmt], "pipe:1",
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=False)
    except OSError as e:
        raise DecoderFailure(f"cannot run ffmpeg ({cmd[0]}): {e}") from e
    if proc.returncode != 0:
        raise DecodeError(f"cannot encode {fmt}: {_ffmpeg_reason(proc.stderr.decode(errors='replace'))}")
    return proc.stdout
