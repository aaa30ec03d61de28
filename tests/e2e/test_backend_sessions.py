"""A backend is not locked out of its own server: through a real server with ``STT_TOKEN`` and the
default per-address limit (4), five concurrent sessions from one address holding the server's
token are all admitted (native and OpenAI endpoints), while a browser's temporary token from
that address gets ``busy``/1013 at its fifth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support import LiveServer, start_server, stop_server

pytestmark = pytest.mark.e2e

TOKEN = "backend-s3cret"
PER_CLIENT = 4  # the default STT_MAX_SESSIONS_PER_CLIENT


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        tmp_path_factory.mktemp("backend"), env={"STT_TOKEN": TOKEN, "STT_MAX_SESSIONS": "12"}
    )
    yield live
    stop_server(live)


async def open_sessions(urls: list[str], headers: dict[str, str]) -> list[tuple[dict[str, Any], int | None]]:
    """Open one session per url at once, all held open until every one has answered; each
    session's first message, and its close code when the server closed it (else None)."""
    sockets = [await websockets.connect(url, additional_headers=headers, open_timeout=10) for url in urls]
    try:
        firsts = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for ws in sockets]
        closes = []
        for ws, first in zip(sockets, firsts, strict=True):
            if first["type"] == "error":
                await asyncio.wait_for(ws.wait_closed(), 10)
            closes.append(ws.close_code)
        return list(zip(firsts, closes, strict=True))
    finally:
        for ws in sockets:
            await ws.close()


def test_five_backend_sessions_from_one_address_are_admitted(server: LiveServer) -> None:
    native = f"{server.ws}?format=pcm16"
    openai = f"ws://127.0.0.1:{server.port}/v1/realtime?intent=transcription"
    opened = asyncio.run(open_sessions([native] * 3 + [openai] * 2, {"Authorization": f"Bearer {TOKEN}"}))
    types = [first["type"] for first, _ in opened]
    assert types == ["ready"] * 3 + ["session.created"] * 2, opened  # five at once, past the 4
    assert all(close is None for _, close in opened), opened


def test_the_fifth_session_of_a_temporary_token_is_busy(server: LiveServer) -> None:
    minted = httpx.post(f"{server.http}/v1/auth/token", headers={"Authorization": f"Bearer {TOKEN}"})
    temporary = minted.json()["token"]
    url = f"{server.ws}?format=pcm16"
    opened = asyncio.run(open_sessions([url] * (PER_CLIENT + 1), {"Authorization": f"Bearer {temporary}"}))
    assert [first["type"] for first, _ in opened[:PER_CLIENT]] == ["ready"] * PER_CLIENT, opened
    busy, close = opened[PER_CLIENT]
    assert busy["code"] == "busy" and "address" in busy["message"] and close == 1013, opened
