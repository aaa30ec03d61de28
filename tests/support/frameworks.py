"""Voice-agent frameworks (LiveKit Agents, Pipecat) driving a real server, from the suite's side.

The frameworks live in a virtual environment of their own, ``.venv-frameworks`` (``make test``
installs requirements-frameworks.txt there; that file says why it is not ``.venv``): each run
is a child interpreter of that environment running :mod:`tests.support.frameworks_clients`,
whose events come back as JSON lines. The server is the project's, started as a user starts it.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.servers import LiveServer, start_server
from tests.support.speech import ROOT

FRAMEWORKS_PYTHON = ROOT / ".venv-frameworks" / "bin" / "python"
CLIENTS = Path(__file__).with_name("frameworks_clients.py")
WINDOW = 6.0  # STT_AUDIO_RATE_WINDOW of the frameworks' server: its trickle floor judges within seconds


@dataclass(frozen=True)
class Event:
    at: float  # wall seconds since the client started streaming
    audio_at: float  # seconds of audio sent by then
    type: str
    text: str


@dataclass(frozen=True)
class FrameworkRun:
    events: tuple[Event, ...]
    log: str  # the framework's own logging (stderr), for failure messages

    def of(self, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.type in kinds]

    @property
    def text(self) -> str:
        return " ".join(e.text.strip() for e in self.of("final"))

    @property
    def problems(self) -> list[Event]:
        """Errors the framework reported, a stream that failed, a turn left open at the end."""
        return self.of("error", "stream_failed", "still_open")


def start_frameworks_server(tmp: Path) -> LiveServer:
    """The server as a user runs it, but for: a short trickle window (STT_AUDIO_RATE_WINDOW), so
    the floor judges these clients within the test; no per-address cap (every test comes from
    127.0.0.1); the fixed session limit, so a measured-load refusal on this busy test machine
    does not stand in the way of what is tested here (admission has tests of its own)."""
    env = {"STT_AUDIO_RATE_WINDOW": f"{WINDOW:g}", "STT_MAX_SESSIONS_PER_CLIENT": "0"}
    return start_server(tmp, env={**env, "STT_ADMISSION": "fixed"})


def drive(
    client: str, server: LiveServer, audio: np.ndarray, tmp: Path, options: dict[str, Any] | None = None,
    timeout: float = 90,
) -> FrameworkRun:  # fmt: skip
    """Stream ``audio`` (16 kHz float32) through ``client`` (``livekit-deepgram``,
    ``livekit-openai``, ``pipecat-deepgram``, ``pipecat-openai``) to ``server`` in real time."""
    if not FRAMEWORKS_PYTHON.exists():
        pytest.skip("the frameworks' environment is missing: `make test` (or `make frameworks`) installs it")
    raw = tmp / f"{client}.raw"
    (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tofile(raw)
    args = [str(FRAMEWORKS_PYTHON), str(CLIENTS), client, server.http, str(raw), json.dumps(options or {})]
    try:
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{client} did not finish in {timeout:g} s: {e.stdout!r} {e.stderr!r}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines and lines[-1]["type"] == "done", (done.stdout, done.stderr[-3000:])
    events = tuple(Event(d["at"], d["audio_at"], d["type"], d["text"]) for d in lines[:-1])
    return FrameworkRun(events, done.stderr)
