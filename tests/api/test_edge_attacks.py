"""The server's edge probed as an attacker would, against a real server on loopback: forged
Host (DNS rebinding), foreign Origin on uploads, log forging, tokens in logs at debug level,
server insides in upload errors, and temporary tokens (expiry, origin binding, session count,
forged signatures, minting with one)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import DATA, LiveServer, start_server, stop_server
from tests.support.ws import exchange

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-Edge_Token_77"
ORIGIN = "https://app.example"
EOF_FRAME = '{"type": "eof"}'
WAV = DATA / "sense_and_sensibility_01_austen_64kb-0880.wav"  # 3 s of speech
FORGED = "2099-01-01 00:00:00,000 INFO wirescribe forged [session=-] admin logged in"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A guarded server logging everything at debug level (uvicorn's lines too)."""
    server = start_server(
        tmp_path_factory.mktemp("edge"),
        env={"STT_TOKEN": TOKEN, "STT_ALLOWED_ORIGINS": ORIGIN, "STT_LOG_LEVEL": "debug"},
        uvicorn_args=["--log-level", "debug"],
    )
    yield server
    stop_server(server)


def raw_request(server: LiveServer, head: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Send ``head`` (a request without a body) as it is; the status and whatever came back."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(head)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # until the server closes, or a 101's headers are in
            if b"\r\n\r\n" in data and data.startswith(b"HTTP/1.1 101"):
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def handshake(path: str, host: str, extra: str = "") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode("latin-1")


def upload(server: LiveServer, content: bytes, name: str = "a.wav", **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
    return httpx.post(
        f"{server.http}/v1/audio/transcriptions",
        files={"file": (name, content)},
        headers=headers,
        timeout=60,
        **kw,
    )


def mint(server: LiveServer, body: dict[str, Any] | None = None, token: str = TOKEN) -> httpx.Response:
    return httpx.post(
        f"{server.http}/v1/auth/token",
        json=body or {},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def session(server: LiveServer, token: str, origin: str | None = None) -> tuple[list[str], int | None]:
    """Open a pcm16 session with ``token``, send eof at once: the message types and close code."""
    url = f"{server.ws}?format=pcm16&token={urllib.parse.quote(token)}"
    result = asyncio.run(exchange(url, [EOF_FRAME], origin=origin, timeout=20))
    return [str(r.message["type"]) for r in result.messages], result.close_code


def log_of(server: LiveServer) -> str:
    time.sleep(0.3)  # the server writes its log lines as it goes; let the last ones land
    return server.log.read_text(errors="replace")


# --- 3. Hosts and origins ---------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8000", "localhost.attacker.example", ""]
)
def test_forged_host_is_refused_on_http_and_websocket(edge: LiveServer, host: str) -> None:
    status, reply = raw_request(
        edge, f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 400 and b"invalid Host header" in reply
    status, reply = raw_request(edge, handshake(f"/ws/transcribe?token={TOKEN}", host))
    assert status == 400 and b"101" not in reply.split(b"\r\n")[0]  # never switched protocols


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "192.0.2.7"])
def test_loopback_names_and_addresses_are_answered(edge: LiveServer, host: str) -> None:
    port = f":{edge.port}"
    status, _ = raw_request(
        edge, f"GET /health HTTP/1.1\r\nHost: {host}{port}\r\nConnection: close\r\n\r\n".encode()
    )
    assert status == 200
    status, _ = raw_request(edge, handshake(f"/ws/transcribe?token={TOKEN}", host + port))
    assert status == 101


def test_foreign_origin_is_refused_on_upload(edge: LiveServer) -> None:
    refused = upload(edge, WAV.read_bytes(), headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "origin_not_allowed"
    assert upload(edge, WAV.read_bytes(), headers={"Origin": ORIGIN}).status_code == 200


# --- 4. Logs and errors -----------------------------------------------------------------


def test_control_characters_cannot_forge_log_lines(edge: LiveServer) -> None:
    # httpx would percent-encode these: the parts are written by hand. A raw LF would end the
    # part's header (the file would be missing); these reach the name, and so the log line.
    for name in (f"talk.wav\u2028{FORGED}", f"talk.wav\x85{FORGED}", f"talk.wav\x1b[1A\x1b[2K\x0b{FORGED}"):
        ok = raw_upload(edge, f'filename="{name}"')
        assert ok.status_code == 200, ok.text
    # The same through a WebSocket handshake's header, logged by uvicorn at debug level (0x85:
    # NEL, a line break to some readers) and a query string with an encoded newline.
    raw_request(edge, handshake(f"/ws/transcribe?note=%0A{FORGED.replace(' ', '%20')}", "localhost",
                                f"X-Note: a\x85{FORGED}\r\nUser-Agent: b\r{FORGED}\r\n"))  # fmt: skip
    text = log_of(edge)
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith(("2099", FORGED))], text[-3000:]
    for escaped in (
        "talk.wav\\u2028" + FORGED,
        "talk.wav\\x85" + FORGED,
        "talk.wav\\x1b[1A\\x1b[2K\\x0b" + FORGED,
    ):
        assert escaped in text  # the name is there, escaped


def raw_upload(server: LiveServer, disposition: str) -> httpx.Response:
    """An upload whose file part's Content-Disposition is exactly ``disposition``."""
    boundary = "edge-boundary-1234"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; {disposition}\r\n'
            f"Content-Type: audio/wav\r\n\r\n"
        ).encode()
        + WAV.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    return httpx.post(f"{server.http}/v1/audio/transcriptions", content=body, headers=headers, timeout=60)


