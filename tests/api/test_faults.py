"""Faults against a real server: ffmpeg killed or hung mid-session, and shutdown mid-stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import websockets

from tests.support import LiveServer, Utterance, join_utterances, start_server, stop_server
from tests.support.ws import assert_well_formed, exchange, final_of, wait_until_idle
from wirescribe import devserver
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.client import Received, StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e

DECODE_TIMEOUT = 2.0
PING = 1.0  # uvicorn's keepalive: ping every second, drop a peer that does not answer in a second
EOF_FRAME = '{"type": "eof"}'


@pytest.fixture(scope="module")
def fault_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = devserver.start_server(
        tmp_path_factory.mktemp("faults") / "server.log",
        env={"STT_DECODE_TIMEOUT": str(DECODE_TIMEOUT)},
        uvicorn_args=["--ws-ping-interval", str(PING), "--ws-ping-timeout", str(PING)],
    )
    yield server
    stop_server(server)


@pytest.fixture
def server(fault_server: LiveServer) -> LiveServer:
    state = wait_until_idle(fault_server)
    assert state["sessions"] == 0 and state["ffmpeg_children"] == []
    return fault_server


async def new_ffmpeg_child(server: LiveServer, known: set[int], timeout: float = 10) -> int:
    """A session's ffmpeg: a child of the server not in ``known`` that is still there 0.3 s later
    (the first session also makes a short-lived ``ffmpeg -version`` child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = set(server.ffmpeg_children()) - known
        await asyncio.sleep(0.3)  # polling the process table for the session's ffmpeg
        lasting = fresh & set(server.ffmpeg_children())
        if len(lasting) == 1:
            return lasting.pop()
    raise AssertionError("no new ffmpeg child appeared")


async def doomed_session(
    server: LiveServer, chunks: list[bytes], known: set[int], sig: signal.Signals, then: str
) -> tuple[StreamResult, float]:
    """Stream a few WebM slices, send ``sig`` to this session's ffmpeg, then either keep feeding
    (``flood``) or send eof (``eof``); collect replies until the server closes."""
    result = StreamResult()
    async with websockets.connect(server.ws, max_size=None) as ws:
        result.messages.append(Received(json.loads(await ws.recv()), 0.0))
        for chunk in chunks[:4]:
            await ws.send(chunk)
        pid = await new_ffmpeg_child(server, known)
        os.kill(pid, sig)
        hit = time.perf_counter()

        async def feed() -> None:
            try:
                for chunk in chunks[4:] if then == "flood" else []:
                    await ws.send(chunk)
                await ws.send(EOF_FRAME)
            except websockets.ConnectionClosed:
                pass

        feeding = asyncio.create_task(feed())
        try:
            async for raw in ws:
                result.messages.append(Received(json.loads(raw), time.perf_counter() - hit))
        except websockets.ConnectionClosed:
            pass
        feeding.cancel()
    result.close_code = ws.close_code
    return result, time.perf_counter() - hit


def test_ffmpeg_killed_ends_only_its_own_session(server: LiveServer, utterances: list[Utterance]) -> None:
    audio, reference = join_utterances(utterances[:1], pause=0.5)

    async def main() -> tuple[StreamResult, StreamResult]:
        bystander = asyncio.create_task(stream(server.ws, webm_slices(audio), interval=0.25, timeout=60))
        known = {await new_ffmpeg_child(server, set())}
        doomed, _ = await doomed_session(server, webm_slices(audio), known, signal.SIGKILL, "flood")
        return doomed, await bystander

    doomed, bystander = asyncio.run(asyncio.wait_for(main(), 90))
    assert [m["code"] for m in doomed.errors] == ["internal"], (doomed.messages, doomed.close_code)
    assert doomed.close_code == 1011 and doomed.final is None
    assert "Traceback" not in json.dumps(doomed.errors)
    assert_well_formed(bystander)
    assert bystander.close_code == 1000 and bystander.errors == []
    assert word_error_rate(reference, final_of(bystander)["text"]) <= 0.2, final_of(bystander)["text"]
    assert wait_until_idle(server)["ffmpeg_children"] == []


def test_client_leaving_before_ready_leaves_no_ffmpeg(server: LiveServer) -> None:
    """A client that closes as soon as it has connected (before the session ever runs): the
    ffmpeg started for it is still reaped."""

    async def hit_and_run() -> None:
        for _ in range(20):
            await exchange(server.ws, [b"\x1aE\xdf\xa3"], close=True)

    asyncio.run(hit_and_run())
    state = wait_until_idle(server)
    assert state["sessions"] == 0 and state["ffmpeg_children"] == []


def test_dead_peer_is_noticed_by_the_keepalive(server: LiveServer, utterances: list[Utterance]) -> None:
    """A peer that stops answering (here: stops reading, so it never sees a ping) is dropped by
    the WebSocket keepalive within ping interval + timeout, long before the 60 s idle timeout."""
    audio, _ = join_utterances(utterances[:1], pause=0.2)

    async def go_dark() -> float:
        async with websockets.connect(server.ws, ping_interval=None) as ws:
            await ws.recv()  # ready
            for chunk in webm_slices(audio[: 2 * SAMPLE_RATE]):
                await ws.send(chunk)
            ws.transport.pause_reading()  # from here on: no reads, so no pongs
            dark = time.perf_counter()
            while wait_until_idle(server, timeout=0)["sessions"]:
                assert time.perf_counter() - dark < 20, "the server kept the dead peer's session"
                await asyncio.sleep(0.1)
            took = time.perf_counter() - dark
            ws.transport.abort()  # not reading: a closing handshake would only time out
            return took

    gone_after = asyncio.run(go_dark())
    assert gone_after < 2 * PING + 3, gone_after
    assert wait_until_idle(server)["ffmpeg_children"] == []


@pytest.mark.parametrize("then", ["eof", "flood"])
def test_hung_ffmpeg_is_noticed_and_reaped(
    server: LiveServer, joined_speech: tuple[np.ndarray, str], then: str
) -> None:
    """SIGSTOP: ffmpeg neither reads nor writes. Feeding on (its pipe fills) or eof (it never
    finishes) must end the session with internal/1011 within the decode timeout, not hang it."""
    audio, _ = joined_speech
    chunks = webm_slices(np.concatenate([audio, audio]), slice_seconds=1.0)  # ~60 s, ~250 KB
    doomed, took = asyncio.run(
        asyncio.wait_for(doomed_session(server, chunks, set(), signal.SIGSTOP, then), 60)
    )
    assert [m["code"] for m in doomed.errors] == ["internal"], doomed.errors
    assert doomed.close_code == 1011
    assert took < DECODE_TIMEOUT + 8, took
    assert wait_until_idle(server)["ffmpeg_children"] == []  # the stopped ffmpeg was killed and reaped
    after = asyncio.run(stream(server.ws, webm_slices(audio[: 4 * SAMPLE_RATE]), interval=None))
    assert_well_formed(after)
    assert after.close_code == 1000 and "dashwood" in final_of(after)["text"].lower()


def test_shutdown_sends_final_for_audio_so_far_then_1001(
    tmp_path: Path, joined_speech: tuple[np.ndarray, str]
) -> None:
    """SIGTERM mid-stream: the live session gets a final with all the audio it had received and
    the words spoken so far, then 1001; the server exits once it is done."""
    audio, _ = joined_speech
    server = start_server(tmp_path)
    chunks = webm_slices(audio[: 20 * SAMPLE_RATE])  # ~0.25 s slices, paced in real time
    signal_at = 6.1  # slice i is sent at i * 0.25 s: slices 0-24 before the signal

    async def main() -> StreamResult:
        async def terminate_later() -> None:
            await asyncio.sleep(signal_at)
            server.process.send_signal(signal.SIGTERM)

        killer = asyncio.create_task(terminate_later())
        result = await stream(server.ws, chunks, interval=0.25, timeout=30)
        await killer
        return result

    try:
        result = asyncio.run(asyncio.wait_for(main(), 60))
        code = server.process.wait(20)
    finally:
        stop_server(server)
    assert_well_formed(result)
    assert result.close_code == 1001 and result.errors == []
    final = final_of(result)
    surely_sent = decoded_seconds(b"".join(chunks[:24]), tmp_path)  # sent 0.35 s before the signal
    at_most_sent = decoded_seconds(b"".join(chunks[:27]), tmp_path)
    assert surely_sent <= final["audio_seconds"] <= at_most_sent, (surely_sent, final, at_most_sent)
    spoken = "and mister john dashwood had then leisure to consider how much there might be"
    assert word_error_rate(spoken, final["text"][: len(spoken) + 10]) <= 0.2, final["text"]
    assert code in (0, -signal.SIGTERM)
    log = server.log.read_text()
    assert "did not finish" not in log and "Traceback" not in log


def decoded_seconds(encoded: bytes, tmp: Path) -> float:
    path = tmp / "prefix.webm"
    path.write_bytes(encoded)
    return len(decode_file(path)) / SAMPLE_RATE
