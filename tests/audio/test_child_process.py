"""child_process.ChildProcess: ffmpeg's way in and out, started without fork() — so it cannot
hang beside a threaded BLAS call even where numpy's BLAS keeps all its threads."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import io
import os
import signal
import subprocess

import pytest
import uvloop

from tests.support import run_isolated
from wirescribe.audio import child as child_module
from wirescribe.audio.child import ChildProcess

SCRIPT = """
import asyncio, sys, threading
import numpy as np
import uvloop
from wirescribe.audio.child import ChildProcess

stop = False

def blas():  # faster-whisper's mel filterbank product, over and over, on every BLAS thread
    a = np.random.rand(80, 201).astype(np.float32)
    b = np.random.rand(201, 3000).astype(np.float32)
    while not stop:
        a @ b

async def spawn(n):
    for _ in range(n):
        proc = await ChildProcess.start(["cat"], stdin=True)
        proc.stdin.write(b"ping")
        await proc.stdin.drain()
        proc.stdin.close()
        await proc.stdin.wait_closed()
        assert await proc.stdout.read(100) == b"ping"
        assert await proc.stdout.read(100) == b""
        assert await proc.wait() == 0

threading.Thread(target=blas, daemon=True).start()
uvloop.run(spawn(200))  # asyncio.create_subprocess_exec here hangs within a few spawns
stop = True
print("ok")
"""


def test_starting_children_beside_a_blas_call_under_uvloop_does_not_hang() -> None:
    pytest.importorskip("uvloop")
    done = run_isolated(SCRIPT, "starting children beside a BLAS call hung")
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_stdin_has_room_and_a_dead_child_refuses_input() -> None:
    async def scenario() -> tuple[int, int, bool]:
        child = await ChildProcess.start(["cat"], stdin=True)
        assert child.stdin is not None
        room = fcntl.fcntl(child.stdin._transport.get_extra_info("pipe").fileno(), fcntl.F_GETPIPE_SZ)  # type: ignore[union-attr]
        child.kill()
        code = await child.wait()
        refused = False
        for _ in range(100):  # the loop notices the closed pipe on a write or soon after
            if child.stdin.is_closing():
                refused = True
                break
            try:
                child.stdin.write(b"x" * 4096)
                await child.stdin.drain()
            except (ConnectionResetError, BrokenPipeError):
                refused = True
                break
            await asyncio.sleep(0.01)
        return room, code, refused

    room, code, refused = asyncio.run(scenario())
    assert room >= 256 * 1024  # as much as asyncio's socket pairs held, not a pipe's 64 KiB
    assert code == -signal.SIGKILL and refused


def test_a_child_that_cannot_start_is_an_oserror() -> None:
    async def scenario() -> None:
        await ChildProcess.start(["/nonexistent/ffmpeg"], stdin=False)

    with pytest.raises(OSError):
        asyncio.run(scenario())



class ClosedTwice:
    """Which pipes of a child were closed by their file object after their descriptor was
    closed already (the number may have been another's by then)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def wrap(self, name: str, stream: io.BufferedIOBase) -> io.BufferedIOBase:
        seen = self.seen
        kind = io.BufferedReader if isinstance(stream, io.BufferedReader) else io.BufferedWriter

        class Probe(kind):  # type: ignore[valid-type, misc]
            def close(self) -> None:
                if not self.closed:
                    try:
                        os.fstat(self.fileno())
                    except OSError:
                        seen.append(name)
                super().close()

        return Probe(stream.detach())


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_each_pipe_is_closed_once(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """uvloop hands a pipe's descriptor itself to libuv, which closes it, then closes the file
    object, which closes the same number again (MagicStack/uvloop#763): a descriptor another
    thread opened in between — another session's ffmpeg pipe, a socket — is closed instead
    ("cannot start ffmpeg: [Errno 9] Bad file descriptor", seen once in tests/cluster). Each
    pipe's file object must close a descriptor that is still its own."""
    probe = ClosedTwice()

    class Probed(subprocess.Popen):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[call-overload]
            for name in ("stdin", "stdout", "stderr"):
                if (stream := getattr(self, name)) is not None:
                    setattr(self, name, probe.wrap(name, stream))

    monkeypatch.setattr(child_module.subprocess, "Popen", Probed)

    async def main() -> None:
        child = await ChildProcess.start(["cat"], stdin=True)
        assert child.stdin is not None
        child.stdin.write(b"ping")
        await child.stdin.drain()
        child.stdin.close()
        await child.stdin.wait_closed()
        assert await child.stdout.read() == b"ping" and await child.stderr.read() == b""
        assert await child.wait() == 0
        for _ in range(3):  # the loop finishes closing the transports
            await asyncio.sleep(0.01)
        del child
        gc.collect()

    uvloop.run(main()) if loop == "uvloop" else asyncio.run(main())
    assert probe.seen == []
