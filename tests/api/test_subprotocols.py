"""Credentials in ``Sec-WebSocket-Protocol`` (the vendors' browser SDKs): read, and answered with
the subprotocol a browser needs to open the socket — alone, then through a real server.

The subprotocol lists are the ones the SDKs send from a browser: ``@deepgram/sdk`` 5.13
(``bearer, TOKEN, x-deepgram-session-id, UUID``), ``openai`` 7.60's ``OpenAIRealtimeWebSocket``
(``realtime, openai-insecure-api-key.KEY``) and its beta client (plus ``openai-beta.realtime-v1``).
tests/e2e/test_browser_sdks.py runs the SDKs themselves in Chromium.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.support import LiveServer, start_server, stop_server
from wirescribe.api import subprotocols
from wirescribe.api.subprotocols import DEEPGRAM, OPENAI

SECRET = "long-lived-Subprotocol_Token_3"
SESSION_ID = "x-deepgram-session-id"
UUID = "0b8e2f9c-6a57-4c1e-9d3f-2a7c5e8b1f40"


def scope(*protocols: str) -> dict[str, object]:
    return {"type": "websocket", "subprotocols": list(protocols)}


@pytest.mark.parametrize(
    ("offered", "credential", "selected"),
    [
        (("bearer", "wst1.a.b", SESSION_ID, UUID), "wst1.a.b", "bearer"),  # the SDK, temporary token
        (("token", "KEY", SESSION_ID, UUID), "KEY", "token"),  # the SDK, API key
        (("Token", "KEY"), "KEY", "Token"),  # selected as offered
        ((SESSION_ID, UUID), None, None),
        (("token",), None, None),  # no credential after the scheme
        ((), None, None),
    ],
)
def test_deepgram_browser_credentials(
    offered: tuple[str, ...], credential: str | None, selected: str | None
) -> None:
    assert subprotocols.credential(DEEPGRAM, scope(*offered)) == credential
    assert subprotocols.selected(DEEPGRAM, scope(*offered)) == selected


@pytest.mark.parametrize(
    ("offered", "credential", "selected", "beta"),
    [
        (("realtime", "openai-insecure-api-key.wst1.a.b"), "wst1.a.b", "realtime", False),
        (("realtime", "openai-insecure-api-key.KEY", "openai-project.p1"), "KEY", "realtime", False),
        (("realtime", "openai-insecure-api-key.KEY", "openai-beta.realtime-v1"), "KEY", "realtime", True),
        (("realtime",), None, "realtime", False),  # refused later, as an error event
        (("openai-insecure-api-key.",), None, None, False),
    ],
)
def test_openai_browser_credentials(
    offered: tuple[str, ...], credential: str | None, selected: str | None, beta: bool
) -> None:
    assert subprotocols.credential(OPENAI, scope(*offered)) == credential
    assert subprotocols.selected(OPENAI, scope(*offered)) == selected
    assert subprotocols.openai_beta(scope(*offered)) is beta


def test_other_dialects_select_nothing_and_read_no_credential() -> None:
    offered = scope("realtime", "openai-insecure-api-key.KEY", "token", "KEY")
    assert subprotocols.selected("native", offered) is None
    assert subprotocols.credential("native", offered) is None
    assert subprotocols.offered({"type": "websocket"}) == ()


# -- through a real server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    running = start_server(tmp_path_factory.mktemp("subprotocols"), env={"STT_TOKEN": SECRET})
    yield running
    stop_server(running)


def _temporary_token(server: LiveServer) -> str:
    request = urllib.request.Request(
        f"{server.http}/v1/auth/token", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(json.loads(reply.read())["token"])


def _ws(server: LiveServer, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def _protocols(*items: str) -> list[Subprotocol]:
    return [Subprotocol(p) for p in items]


def _until_closed(ws: ClientConnection) -> list[dict[str, object]]:
    """Every message until the server closes (with whatever code)."""
    replies: list[dict[str, object]] = []
    try:
        while True:
            replies.append(json.loads(ws.recv(10)))
    except ConnectionClosed:
        return replies


@pytest.mark.parametrize("scheme", ["bearer", "token"])
def test_deepgram_browser_form_opens_a_session(server: LiveServer, scheme: str) -> None:
    key = _temporary_token(server) if scheme == "bearer" else SECRET
    offered = _protocols(scheme, key, SESSION_ID, UUID)
    with connect(_ws(server, "/v1/listen?encoding=linear16&sample_rate=16000"), subprotocols=offered) as ws:
        assert ws.subprotocol == scheme
        ws.send(json.dumps({"type": "CloseStream"}))
        replies = _until_closed(ws)
    assert replies[-1]["type"] == "Metadata", replies
    assert ws.close_code == 1000


def test_deepgram_browser_form_with_a_bad_token_is_refused_at_the_handshake(server: LiveServer) -> None:
    offered = _protocols("bearer", "wst1.eyJpZCI6ImZvcmdlZCJ9.c2lnbmF0dXJl", SESSION_ID, UUID)
    with pytest.raises(InvalidStatus) as refused:
        connect(_ws(server, "/v1/listen"), subprotocols=offered)
    assert refused.value.response.status_code == 401


@pytest.mark.parametrize(
    ("beta", "created"), [(False, "session.created"), (True, "transcription_session.created")]
)
def test_openai_browser_form_opens_a_session(server: LiveServer, beta: bool, created: str) -> None:
    offered = _protocols("realtime", f"openai-insecure-api-key.{_temporary_token(server)}")
    offered += _protocols("openai-beta.realtime-v1") if beta else []
    with connect(_ws(server, "/v1/realtime?intent=transcription"), subprotocols=offered) as ws:
        assert ws.subprotocol == "realtime"
        assert json.loads(ws.recv(10))["type"] == created


def test_openai_browser_form_with_a_bad_key_gets_an_error_event(server: LiveServer) -> None:
    offered = _protocols("realtime", "openai-insecure-api-key.not-the-key")
    with connect(_ws(server, "/v1/realtime?intent=transcription"), subprotocols=offered) as ws:
        assert ws.subprotocol == "realtime"  # opened, as OpenAI does, then refused in the protocol
        replies = _until_closed(ws)
    error = replies[-1]
    assert error["type"] == "error" and error["error"]["code"] == "invalid_api_key", replies  # type: ignore[index]
    assert ws.close_code == 1008


def test_native_protocol_selects_no_subprotocol(server: LiveServer) -> None:
    """/ws/transcribe's browsers use ?token=: a subprotocol offered there is not selected, nor
    read as a credential."""
    offered = _protocols("realtime", f"openai-insecure-api-key.{SECRET}")
    with connect(_ws(server, f"/ws/transcribe?token={SECRET}"), subprotocols=offered) as ws:
        assert ws.subprotocol is None
        assert json.loads(ws.recv(10))["type"] == "ready"
    with connect(_ws(server, "/ws/transcribe"), subprotocols=offered) as ws:
        replies = _until_closed(ws)
    assert replies[-1]["code"] == "unauthorized" and ws.close_code == 1008, replies
