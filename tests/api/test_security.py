"""security.py: token extraction and comparison, allowed origins, the HTTP dependency, log redaction."""

from __future__ import annotations

import logging

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from tests.support.fakes import FakeModel, FakeTranscriber
from wirescribe import logsafe
from wirescribe.api import security
from wirescribe.api.deps import STATE_KEY, require_token
from wirescribe.api.metrics import Metrics
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.security import origin_allowed, presented_token, token_matches
from wirescribe.api.state import AppState, FileTurns
from wirescribe.asr.scheduler import Scheduler
from wirescribe.settings import Settings

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host


def test_bearer_header_wins_over_query() -> None:
    assert presented_token({"authorization": "Bearer abc"}, {"token": "xyz"}) == "abc"
    assert presented_token({"authorization": "bearer  abc "}, {}) == "abc"


def test_query_token_when_no_bearer() -> None:
    assert presented_token({}, {"token": "xyz"}) == "xyz"
    assert presented_token({"authorization": "Basic dXNlcjpwdw=="}, {"token": "xyz"}) == "xyz"
    assert presented_token({"authorization": "Bearer "}, {}) is None
    assert presented_token({}, {"token": ""}) is None


@pytest.mark.parametrize(
    ("expected", "given", "ok"),
    [
        (None, None, True),  # no token configured: open
        (None, "anything", True),
        ("s3cret", "s3cret", True),
        ("s3cret", None, False),
        ("s3cret", "", False),
        ("s3cret", "s3cre", False),
        ("s3cret", "s3cret ", False),
        ("s3cret", "S3CRET", False),
        ("çé-ünicode", "çé-ünicode", True),  # compare_digest on str needs ASCII; bytes do not
        ("çé-ünicode", "ce-unicode", False),
    ],
)
def test_token_matches(expected: str | None, given: str | None, ok: bool) -> None:
    assert token_matches(expected, given) is ok


def test_token_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = security.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert not token_matches("s3cret", "guess")
    assert calls == [(b"guess", b"s3cret")]


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        (("*",), "https://evil.example", True),
        (("*",), None, True),
        (("https://app.example",), None, True),  # non-browser clients send no Origin
        (("https://app.example",), "https://app.example", True),
        (("https://app.example",), "HTTPS://APP.EXAMPLE/", True),
        (("https://app.example",), "http://app.example", False),
        (("https://app.example",), "https://app.example.evil", False),
        (("https://app.example",), "null", False),
        (("https://a.example", "http://localhost:3000"), "http://localhost:3000", True),
    ],
)
def test_origin_allowed(allowed: tuple[str, ...], origin: str | None, ok: bool) -> None:
    assert origin_allowed(allowed, origin) is ok


class FakeWebSocket:
    def __init__(self, headers: dict[str, str], query: dict[str, str]) -> None:
        self.headers = headers
        self.query_params = query


def test_check_websocket_origin_before_token() -> None:
    config = Settings(token="t0k", allowed_origins=("https://app.example",))
    security.check_websocket(FakeWebSocket({}, {"token": "t0k"}), config)  # type: ignore[arg-type]
    security.check_websocket(FakeWebSocket({"origin": "https://app.example"}, {"token": "t0k"}), config)  # type: ignore[arg-type]
    for headers, query, word in [
        ({"origin": "https://evil.example"}, {"token": "t0k"}, "origin"),
        ({}, {}, "token"),
        ({"authorization": "Bearer nope"}, {}, "token"),
    ]:
        with pytest.raises(ProtocolError) as info:
            security.check_websocket(FakeWebSocket(headers, query), config)  # type: ignore[arg-type]
        assert info.value.code == "unauthorized" and info.value.close == 1008
        assert word in info.value.message
        assert "t0k" not in info.value.message


def app_with_protected_route(token: str | None) -> TestClient:
    """An app like the server's (its state under the key the lifespan uses), with one route
    behind require_token. No lifespan runs, so no model is loaded."""
    api = FastAPI()
    state = AppState(
        Settings(token=token), FakeTranscriber(), Scheduler(FakeModel()), lambda frames: frames[:, 0],  # type: ignore[arg-type]
        Metrics(lambda: None), FileTurns(1),
    )  # fmt: skip
    setattr(api.state, STATE_KEY, state)

    @api.get("/private", dependencies=[Depends(require_token)])
    def private() -> dict[str, str]:
        return {"secret": "here"}

    return TestClient(api)


def test_require_token_protects_http_routes() -> None:
    client = app_with_protected_route("t0k")
    refused = client.get("/private")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "here" not in refused.text
    assert client.get("/private", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/private", headers={"Authorization": "Bearer t0k"}).json() == {"secret": "here"}
    assert client.get("/private?token=t0k").status_code == 200


def test_require_token_is_open_without_a_token() -> None:
    assert app_with_protected_route(None).get("/private").status_code == 200


def test_redact() -> None:
    assert security.redact("/ws/transcribe?token=abc&format=pcm16") == "/ws/transcribe?token=***&format=pcm16"
    assert security.redact("/x?format=f32&TOKEN=abc") == "/x?format=f32&TOKEN=***"
    assert security.redact("/x?mytoken=abc") == "/x?mytoken=abc"


def test_log_redaction_filter_on_uvicorn_loggers(caplog: pytest.LogCaptureFixture) -> None:
    factory = logging.getLogRecordFactory()  # Python's, or a library's (Ray sets one on import)
    remove = security.install_log_redaction()
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.error"):
            logging.getLogger("uvicorn.error").info(
                '%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/ws/transcribe?token=s3cret&format=auto"
            )
    finally:
        remove()
    assert "s3cret" not in caplog.text
    assert "token=***&format=auto" in caplog.text
    assert not logsafe.installed() and logging.getLogRecordFactory() is factory


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_generated_api_docs_need_the_token(path: str) -> None:
    from wirescribe.api.app import create_app

    starting = TestClient(create_app(Settings()), base_url=LOCAL)  # not entered: no lifespan, no settings yet
    assert starting.get(path).status_code == 503  # closed until the settings say otherwise
    with TestClient(create_app(Settings(token="t0k"), FakeTranscriber()), base_url=LOCAL) as client:  # type: ignore[arg-type]
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer t0k"}).status_code == 200
    with TestClient(create_app(Settings(), FakeTranscriber()), base_url=LOCAL) as client:  # type: ignore[arg-type]
        assert client.get(path).status_code == 200
