"""ffmpeg sees only audio containers: payloads that make ffmpeg open other files or URLs — an HLS
playlist, a DASH manifest (and its WebM variant), an ffconcat script, an SDP file, an image
sequence — each pointing at a speech file on the server's disk and at a loopback HTTP server
that records every request, sent to both endpoints of a real server (WebSocket ``format=auto``
and ``POST /v1/audio/transcriptions``), with the bundled ffmpeg and with Debian's.

Each must be refused (``bad_audio`` + 1003, HTTP 400), no word of the speech file may come
back, and the HTTP server must see no request."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.support import LiveServer, librivox_utterances, loopback_http, start_server, stop_server
from tests.support.ws import exchange, wait_until_idle

DEBIAN_FFMPEG = "/usr/bin/ffmpeg"


class Recorder(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []  # every request, across handler instances

    def do_GET(self) -> None:
        Recorder.requests.append(f"GET {self.path}")
        self.send_response(404)
        self.end_headers()

    do_HEAD = do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def http_target() -> Iterator[str]:
    """A loopback HTTP server in a thread; every request it gets lands in ``Recorder.requests``."""
    with loopback_http(Recorder) as url:
        yield url


@pytest.fixture(scope="module")
def speech_copy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    """A LibriVox WAV copied to a temporary folder (also as ``speech1.wav`` for the pattern
    payload), and its transcript's distinctive words."""
    utterance = librivox_utterances()[0]
    folder = tmp_path_factory.mktemp("speech")
    shutil.copy(utterance.wav, folder / "speech.wav")
    shutil.copy(utterance.wav, folder / "speech1.wav")
    words = {w.strip(".,;:!?\"'").lower() for w in utterance.text.split()}
    return folder / "speech.wav", {w for w in words if len(w) >= 5}


def debian_ffmpeg() -> str | None:
    """Debian's ffmpeg, installed with apt-get when it is missing and we may (root, apt-get
    there); None with the reason printed when it cannot be had."""
    if os.path.exists(DEBIAN_FFMPEG):
        return DEBIAN_FFMPEG
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"\n{DEBIAN_FFMPEG} missing and apt-get unavailable (not root, or no apt): Debian half skipped")
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=300, capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "ffmpeg"], env=env, timeout=600,
                       capture_output=True, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        print("\napt-get install ffmpeg timed out: Debian half skipped")
    if not os.path.exists(DEBIAN_FFMPEG):
        print("\napt-get install ffmpeg failed (offline?): Debian half skipped")
        return None
    return DEBIAN_FFMPEG


@pytest.fixture(scope="module", params=["bundled", "debian"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server per ffmpeg build."""
    env = {"STT_MAX_SESSIONS_PER_CLIENT": "0"}
    if request.param == "debian":
        binary = debian_ffmpeg()
        if binary is None:
            pytest.skip(f"{DEBIAN_FFMPEG} is missing and apt-get could not install it (reason printed)")
        env["FFMPEG_BINARY"] = binary
    live = start_server(tmp_path_factory.mktemp(f"allowlist-{request.param}"), env=env)
    yield live
    stop_server(live)


def png(width: int = 2, height: int = 2) -> bytes:
    """A tiny valid PNG: the image2pipe demuxer's input (an image sequence from a pipe)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\0" + bytes(width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def mpd(target: str, mime: str) -> str:
    return (
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static"'
        ' mediaPresentationDuration="PT10S" minBufferTime="PT1S"'
        ' profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">'
        f'<BaseURL>{target}</BaseURL><Period><AdaptationSet mimeType="{mime}">'
        f'<Representation id="1" bandwidth="64000"><BaseURL>{target}</BaseURL></Representation>'
        "</AdaptationSet></Period></MPD>\n"
    )


PAYLOADS: dict[str, Callable[[str], bytes]] = {
    "hls": lambda t: f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{t}\n#EXT-X-ENDLIST\n".encode(),
    "dash": lambda t: mpd(t, "audio/wav").encode(),
    "webm_dash_manifest": lambda t: (
        mpd(t, "audio/webm").replace("isoff-on-demand:2011", "webm-on-demand:2012").encode()
    ),
    "ffconcat": lambda t: f"ffconcat version 1.0\nfile '{t}'\n".encode(),
    "sdp": lambda t: (  # RTP from the target's host and port
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
        f"m=audio {t.rsplit(':', 1)[-1].split('/')[0] if t.startswith('http') else 5004} RTP/AVP 0\n"
        f"a=rtpmap:0 PCMU/8000\na=control:{t}\n"
    ).encode(),
    "image_pattern": lambda t: png() + f"\n{t.replace('speech.wav', 'speech%d.wav')}\n".encode(),
}


def target(kind: str, speech: Path, http_url: str) -> str:
    return str(speech) if kind == "local" else f"{http_url}/speech.wav"


def leaked(text: str, words: set[str]) -> set[str]:
    lowered = text.lower()
    return {w for w in words if w in lowered}


@pytest.mark.e2e
@pytest.mark.parametrize("where", ["local", "http"])
@pytest.mark.parametrize("name", list(PAYLOADS))
def test_reference_payloads_are_refused_on_both_endpoints(
    server: LiveServer, http_target: str, speech_copy: tuple[Path, set[str]], name: str, where: str
) -> None:
    speech, words = speech_copy
    payload = PAYLOADS[name](target(where, speech, http_target))
    Recorder.requests.clear()

    result = asyncio.run(
        exchange(server.ws + "?format=auto", [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
                 + ['{"type": "eof"}'], timeout=30)
    )  # fmt: skip
    replies = json.dumps([r.message for r in result.messages])
    assert [m["code"] for m in result.errors] == ["bad_audio"], replies
    assert result.close_code == 1003 and result.final is None, replies

    reply = httpx.post(
        server.http + "/v1/audio/transcriptions", files={"file": (f"x.{name}", payload)}, timeout=60
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "invalid_file", reply.text

    assert not leaked(replies + reply.text, words), (replies, reply.text)
    assert Recorder.requests == [], Recorder.requests
    assert wait_until_idle(server)["ffmpeg_children"] == []
