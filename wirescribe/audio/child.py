"""A child process with pipes on the running event loop, started without ``fork()``.

``asyncio.create_subprocess_exec`` under uvloop (uvicorn's loop whenever it is installed) starts
the child with ``fork()``, which runs every library's fork handlers in the parent first.
OpenBLAS's handler stops its thread pool, and when another thread is inside an OpenBLAS call at
that moment — the model's mel spectrogram, on the scheduler's thread — it never returns: the
event loop blocks for good and the whole server with it (reproduced: uvloop spawning
``/bin/true`` beside a thread doing ``numpy`` matrix products hangs within a few spawns).
:class:`subprocess.Popen` starts children with ``vfork``/``posix_spawn``, which run no fork
handlers; the pipes are then handed to the loop. :class:`ChildProcess` offers the part of
:class:`asyncio.subprocess.Process` the decoder uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Sequence
from typing import IO, Any, cast

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

_PIPE_BYTES = 256 * 1024


class PipeWriter(asyncio.Protocol):
    """The child's stdin: ``write``, ``drain`` (flow control), ``close``, ``wait_closed``."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._paused = False
        self._waiters: list[asyncio.Future[None]] = []
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no WriteTransport subclass

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake(exc or ConnectionResetError("the child's stdin is closed"))

    def _wake(self, exc: Exception | None) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        self._waiters.clear()

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the pipe is full; :class:`ConnectionResetError` once the child closed it."""
        if self._lost.done():
            raise ConnectionResetError("the child's stdin is closed")
        if self._paused:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def is_closing(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._lost)


class ChildProcess:
    """A running child: ``stdin`` (a :class:`PipeWriter` or None), ``stdout`` and ``stderr``
    (:class:`asyncio.StreamReader`), ``pid``, ``returncode``, ``kill()``, ``wait()``."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: PipeWriter | None,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
    ) -> None:
        self._popen = popen
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr

    @classmethod
    async def start(cls, cmd: Sequence[str], *, stdin: bool) -> ChildProcess:
        """Start ``cmd`` with stdout and stderr piped, stdin piped or ``/dev/null``;
        :class:`OSError` if it cannot be started."""
        loop = asyncio.get_running_loop()
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            stdout = await _reader(loop, popen.stdout)
            stderr = await _reader(loop, popen.stderr)
            writer = None
            if stdin:
                assert popen.stdin is not None
                _grow(popen.stdin)
                _, writer = await loop.connect_write_pipe(PipeWriter, _for_loop(loop, popen.stdin, "wb"))
        except BaseException:
            popen.kill()
            popen.wait()
            raise
        return cls(popen, writer, stdout, stderr)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited (negative: killed by that signal)."""
        return self._popen.poll()

    def kill(self) -> None:
        self._popen.kill()

    async def wait(self) -> int:
        """Wait for the exit without a thread: the child is polled, 1 ms apart at first, then
        up to 50 ms (it is awaited once its stdout has ended, when it is about to exit)."""
        delay = 0.001
        while (code := self._popen.poll()) is None:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return code


def _grow(pipe: IO[bytes]) -> None:
    """Give the pipe the room of the socket pair asyncio's subprocess transports use (~200 KB,
    seconds of compressed audio) instead of 64 KiB, so a child that pauses briefly does not
    stall the writer at once. Linux only; elsewhere the default stays."""
    setsize = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if setsize is not None:
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(pipe.fileno(), setsize, _PIPE_BYTES)


async def _reader(loop: asyncio.AbstractEventLoop, pipe: IO[bytes] | None) -> asyncio.StreamReader:
    assert pipe is not None
    reader = asyncio.StreamReader()
    protocol: Any = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, _for_loop(loop, pipe, "rb"))
    return reader


def _for_loop(loop: asyncio.AbstractEventLoop, pipe: IO[bytes], mode: str) -> IO[bytes]:
    """The pipe as the loop's transport should own it, so that its descriptor is closed once.

    uvloop hands the descriptor itself to libuv, which closes it, and then closes the file
    object too, which closes the same number again (MagicStack/uvloop#763, open): a descriptor
    another thread opened in between — another session's ffmpeg pipe, a socket, a model file —
    is closed instead ("cannot start ffmpeg: [Errno 9] Bad file descriptor", seen once in
    tests/cluster). So uvloop gets a duplicate in a file object that never closes it (libuv
    does, once), and the original is closed here, at once. asyncio's own transports close the
    file object they are given, and only that: they get the original."""
    if not type(loop).__module__.startswith("uvloop"):
        return pipe
    duplicate = os.dup(pipe.fileno())
    pipe.close()
    return cast(IO[bytes], open(duplicate, mode, buffering=0, closefd=False))
