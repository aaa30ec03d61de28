"""Live sessions as the server sees them, and a graceful shutdown that lets each one finish.

uvicorn's own shutdown (on SIGTERM/SIGINT) closes every open WebSocket with 1012 *before* the
app's lifespan shutdown runs, so a session could not send its ``final`` from there. The
:class:`ShutdownHook` therefore sits in front of uvicorn's signal handler: on the first signal it
asks every live session to stop (end its input, flush, send ``final``, close 1001), waits up to
the grace period, and only then hands the signal on to uvicorn. A second signal is handed on at
once (so Ctrl+C twice still means "now").
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"
WALL_LIMIT = "wall_limit"


class LiveConnection:
    """What the server keeps per live session: a way to ask it to stop, and to wait for it."""

    def __init__(self, session_id: str, client: str | None = None) -> None:
        self.session_id = session_id
        # The address counted by the per-client session limit (None: not counted — a backend
        # holding STT_TOKEN, or a peer of unknown address).
        self.client = client
        self.stop_reason: str | None = None
        self._stop = asyncio.Event()
        self._done = asyncio.Event()

    def request_stop(self, reason: str) -> None:
        """Ask the session to end its input and finish with a ``final``."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    async def stop_requested(self) -> str:
        await self._stop.wait()
        return self.stop_reason or SHUTDOWN

    def mark_done(self) -> None:
        self._done.set()

    async def done(self) -> None:
        await self._done.wait()


async def drain(connections: Iterable[LiveConnection], grace: float) -> int:
    """Stop every live session and wait up to ``grace`` seconds for them to close; returns how
    many were still open when the grace period ran out."""
    live = list(connections)
    if not live:
        return 0
    log.info("shutting down: letting %d live session(s) send their final (up to %g s)", len(live), grace)
    for connection in live:
        connection.request_stop(SHUTDOWN)
    waits = [asyncio.create_task(c.done()) for c in live]
    _, pending = await asyncio.wait(waits, timeout=grace or None)
    for task in pending:
        task.cancel()
    if pending:
        log.warning("shutting down: %d session(s) did not finish in %g s", len(pending), grace)
    return len(pending)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None


async def release_free_memory() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim``), off the event loop.

    Called when the last live session ends: sessions allocate and free many audio buffers, and
    glibc keeps freed memory in its per-thread arenas, so without this the process's RSS stays
    at its high-water mark and says little about what the server holds."""
    trim = _malloc_trim()
    if trim is not None:
        await asyncio.to_thread(trim, 0)


def make_fork_safe() -> bool:
    """Run numpy's BLAS (OpenBLAS) on one thread, so that spawning ffmpeg cannot freeze the server.

    Under uvloop (uvicorn's loop when installed) a subprocess is started with ``fork()``, which
    runs OpenBLAS's fork handler: it shuts OpenBLAS's worker threads down. If another thread is
    inside a threaded BLAS call at that moment (faster-whisper's feature extraction on the model
    thread), that call waits for the workers forever and the whole server stops answering
    (found by ``bench/soak.py``; ``tests/test_fork_safety.py`` reproduces it in seconds without
    this; ``child_process.py`` avoids the fork for ffmpeg itself, this covers any other fork).
    Single-threaded OpenBLAS has no workers to wait for; the matrix products it does here are
    small, and the model itself (CTranslate2) and the VAD (ONNX) keep their own threads.
    Returns False when ``threadpoolctl`` is missing (then nothing is changed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        log.warning("threadpoolctl is not installed: numpy's BLAS keeps its threads (a fork may hang)")
        return False
    threadpool_limits(limits=1, user_api="blas")
    return True


Handler = Callable[[int, "FrameType | None"], Any]


class ShutdownHook:
    """Runs ``before_exit`` on the first SIGTERM/SIGINT, then forwards the signal to the handler
    that was installed before (uvicorn's). Installs only over a Python-level handler in the main
    thread — elsewhere (tests' in-process clients, other servers) it stays out of the way."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, before_exit: Callable[[], Awaitable[object]]) -> None:
        self._before_exit = before_exit
        self._previous: dict[int, Handler] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._forwarded = False

    def install(self) -> bool:
        """Put the hook in front of the current handlers; False when it cannot."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self._loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                self._previous[sig] = previous
                signal.signal(sig, self._on_signal)
        return bool(self._previous)

    def uninstall(self) -> None:
        """Give the signals back to the handlers that were there before (if still ours)."""
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread between bytecodes; the work happens on the event loop.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._handle, sig, frame)

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain_then_forward(sig, frame))
        else:
            self._forward(sig, frame)

    async def _drain_then_forward(self, sig: int, frame: FrameType | None) -> None:
        try:
            await self._before_exit()
        finally:
            if not self._forwarded:
                self._forward(sig, frame)

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        self._forwarded = True
        previous = self._previous.get(sig)
        if previous is not None:
            previous(sig, frame)
