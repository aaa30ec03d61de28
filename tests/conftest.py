"""Shared fixtures: the project's LibriVox copy and a real server on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.support import (
    LiveServer,
    Utterance,
    join_utterances,
    librivox_utterances,
    start_server,
    stop_server,
)
from wirescribe.audio.decode import decode_file


@pytest.fixture(scope="session")
def utterances() -> list[Utterance]:
    return librivox_utterances()


@pytest.fixture(scope="session")
def speech(utterances: list[Utterance]) -> np.ndarray:
    """About 7 s of real read speech, 16 kHz mono float32."""
    return decode_file(utterances[0].wav)


@pytest.fixture(scope="session")
def joined_speech(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """The five utterances joined with 1 s pauses (about 30 s) and their reference text."""
    return join_utterances(utterances)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server (real model, real ffmpeg) shared by the end-to-end tests."""
    # Every test connects from 127.0.0.1 and some open several sessions at once, right after
    # others closed theirs: the per-address limit has tests of its own (tests/api/test_costs.py).
    server = start_server(tmp_path_factory.mktemp("server"), env={"STT_MAX_SESSIONS_PER_CLIENT": "0"})
    yield server
    stop_server(server)
