"""Chaos: many sessions cut at random moments (TCP reset, close without eof, a reader that stalls,
a half-sent frame). Afterwards the server holds nothing: no session, no ffmpeg child, memory back
where it was after a warm-up session, and a normal session works."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import websockets
from websockets.protocol import State

from tests.support import LiveServer, start_server, stop_server
from tests.support.ws import assert_well_formed, final_of, rss_mb, wait_until_idle
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import pcm16_slices, stream, webm_slices

pytestmark = pytest.mark.e2e

SESSIONS = 200
CONCURRENCY = 10
WARMUP_SESSIONS = 20
# RSS allowed after the chaos: 10 % over the warmed-up figure plus a slack for native caches.
# Measured (server RSS, MiB): rounds of 100 such sessions 226 -> 256, 304, 261, 265, 251, 247 and
# 288 -> 339, 275 -> 311, 288 -> 308; of 200: 302 -> 323, 281 -> 332, 277 -> 336. It swings by up
# to ~60 MiB with how the model's, ONNX's and glibc's buffers were last used, not with the number
# of sessions; no Python object outlives its session (counted with gc). The allowance is ~80 MiB
# at a ~300 MiB baseline. A server wrapped to keep 0.5 MiB per WebSocket session on purpose passed
# one round of 100 in two (296 -> 373, 303 -> 392) and fails rounds of 200 (337 -> 436,
# 295 -> 433): 100 MiB is over the allowance whatever the swing. The test checks that this holds.
RSS_TOLERANCE = 0.10
RSS_SLACK_MB = 50.0
CAUGHT_LEAK_MB = 0.5  # per session: a leak this large fails the test
KINDS = ("abort", "close", "stall", "half_frame")


@pytest.fixture(scope="module")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # Room for 10 clients plus sessions the server has not yet seen go: every session is chaos, not busy.
    env = {"STT_MAX_SESSIONS": "32", "STT_MAX_SESSIONS_PER_CLIENT": "0"}  # all from 127.0.0.1
    server = start_server(tmp_path_factory.mktemp("chaos"), env=env)
    yield server
    stop_server(server)


@dataclass(frozen=True)
class Plan:
    kind: str
    fmt: str
    start: int  # first slice (WebM always starts at 0: its header comes first)
    cut_after: float  # seconds of sending before the cut


async def chaotic_session(url: str, plan: Plan, slices: dict[str, list[bytes]]) -> str:
    """One session that ends badly on purpose; returns what happened, for the tally."""
    chunks = slices[plan.fmt][plan.start :]
    interval = 0.05  # 0.25 s WebM slices / 0.1 s PCM frames, a few times real time
    async with websockets.connect(f"{url}?format={plan.fmt}", max_size=None, open_timeout=20) as ws:
        json.loads(await ws.recv())  # ready
        if plan.kind == "stall":
            ws.transport.pause_reading()  # never reads a reply again
        started = time.perf_counter()
        for chunk in chunks:
            if time.perf_counter() - started >= plan.cut_after:
                break
            await ws.send(chunk)
            await asyncio.sleep(interval)
        if plan.kind == "abort":
            ws.transport.abort()  # TCP reset: no close frame, no eof
        elif plan.kind == "close":
            await ws.close()  # a clean close, but no eof
        elif plan.kind == "stall":
            await ws.send('{"type": "eof"}')
            await asyncio.sleep(0.5)  # the final waits in buffers nobody reads
            ws.transport.abort()
        elif ws.state is State.OPEN:  # half_frame: a header announcing 4 KiB, a few bytes, then gone
            ws.transport.write(bytes([0x82, 0xFE, 0x10, 0x00, 1, 2, 3, 4]) + b"\x00" * 100)
            await asyncio.sleep(0.05)
            ws.transport.abort()
        else:
            return f"{plan.kind}, server closed {ws.close_code}"
    return plan.kind


async def run_chaos(url: str, plans: list[Plan], slices: dict[str, list[bytes]]) -> dict[str, int]:
    gate = asyncio.Semaphore(CONCURRENCY)
    tally: dict[str, int] = {}

    async def one(plan: Plan) -> None:
        async with gate:
            try:
                kind = await asyncio.wait_for(chaotic_session(url, plan, slices), 60)
            except websockets.ConnectionClosed as e:  # the server ended it first (busy…)
                kind = f"{plan.kind}, server closed {e.rcvd.code if e.rcvd else None}"
            tally[kind] = tally.get(kind, 0) + 1

    await asyncio.gather(*(one(p) for p in plans))
    return tally


def settled_rss(pid: int) -> float:
    """The server's RSS once idle: the lowest of a few readings (it returns freed heap to the OS
    in a thread when its last session ends, a moment after /health shows 0 sessions)."""
    readings = []
    for _ in range(5):
        readings.append(rss_mb(pid))
        time.sleep(0.1)  # sampling memory, not waiting for readiness
    return min(readings)


def plans(rng: random.Random, count: int, slices: dict[str, list[bytes]]) -> list[Plan]:
    formats = [rng.choice(["auto", "pcm16"]) for _ in range(count)]
    return [
        Plan(
            rng.choice(KINDS),
            f,
            rng.randrange(len(slices[f]) // 2) if f == "pcm16" else 0,
            rng.uniform(0, 2.5),
        )
        for f in formats
    ]


def test_sessions_cut_at_random_leave_nothing_behind(
    chaos_server: LiveServer, joined_speech: tuple[np.ndarray, str]
) -> None:
    """Warm-up: one whole session and a small round of the same chaos (the model's and ONNX's
    buffers, the allocator's arenas and the worker threads settle at their working size). Then
    SESSIONS more; afterwards the RSS must be back near the warmed-up figure (see RSS_SLACK_MB)."""
    server = chaos_server
    audio, _ = joined_speech
    slices = {"auto": webm_slices(audio), "pcm16": pcm16_slices(audio, 0.1)}
    warm = asyncio.run(stream(server.ws, webm_slices(audio[: 8 * SAMPLE_RATE]), interval=None))
    assert_well_formed(warm)
    asyncio.run(run_chaos(server.ws, plans(random.Random(1), WARMUP_SESSIONS, slices), slices))
    assert wait_until_idle(server, timeout=30)["sessions"] == 0
    baseline = settled_rss(server.pid)
    allowance = baseline * RSS_TOLERANCE + RSS_SLACK_MB
    assert allowance < SESSIONS * CAUGHT_LEAK_MB, f"a leak of {CAUGHT_LEAK_MB} MiB per session would pass"

    started = time.perf_counter()
    tally = asyncio.run(run_chaos(server.ws, plans(random.Random(5), SESSIONS, slices), slices))
    took = time.perf_counter() - started

    state = wait_until_idle(server, timeout=30)
    after = settled_rss(server.pid)
    print(f"\nchaos: {SESSIONS} sessions in {took:.1f} s, {tally}; RSS {baseline:.0f} -> {after:.0f} MiB")
    assert sum(tally.values()) == SESSIONS
    assert state["sessions"] == 0 and state["ffmpeg_children"] == []
    assert after <= baseline + allowance, (baseline, after)
    assert took < 120

    normal = asyncio.run(stream(server.ws, webm_slices(audio[: 8 * SAMPLE_RATE]), interval=None))
    assert_well_formed(normal)
    assert normal.close_code == 1000 and "dashwood" in final_of(normal)["text"].lower()
    log = server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
