"""``server:app`` is a plain FastAPI app: routes of a user's own on it, ``app.state``, and the
whole app mounted inside a user's application (its lifespan entered by the parent's), in
process. The same through a real uvicorn: ``tests/e2e/test_mounted_app.py``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient

from tests.support.fakes import FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.settings import Settings

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host
WS_LOCAL = "ws://localhost"  # websocket_connect ignores base_url


def fake_app() -> FastAPI:
    return create_app(Settings(), FakeTranscriber())  # type: ignore[arg-type]


def test_server_app_is_the_fastapi_app() -> None:
    import server

    assert type(server.app) is FastAPI
    assert server.app.state is not None and server.app.router.routes


def test_a_router_of_ones_own_and_app_state() -> None:
    app = fake_app()
    extra = APIRouter()

    @extra.get("/hello")
    def hello(request: Request) -> dict[str, Any]:
        return {"owner": request.app.state.owner}

    app.include_router(extra)
    app.state.owner = "me"
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/hello").json() == {"owner": "me"}
        assert client.get("/health").json()["model"] == "fake"  # the server's own routes still there


def test_mounted_in_a_users_app_serves_health_and_a_session() -> None:
    stt = fake_app()

    @asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[None]:
        async with stt.router.lifespan_context(stt):
            yield

    parent = FastAPI(lifespan=lifespan)

    @parent.get("/")
    def root() -> dict[str, str]:
        return {"app": "parent"}

    parent.mount("/stt", stt)
    with TestClient(parent, base_url=LOCAL) as client:
        assert client.get("/").json() == {"app": "parent"}
        health = client.get("/stt/health").json()
        assert health["status"] == "ok" and health["model"] == "fake"
        assert client.get("/health").status_code == 404  # only under the mount
        with client.websocket_connect(f"{WS_LOCAL}/stt/ws/transcribe?format=pcm16") as ws:
            ready = ws.receive_json()
            assert ready["type"] == "ready", ready
            ws.send_bytes(bytes(16000 * 2))  # 1 s of silence
            ws.send_text(json.dumps({"type": "eof"}))
            messages = [ws.receive_json()]
            while messages[-1]["type"] != "final":
                messages.append(ws.receive_json())
        assert messages[-1]["audio_seconds"] == 1.0, messages
        assert client.get("/stt/health").json()["sessions"] == 0


def test_mounted_the_docs_still_need_the_token() -> None:
    stt = create_app(Settings(token="t0k"), FakeTranscriber())  # type: ignore[arg-type]

    @asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[None]:
        async with stt.router.lifespan_context(stt):
            yield

    parent = FastAPI(lifespan=lifespan)
    parent.mount("/stt", stt)
    with TestClient(parent, base_url=LOCAL) as client:
        for path in ("/stt/openapi.json", "/stt/docs"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers={"Authorization": "Bearer t0k"}).status_code == 200, path