def test_tokens_are_not_logged_at_debug_level(edge: LiveServer) -> None:
    assert httpx.get(f"{edge.http}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert httpx.get(f"{edge.http}/metrics?%74oken={TOKEN}").status_code == 200  # Starlette decodes the key
    for query in (f"?token={TOKEN}", f"?%74oken={TOKEN}", f"?format=pcm16&%74%6f%6b%65%6e={TOKEN}"):
        types, _ = session_raw(edge, query)
        assert "ready" in types
    types, _ = session_raw(edge, "?format=pcm16", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "ready" in types
    text = log_of(edge)
    assert TOKEN not in text
    # The lines are there, redacted: the handshake's headers (the WebSocket library's debug
    # lines), the access log's and the handshake's paths.
    assert "authorization: ***" in text.lower()
    assert "%74oken=***" in text and "%74%6f%6b%65%6e=***" in text and "?token=***" in text


def session_raw(
    server: LiveServer, query: str, headers: dict[str, str] | None = None
) -> tuple[list[str], int | None]:
    result = asyncio.run(exchange(server.ws + query, [EOF_FRAME], headers=headers, timeout=20))
    return [str(r.message["type"]) for r in result.messages], result.close_code


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("junk.wav", b"\x00\x01junk" * 100),
        ("text.mp3", b"hello, this is not audio\n" * 50),
        ("no-index.m4a", b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42" + b"\x00" * 300),
        ("flac.flac", b"fLaC" + b"\xff" * 300),
        ("ogg.ogg", b"OggS" + b"\x00" * 200),
    ],
)
def test_upload_errors_hold_no_addresses_or_paths(edge: LiveServer, name: str, content: bytes) -> None:
    reply = upload(edge, content, name=name)
    assert reply.status_code in (400, 500), reply.text
    message = reply.json()["error"]["message"]
    assert "0x" not in message and "/tmp" not in message and "stt-upload" not in message, message
    assert "Traceback" not in message


# --- 5. Temporary tokens ----------------------------------------------------------------


def test_temporary_token_opens_sessions_and_uploads(edge: LiveServer) -> None:
    reply = mint(edge)
    assert reply.status_code == 200 and reply.headers["cache-control"] == "no-store"
    body = reply.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 60
    assert 55 < body["expires_at"] - time.time() <= 60
    token = body["token"]
    assert TOKEN not in token
    assert session(edge, token) == (["ready", "final"], 1000)
    ok = upload(edge, WAV.read_bytes(), headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200, ok.text
    # It opens sessions and uploads, nothing else.
    assert httpx.get(f"{edge.http}/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_temporary_token_expires(edge: LiveServer) -> None:
    token = mint(edge, {"expires_in": 1}).json()["token"]
    assert session(edge, token)[0][0] == "ready"
    time.sleep(1.2)  # the token's whole life, on the wall clock the server checks
    types, code = session(edge, token)
    assert (types, code) == (["error"], 1008)
    refused = upload(edge, WAV.read_bytes(), headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]


def test_temporary_token_bound_to_an_origin(edge: LiveServer) -> None:
    token = mint(edge, {"origin": ORIGIN}).json()["token"]
    assert session(edge, token, origin=ORIGIN)[0] == ["ready", "final"]
    assert session(edge, token) == (["error"], 1008)  # no Origin (a script with a stolen token)
    # An origin the server does not allow is refused at minting: it could never connect.
    assert mint(edge, {"origin": "https://evil.example"}).status_code == 400


def test_temporary_token_session_count(edge: LiveServer) -> None:
    token = mint(edge, {"max_sessions": 2}).json()["token"]
    assert session(edge, token)[0] == ["ready", "final"]
    assert upload(edge, WAV.read_bytes(), headers={"Authorization": f"Bearer {token}"}).status_code == 200
    types, code = asyncio.run(_refusal(edge, token))
    assert (types, code) == (["error"], 1008)
    assert upload(edge, WAV.read_bytes(), headers={"Authorization": f"Bearer {token}"}).status_code == 401


async def _refusal(server: LiveServer, token: str) -> tuple[list[str], int | None]:
    result = await exchange(f"{server.ws}?format=pcm16&token={token}", [EOF_FRAME], timeout=20)
    assert "opened its 2 session" in json.dumps(result.errors)
    return [str(r.message["type"]) for r in result.messages], result.close_code


def test_forged_temporary_tokens_are_refused(edge: LiveServer) -> None:
    token = mint(edge).json()["token"]
    body, _, signature = token.rpartition(".")
    claims = json.loads(_b64decode(body.removeprefix("wst1.")))
    claims["exp"] += 3600
    longer = "wst1." + _b64encode(json.dumps(claims).encode())
    for forged in (f"{body}.{signature[::-1]}", f"{longer}.{signature}", "wst1.e30.AAAA"):
        assert session(edge, forged) == (["error"], 1008)


def test_a_temporary_token_cannot_mint(edge: LiveServer) -> None:
    token = mint(edge).json()["token"]
    refused = mint(edge, token=token)
    assert refused.status_code == 403 and "cannot mint" in refused.json()["error"]["message"]
    assert mint(edge, token="wrong").status_code == 401
    in_url = httpx.post(f"{edge.http}/v1/auth/token?token={TOKEN}", json={}, timeout=10)
    assert in_url.status_code == 401  # the long-lived token is taken from the header only
    assert mint(edge, {"expires_in": 10**6}).status_code == 400  # capped
    assert mint(edge, {"ttl": 5}).status_code == 400  # unknown field: refused, not ignored


def _b64decode(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- The start-up warning ---------------------------------------------------------------


WARNING = "beyond loopback without STT_TOKEN"


def _startup_log(tmp_path: Path, env: dict[str, str], host: str) -> str:
    server = start_server(tmp_path, env=env, uvicorn_args=["--host", host])
    try:
        deadline = time.monotonic() + 10
        while WARNING not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the log for the line the lifespan's task writes
    finally:
        stop_server(server)
    return server.log.read_text()


def test_startup_warns_when_listening_beyond_loopback_without_a_token(tmp_path: Path) -> None:
    text = _startup_log(tmp_path, {"STT_TOKEN": ""}, "0.0.0.0")
    assert text.count(WARNING) == 1 and "0.0.0.0:" in text
