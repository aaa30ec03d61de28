"""``server:app`` inside a user's own FastAPI application, under a real uvicorn: a route of the
user's included on it, ``app.state`` set, the app mounted at ``/stt`` with its lifespan entered
by the parent's; ``/stt/health`` and a live session with real speech through the mount."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer, Utterance, join_utterances, stop_server
from tests.support.ws import exchange, final_of
from wirescribe.client import pcm16_slices
from wirescribe.devserver import start_server

pytestmark = pytest.mark.e2e

PARENT = textwrap.dedent("""
    from contextlib import asynccontextmanager

    from fastapi import APIRouter, FastAPI, Request

    from server import app as stt

    extra = APIRouter()


    @extra.get("/owner")
    def owner(request: Request) -> dict:
        return {"owner": request.app.state.owner}


    stt.include_router(extra)
    stt.state.owner = "the parent"


    @asynccontextmanager
    async def lifespan(parent: FastAPI):
        async with stt.router.lifespan_context(stt):  # the model loads; shutdown drains
            yield


    parent = FastAPI(lifespan=lifespan)


    @parent.get("/health")
    def health() -> dict:
        return {"app": "parent"}


    parent.mount("/stt", stt)
""")


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("mounted")
    (folder / "users_app.py").write_text(PARENT)
    server = start_server(
        Path(folder / "server.log"), app=["users_app:parent"], uvicorn_args=["--app-dir", str(folder)]
    )
    yield server
    stop_server(server)


def test_the_mounted_app_serves_its_routes_and_the_users(mounted: LiveServer) -> None:
    assert httpx.get(mounted.http + "/health").json() == {"app": "parent"}
    health = httpx.get(mounted.http + "/stt/health").json()
    assert health["status"] == "ok" and health["model"] == "tiny.en", health
    assert httpx.get(mounted.http + "/stt/owner").json() == {"owner": "the parent"}


def test_a_live_session_through_the_mount(mounted: LiveServer, utterances: list[Utterance]) -> None:
    audio, _ = join_utterances(utterances[1:2], pause=0.4)  # "he was not an ill disposed young man"
    url = f"ws://127.0.0.1:{mounted.port}/stt/ws/transcribe?format=pcm16"
    frames: list[bytes | str] = [*pcm16_slices(audio, 0.1), '{"type": "eof"}']
    result = asyncio.run(exchange(url, frames, timeout=60))
    final = final_of(result)
    assert result.errors == [] and result.close_code == 1000, result.messages
    assert "he was not" in final["text"].lower() and "young man" in final["text"].lower(), final
