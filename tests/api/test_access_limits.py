"""Access and limits against a real server started with strict settings: token, origins, unknown
parameters, idle timeout, wall-clock limit, audio rate limit, session limit, slow consumers."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
import websockets

from tests.support import LiveServer, Utterance, join_utterances, start_server, stop_server
from tests.support.ws import assert_well_formed, exchange, final_of, health, wait_until_idle
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import pcm16_slices

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-Token_42"
ORIGIN = "https://app.example"
IDLE, WALL, RATE, BURST, SEND_TIMEOUT = 1.5, 6.0, 2.0, 2.0, 2.0
EOF_FRAME = '{"type": "eof"}'


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("guarded"),
        env={
            "STT_TOKEN": TOKEN,
            "STT_ALLOWED_ORIGINS": f"{ORIGIN}, http://localhost:3000",
            "STT_IDLE_TIMEOUT": str(IDLE),
            "STT_MAX_SESSION_WALL_SECONDS": str(WALL),
            "STT_MAX_AUDIO_RATE": str(RATE),
            "STT_AUDIO_BURST_SECONDS": str(BURST),
            "STT_SEND_TIMEOUT": str(SEND_TIMEOUT),
            "STT_MAX_SESSIONS": "1",
        },
    )
    yield server
    stop_server(server)


@pytest.fixture
def server(guarded_server: LiveServer) -> LiveServer:
    """The guarded server with no session left over from the test before (it allows one)."""
    assert wait_until_idle(guarded_server)["sessions"] == 0
    return guarded_server


@pytest.fixture(scope="module")
def short_speech(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """'he was not an ill disposed young man' (about 3.4 s with its pause)."""
    return join_utterances(utterances[1:2], pause=0.4)


def authed(server: LiveServer, query: str = "") -> str:
    return f"{server.ws}?token={TOKEN}" + (f"&{query}" if query else "")


@pytest.mark.parametrize(
    ("query", "headers"),
    [("", None), ("?token=wrong", None), ("?token=", None), ("", {"Authorization": "Bearer wrong"}),
     ("", {"Authorization": f"Basic {TOKEN}"}), (f"?token={TOKEN[:-1]}", None)],
)  # fmt: skip
def test_missing_or_wrong_token_is_refused_before_audio(
    server: LiveServer, query: str, headers: dict[str, str] | None, short_speech: tuple[np.ndarray, str]
) -> None:
    audio, _ = short_speech
    frames: list[bytes | str] = [*pcm16_slices(audio, 0.1), EOF_FRAME]
    result = asyncio.run(exchange(server.ws + query, frames, headers=headers))
    assert [m["code"] for m in result.errors] == ["unauthorized"]
    assert [r.message["type"] for r in result.messages] == ["error"]  # no ready, nothing transcribed
    assert result.close_code == 1008
    assert TOKEN not in json.dumps(result.errors)


def test_token_in_query_or_bearer_header_is_accepted(
    server: LiveServer, short_speech: tuple[np.ndarray, str]
) -> None:
    audio, _ = short_speech
    frames: list[bytes | str] = [*pcm16_slices(audio, 0.1), EOF_FRAME]
    for url, headers in [(authed(server, "format=pcm16"), None),
                         (server.ws + "?format=pcm16", {"Authorization": f"Bearer {TOKEN}"})]:  # fmt: skip
        result = asyncio.run(exchange(url, frames, headers=headers))
        assert_well_formed(result)
        assert result.close_code == 1000 and "young man" in final_of(result)["text"].lower()
        wait_until_idle(server)
    assert TOKEN not in server.log.read_text()  # the query token is redacted from uvicorn's log


@pytest.mark.parametrize("origin", ["https://evil.example", "http://app.example", "null"])
def test_websocket_from_a_foreign_origin_is_refused(server: LiveServer, origin: str) -> None:
    result = asyncio.run(exchange(authed(server), [EOF_FRAME], origin=origin))
    assert [m["code"] for m in result.errors] == ["unauthorized"]
    assert "origin" in result.errors[0]["message"]
    assert result.close_code == 1008


@pytest.mark.parametrize("origin", [ORIGIN, "http://localhost:3000", None])
def test_listed_origins_and_non_browser_clients_are_accepted(server: LiveServer, origin: str | None) -> None:
    result = asyncio.run(exchange(authed(server), [EOF_FRAME], origin=origin))
    assert [r.message["type"] for r in result.messages] == ["ready", "final"]
    assert result.close_code == 1000
    wait_until_idle(server)


def test_unknown_parameters_load_nothing(server: LiveServer, short_speech: tuple[np.ndarray, str]) -> None:
    """A session chooses among the loaded models only: ?model=/etc/passwd is refused (nothing is
    loaded for it), and the other parameters that name files or devices are unknown, ignored."""
    audio, _ = short_speech
    refused = asyncio.run(exchange(authed(server, "format=pcm16&model=/etc/passwd"), [EOF_FRAME]))
    assert refused.close_code == 1008 and "is not loaded here" in refused.messages[0].message["message"]
    query = "format=pcm16&model_path=/etc/passwd&device=cuda&compute_type=float32"
    result = asyncio.run(exchange(authed(server, query), [*pcm16_slices(audio, 0.1), EOF_FRAME]))
    assert_well_formed(result)
    assert result.messages[0].message["model"] == "tiny.en"
    assert "young man" in final_of(result)["text"].lower()
    state = health(server)
    assert (state["model"], state["device"], state["compute_type"]) == ("tiny.en", "cpu", "int8")
    mentions = [line for line in server.log.read_text().splitlines() if "passwd" in line]
    assert mentions and all('"WebSocket /ws/transcribe?' in line for line in mentions)  # the access log only


def test_idle_timeout_ends_with_timeout_then_final(
    server: LiveServer, short_speech: tuple[np.ndarray, str]
) -> None:
    audio, _ = short_speech

    async def go_quiet() -> tuple[list[dict[str, object]], int | None, float]:
        async with websockets.connect(authed(server, "format=pcm16")) as ws:
            await ws.recv()  # ready
            for chunk in pcm16_slices(audio[: SAMPLE_RATE * 2], 0.1):
                await ws.send(chunk)
            quiet_from = time.perf_counter()
            replies = [json.loads(m) async for m in ws]  # until the server closes
            return replies, ws.close_code, time.perf_counter() - quiet_from

    replies, code, took = asyncio.run(asyncio.wait_for(go_quiet(), 30))
    kinds = [m["type"] for m in replies]
    assert kinds[-1] == "final" and [m["code"] for m in replies if m["type"] == "error"] == ["timeout"]
    assert code == 1000
    assert replies[-1]["audio_seconds"] == pytest.approx(2.0, abs=0.05)
    assert IDLE <= took < IDLE + 5


def test_wall_clock_limit_ends_with_final(server: LiveServer, joined_speech: tuple[np.ndarray, str]) -> None:
    audio, _ = joined_speech
    frames = pcm16_slices(audio[: 12 * SAMPLE_RATE], 0.1)  # 12 s at real time; the limit is 6 s
    result = asyncio.run(exchange(authed(server, "format=pcm16"), frames, interval=0.1))
    assert_well_formed(result)
    assert result.close_code == 1000 and result.errors == []
    assert WALL - 0.5 < final_of(result)["audio_seconds"] < WALL + 1.0
    assert WALL <= result.messages[-1].at < WALL + 5
    assert "dashwood" in final_of(result)["text"].lower()


def test_fast_sender_is_held_to_the_audio_rate(
    server: LiveServer, joined_speech: tuple[np.ndarray, str]
) -> None:
    """6 s of audio as fast as possible: the first 2 s (the burst) go at once, the rest at 2x
    real time, by backpressure; nothing is refused and nothing is lost."""
    audio, _ = joined_speech
    seconds = 6.0
    frames: list[bytes | str] = [*pcm16_slices(audio[: int(seconds * SAMPLE_RATE)], 0.1), EOF_FRAME]
    result = asyncio.run(exchange(authed(server, "format=pcm16"), frames))
    assert_well_formed(result)
    assert result.errors == [] and result.close_code == 1000
    assert final_of(result)["audio_seconds"] == pytest.approx(seconds, abs=0.05)
    final_at = result.messages[-1].at
    assert final_at >= (seconds - BURST) / RATE - 0.3, final_at
    transcripts = [r for r in result.messages if r.message["type"] == "transcript"]
    assert transcripts  # decoded audio never runs ahead of burst + rate * elapsed:
    for r in transcripts:
        assert r.message["audio_seconds"] <= BURST + RATE * r.at + 0.3, (r.at, r.message["audio_seconds"])


def test_session_limit_refuses_with_busy(server: LiveServer) -> None:
    async def main() -> None:
        async with websockets.connect(authed(server)) as first:
            assert json.loads(await first.recv())["type"] == "ready"
            second = await exchange(authed(server), [EOF_FRAME])
            assert [m["code"] for m in second.errors] == ["busy"] and second.close_code == 1013
            await first.send(EOF_FRAME)
            assert [json.loads(m)["type"] async for m in first] == ["final"]

    asyncio.run(asyncio.wait_for(main(), 30))
    wait_until_idle(server)
    third = asyncio.run(exchange(authed(server), [EOF_FRAME]))
    assert [r.message["type"] for r in third.messages] == ["ready", "final"]


def test_client_that_never_reads_is_cut_off(server: LiveServer) -> None:
    """A client that stops reading while provoking replies: once the socket's buffers are full a
    send blocks; after STT_SEND_TIMEOUT the session ends and the connection is dropped."""

    async def main() -> tuple[float, int | None]:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", server.port))
        # No compression: the server's replies then fill the buffers instead of shrinking to bytes.
        ws = await websockets.connect(authed(server), sock=sock, compression=None, max_size=None)
        ws.transport.pause_reading()  # read nothing from here on
        started = time.perf_counter()
        junk = json.dumps({"type": "x" * 40})  # each one earns an error reply of ~110 bytes

        async def flood() -> None:
            for _ in range(60_000):
                await ws.send(junk)

        flooding = asyncio.create_task(flood())
        while health(server)["sessions"] and time.perf_counter() - started < 30:
            await asyncio.sleep(0.2)
        took = time.perf_counter() - started
        flooding.cancel()
        ws.transport.resume_reading()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)  # whatever was buffered, then the dropped socket
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        return took, ws.close_code

    took, code = asyncio.run(main())
    assert took < 25, took
    assert code == 1006  # dropped, no close frame: the client was not reading any
    assert "for the client to read" in server.log.read_text()
    assert health(server)["status"] == "ok"
