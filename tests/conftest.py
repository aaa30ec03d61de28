"""Shared fixtures: the project's LibriVox copy, a real server on a free port, audio helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "librivox"
sys.path.insert(0, str(ROOT))

from audio_decode import SAMPLE_RATE, decode_file  # noqa: E402


@dataclass(frozen=True)
class Utterance:
    name: str
    wav: Path
    text: str


def librivox_utterances() -> list[Utterance]:
    return [Utterance(w.stem, w, w.with_suffix(".txt").read_text().strip()) for w in sorted(DATA.glob("*.wav"))]


@pytest.fixture(scope="session")
def utterances() -> list[Utterance]:
    return librivox_utterances()


def join_utterances(utterances: list[Utterance], pause: float = 1.0) -> tuple[np.ndarray, str]:
    """Utterances joined with ``pause`` seconds of silence after each, and their reference text."""
    parts: list[np.ndarray] = []
    for u in utterances:
        parts += [decode_file(u.wav), np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)]
    return np.concatenate(parts), " ".join(u.text for u in utterances)


@pytest.fixture(scope="session")
def joined_speech(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """The five utterances joined with 1 s pauses (about 30 s) and their reference text."""
    return join_utterances(utterances)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/transcribe"

    def ffmpeg_children(self) -> list[int]:
        """PIDs of ffmpeg processes that are children of the server."""
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(self.process.pid)],
                             capture_output=True, text=True, check=False).stdout
        return [int(line.split()[0]) for line in out.splitlines() if "ffmpeg" in line]


def start_server(tmp: Path, env: dict[str, str] | None = None, timeout: float = 60) -> LiveServer:
    """Start ``uvicorn server:app`` on a free port and wait until /health answers 200."""
    port = free_port()
    log = tmp / f"server-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return LiveServer(proc, port, log)
        except OSError:
            time.sleep(0.1)  # polling interval while the server is not yet listening
    proc.kill()
    raise RuntimeError(f"server not ready in {timeout} s: {log.read_text()[-2000:]}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server (real model, real ffmpeg) shared by the end-to-end tests."""
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)
