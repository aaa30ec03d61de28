"""Shared fixtures: the project's LibriVox copy, a real server on a free port, audio helpers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "librivox"
sys.path.insert(0, str(ROOT))

from audio_decode import SAMPLE_RATE, decode_file  # noqa: E402
from devserver import RunningServer, free_port, stop_server  # noqa: E402, F401
from devserver import start_server as _start  # noqa: E402


@dataclass(frozen=True)
class Utterance:
    name: str
    wav: Path
    text: str


def librivox_utterances() -> list[Utterance]:
    wavs = sorted(DATA.glob("*.wav"))
    return [Utterance(w.stem, w, w.with_suffix(".txt").read_text().strip()) for w in wavs]


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


LiveServer = RunningServer


def start_server(tmp: Path, env: dict[str, str] | None = None, timeout: float = 60) -> LiveServer:
    """Start ``uvicorn server:app`` on a free port; returns once /health answers 200."""
    return _start(tmp / f"server-{time.monotonic_ns()}.log", env=env, timeout=timeout)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server (real model, real ffmpeg) shared by the end-to-end tests."""
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)


def parse_metrics(text: str) -> dict[str, float]:
    """A /metrics page parsed by prometheus_client: ``name{label="value",…}`` → value, every sample."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def run_isolated(script: str, hang: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``script`` (``{root}`` filled with the project's folder) in a child interpreter, so a
    hang fails the test by ``timeout`` (with the message ``hang``) instead of hanging pytest."""
    try:
        return subprocess.run(
            [sys.executable, "-c", script.format(root=str(ROOT))],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(hang)
