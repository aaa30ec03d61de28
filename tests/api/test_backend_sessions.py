"""The per-address session limit knows a backend: sessions opened with ``STT_TOKEN`` itself are
held by the global limit only; temporary tokens (browsers) and tokenless servers' clients are
counted by address. In process (TestClient: every client is one address); through a real
server in ``tests/e2e/test_backend_sessions.py``."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.support.fakes import FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.settings import Settings

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host
WS = "ws://localhost/ws/transcribe?format=pcm16"  # websocket_connect ignores base_url
TOKEN = "backend-s3cret"
PER_CLIENT, GLOBAL = 4, 6


def server(token: str | None = TOKEN) -> TestClient:
    settings = Settings(token=token, max_sessions=GLOBAL, max_sessions_per_client=PER_CLIENT)
    return TestClient(create_app(settings, FakeTranscriber()), base_url=LOCAL)  # type: ignore[arg-type]


def first_message(
    client: TestClient, stack: contextlib.ExitStack, token: str | None
) -> tuple[dict[str, Any], WebSocketTestSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    ws = stack.enter_context(client.websocket_connect(WS, headers=headers))
    return ws.receive_json(), ws


def assert_busy(message: dict[str, Any], ws: WebSocketTestSession, says: str) -> None:
    assert message["type"] == "error" and message["code"] == "busy", message
    assert says in message["message"], message
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1013


def test_a_backend_with_the_servers_token_is_held_by_the_global_limit_only() -> None:
    with server() as client, contextlib.ExitStack() as stack:
        opened = [first_message(client, stack, TOKEN)[0] for _ in range(GLOBAL)]
        assert [m["type"] for m in opened] == ["ready"] * GLOBAL  # past the per-address 4
        assert_busy(*first_message(client, stack, TOKEN), says=f"limit of {GLOBAL} sessions")


def test_a_temporary_token_is_counted_by_address() -> None:
    with server() as client, contextlib.ExitStack() as stack:
        minted = client.post("/v1/auth/token", headers={"Authorization": f"Bearer {TOKEN}"})
        temporary = minted.json()["token"]
        opened = [first_message(client, stack, temporary)[0] for _ in range(PER_CLIENT)]
        assert [m["type"] for m in opened] == ["ready"] * PER_CLIENT
        assert_busy(*first_message(client, stack, temporary), says="this address")
        # The backend is not refused for the browsers' sessions from its address.
        assert first_message(client, stack, TOKEN)[0]["type"] == "ready"


def test_without_a_server_token_every_client_is_counted_by_address() -> None:
    with server(token=None) as client, contextlib.ExitStack() as stack:
        opened = [first_message(client, stack, None)[0] for _ in range(PER_CLIENT)]
        assert [m["type"] for m in opened] == ["ready"] * PER_CLIENT
        assert_busy(*first_message(client, stack, None), says="this address")
