"""Start the real server in a subprocess on a free port and wait until ``/health`` says ready.

Shared by the end-to-end tests, ``test_transcription.py`` and the benchmarks, so every one of
them starts the server the same way: ``uvicorn`` as a user would, readiness by polling, never
by sleeping a fixed time.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # a checkout: the directory with server.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/transcribe"

    @property
    def pid(self) -> int:
        return self.process.pid

    def ffmpeg_children(self) -> list[int]:
        """PIDs of ffmpeg processes that are children of the server."""
        out = subprocess.run(
            ["ps", "-o", "pid=,comm=", "--ppid", str(self.process.pid)],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        return [int(line.split()[0]) for line in out.splitlines() if "ffmpeg" in line]


def start_server(
    log: Path,
    *,
    app: list[str] | None = None,
    uvicorn_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    root: Path = ROOT,
    python: str = sys.executable,
) -> RunningServer:
    """``python -m uvicorn server:app`` (or ``app``) run from ``root`` (another checkout for a
    before/after comparison) on a free loopback port; returns once ``/health`` answers 200,
    raises with the log's tail if it exits or is not ready in time."""
    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "uvicorn", *(app or ["server:app"]),
           "--host", "127.0.0.1", "--port", str(port), *(uvicorn_args or [])]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=root, stdout=log.open("wb"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return RunningServer(proc, port, log)
        except OSError:
            time.sleep(0.1)  # polling interval while the server is not yet listening
    proc.kill()
    proc.wait()
    raise RuntimeError(f"server not ready in {timeout} s: {log.read_text()[-2000:]}")


def stop_server(server: RunningServer, timeout: float = 15) -> None:
    """SIGTERM (a graceful uvicorn shutdown), then SIGKILL if it does not exit in time."""
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
