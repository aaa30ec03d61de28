"""Bad input to the OpenAI Realtime and Deepgram endpoints of a real server: each gets its own
protocol's error shape and close behaviour (docs/compatibility.md)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import LiveServer, start_server, stop_server
from tests.support.compat_clients import deepgram_live, openai_realtime, to_pcm16

pytestmark = pytest.mark.e2e
TOKEN = "compat-test-token"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("server"), env={"STT_TOKEN": TOKEN})
    yield server
    stop_server(server)


async def exchange(
    url: str,
    frames: list[str | bytes],
    headers: dict[str, str] | None = None,
    settle: float = 1.5,
    wait_before_last: float = 0.0,
) -> tuple[list[dict[str, Any]], int | None]:
    """Send ``frames`` (waiting ``wait_before_last`` s before the last one); collect replies
    until the server closes or is quiet for ``settle`` s."""
    replies: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        for i, frame in enumerate(frames):
            if i == len(frames) - 1 and wait_before_last:
                await asyncio.sleep(wait_before_last)
            await ws.send(frame)
        try:
            while True:
                replies.append(json.loads(await asyncio.wait_for(ws.recv(), settle)))
        except (asyncio.TimeoutError, websockets.ConnectionClosed):
            pass
        if ws.close_code is None:
            await ws.close()
            return replies, None
    return replies, ws.close_code


def openai_errors(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = [r for r in replies if r["type"] == "error"]
    for e in errors:  # OpenAI's shape, every time
        assert set(e) == {"type", "event_id", "error"} and e["event_id"].startswith("event_")
        assert set(e["error"]) == {"type", "code", "message", "param", "event_id"}
    return [e["error"] for e in errors]


def test_openai_bad_events_get_errors_and_the_session_goes_on(
    live_server: LiveServer, speech: np.ndarray
) -> None:
    url = live_server.ws.replace("/ws/transcribe", "/v1/realtime?intent=transcription")
    audio = base64.b64encode(to_pcm16(speech[: 3 * 16000], 24000)).decode()
    frames: list[str | bytes] = [
        "not json",
        json.dumps({"type": "response.create", "event_id": "evt_1"}),
        json.dumps({"type": "input_audio_buffer.append", "audio": "%%%"}),
        json.dumps({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "format": {"type": "audio/pcm", "rate": 16000}}}}}),
        b"\x00\x01",
        json.dumps({"type": "input_audio_buffer.append", "audio": audio}),
        json.dumps({"type": "input_audio_buffer.commit"}),
    ]  # fmt: skip
    # The commit comes once the speech has been heard, as a client's own VAD would send it.
    replies, close = asyncio.run(exchange(url, frames, settle=4.0, wait_before_last=2.5))
    errors = openai_errors(replies)
    assert [e["code"] for e in errors] == ["invalid_json", "invalid_value", "invalid_value", "invalid_value",
                                           "invalid_value"]  # fmt: skip
    assert errors[1]["event_id"] == "evt_1" and errors[2]["param"] == "audio"
    assert errors[3]["param"] == "session.audio.input.format"
    assert close is None  # still open
    completed = [r for r in replies if r["type"] == "conversation.item.input_audio_transcription.completed"]
    assert "dashwood" in " ".join(c["transcript"] for c in completed).lower()


def test_openai_other_intents_are_refused(live_server: LiveServer) -> None:
    url = live_server.ws.replace("/ws/transcribe", "/v1/realtime?intent=conversation")
    replies, close = asyncio.run(exchange(url, []))
    assert [e["code"] for e in openai_errors(replies)] == ["invalid_value"]
    assert close == 1008


def test_openai_wrong_key_gets_invalid_api_key_and_1008(token_server: LiveServer, speech: np.ndarray) -> None:
    url = token_server.ws.replace("/ws/transcribe", "/v1/realtime?intent=transcription")
    replies, close = asyncio.run(exchange(url, [], headers={"Authorization": "Bearer wrong"}))
    assert [e["code"] for e in openai_errors(replies)] == ["invalid_api_key"] and close == 1008
    # The right key, through the official client, opens a session.
    run = asyncio.run(
        openai_realtime(token_server.http, speech[:16000], api_key=TOKEN, realtime=False, settle=1.0)
    )
    assert run.messages[0].message["type"] == "session.created"


def listen_url(server: LiveServer, query: str) -> str:
    return server.ws.replace("/ws/transcribe", "/v1/listen?" + query)


@pytest.mark.parametrize("query", ["encoding=speex&sample_rate=8000", "encoding=linear16", "channels=2",
                                   "language=de", "interim_results=maybe"])  # fmt: skip
def test_deepgram_bad_query_is_an_http_400_with_deepgrams_body(live_server: LiveServer, query: str) -> None:
    async def connect() -> InvalidStatus:
        with pytest.raises(InvalidStatus) as e:
            await websockets.connect(listen_url(live_server, query))
        return e.value

    refused = asyncio.run(connect())
    assert refused.response.status_code == 400
    body = json.loads(refused.response.body or b"{}")
    assert body["err_code"] == "Bad Request" and body["err_msg"] and body["request_id"]


def test_deepgram_wrong_key_is_401_through_the_sdk(token_server: LiveServer, speech: np.ndarray) -> None:
    from deepgram.core.api_error import ApiError

    with pytest.raises(ApiError) as e:
        asyncio.run(deepgram_live(token_server.http, speech[:16000], api_key="wrong", realtime=False))
    assert e.value.status_code == 401
    run = asyncio.run(deepgram_live(token_server.http, speech[:16000], api_key=TOKEN, realtime=False))
    assert run.close_code == 1000 and run.messages[-1].message["type"] == "Metadata"


def test_deepgram_unknown_messages_get_schema_errors_and_the_stream_goes_on(live_server: LiveServer) -> None:
    frames: list[str | bytes] = ["nope", json.dumps({"type": "Dance"}), json.dumps({"type": "KeepAlive"}),
                                 b"\x00" * 3200, json.dumps({"type": "CloseStream"})]  # fmt: skip
    replies, close = asyncio.run(
        exchange(listen_url(live_server, "encoding=linear16&sample_rate=16000"), frames)
    )
    errors = [r for r in replies if r["type"] == "Error"]
    assert [e["variant"] for e in errors] == ["SchemaError", "SchemaError"]
    assert replies[-1]["type"] == "Metadata" and close == 1000


def test_deepgram_undecodable_audio_gets_an_error_and_a_close(live_server: LiveServer) -> None:
    junk = np.random.default_rng(5).integers(0, 256, 120_000, dtype=np.uint8).tobytes()
    frames: list[str | bytes] = [junk[i : i + 20_000] for i in range(0, len(junk), 20_000)]
    frames.append(json.dumps({"type": "CloseStream"}))
    replies, close = asyncio.run(exchange(listen_url(live_server, "encoding=opus"), frames, settle=10))
    errors = [r for r in replies if r["type"] == "Error"]
    assert len(errors) == 1 and errors[0]["description"]
    assert close == 1003


def test_deepgram_g711_mulaw_is_transcribed(live_server: LiveServer, speech: np.ndarray) -> None:
    audioop = pytest.importorskip("audioop")  # an independent µ-law encoder (Python ≤ 3.12)
    at_8k = np.interp(np.arange(len(speech) // 2) * 2, np.arange(len(speech)), speech).astype(np.float32)
    ulaw = audioop.lin2ulaw((np.clip(at_8k, -1, 1) * 32767).astype("<i2").tobytes(), 2)
    frames: list[str | bytes] = [ulaw[i : i + 1600] for i in range(0, len(ulaw), 1600)]
    frames.append(json.dumps({"type": "CloseStream"}))
    url = listen_url(live_server, "encoding=mulaw&sample_rate=8000&punctuate=true")
    replies, close = asyncio.run(exchange(url, frames, settle=15))
    text = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in replies
                    if r["type"] == "Results" and r["is_final"])  # fmt: skip
    assert "dashwood" in text.lower() and close == 1000


def test_deepgram_finalize_is_answered_once_carried_out(live_server: LiveServer, speech: np.ndarray) -> None:
    """``Finalize`` right after the speech, before any pause could end it: the speech's text is
    final before the ``from_finalize`` answer comes; a ``Finalize`` with nothing heard yet gets an
    empty ``from_finalize`` answer."""
    pcm = to_pcm16(speech[: int(len(speech) * 0.7)])  # cut mid-speech: no pause ends it
    frames: list[str | bytes] = [json.dumps({"type": "Finalize"})]  # nothing heard yet
    frames += [pcm, json.dumps({"type": "Finalize"})]  # in one frame: not yet heard when it comes
    url = listen_url(live_server, "encoding=linear16&sample_rate=16000&punctuate=true")
    replies, _ = asyncio.run(exchange(url, frames, settle=8))
    finals = [r for r in replies if r["type"] == "Results" and r.get("from_finalize")]
    assert len(finals) == 2, [r["type"] for r in replies]
    assert finals[0]["channel"]["alternatives"][0]["transcript"] == ""
    text = " ".join(r["channel"]["alternatives"][0]["transcript"] for r in replies
                    if r["type"] == "Results" and r["is_final"])  # fmt: skip
    assert "dashwood" in text.lower()
    texts = [
        i
        for i, r in enumerate(replies)
        if r["type"] == "Results" and r["channel"]["alternatives"][0]["transcript"]
    ]
    assert texts and texts[-1] < replies.index(finals[1])  # the whole speech is final before the answer
