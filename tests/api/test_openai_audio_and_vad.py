"""OpenAI Realtime sessions: G.711 chosen by ``session.update`` is decoded straight to 16 kHz
(no 24 kHz PCM16 detour), and ``turn_detection.threshold`` is the session's voice-activity
threshold — quiet speech in noise starts a turn at 0.5 and not at 0.95 (real Silero, in
process; the model is a fake, the turns are the VAD's)."""

from __future__ import annotations

import base64
import json
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import soxr
from fastapi.testclient import TestClient

from tests.support import Utterance
from tests.support.fakes import FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.api.compat.dialects import OpenAIRealtimeDialect
from wirescribe.api.edge import Audio, Finalize, Reply
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.audio.raw import RawConverter
from wirescribe.audio.vad import VadOptions
from wirescribe.settings import Settings

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host
REALTIME = "ws://localhost/v1/realtime?intent=transcription"  # websocket_connect ignores base_url
PREFIX_MS = 300  # OpenAI's default prefix_padding_ms: speech_started's audio_start_ms is this early


def update(**inp: Any) -> str:
    return json.dumps(
        {"type": "session.update", "session": {"type": "transcription", "audio": {"input": inp}}}
    )


def append(pcm: bytes) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


def test_g711_is_decoded_straight_to_16_khz() -> None:
    transcriber = FakeTranscriber()
    websocket = SimpleNamespace(query_params={"intent": "transcription"}, headers={}, scope={})
    dialect = OpenAIRealtimeDialect()
    setup = dialect.setup(cast(Any, websocket), cast(Any, SimpleNamespace(transcriber=transcriber)))
    assert (setup.format, setup.sample_rate) == ("f32", SAMPLE_RATE)  # the dialect resamples
    dialect.control(update(format={"type": "audio/pcmu"}), setup.config, ())
    codes = bytes(np.random.default_rng(4).integers(0, 256, 8000, dtype=np.uint8))  # 1 s of µ-law
    sent: list[bytes] = []
    for i in range(0, len(codes), 160):  # 20 ms appends
        sent += [
            a.data
            for a in dialect.control(append(codes[i : i + 160]), setup.config, ())
            if isinstance(a, Audio)
        ]
    sent.append(dialect.held_audio())
    direct = RawConverter("mulaw", 8000)
    expected = np.concatenate([direct.convert(codes), direct.flush()])
    assert np.array_equal(np.frombuffer(b"".join(sent), "<f4"), expected)  # one table, one resampling
    assert len(expected) == SAMPLE_RATE


def test_pcm16_at_24_khz_is_resampled_by_the_dialect_too() -> None:
    websocket = SimpleNamespace(query_params={}, headers={}, scope={"type": "websocket"})
    dialect = OpenAIRealtimeDialect()
    setup = dialect.setup(cast(Any, websocket), cast(Any, SimpleNamespace(transcriber=FakeTranscriber())))
    pcm = (np.sin(np.arange(24000) * 2 * np.pi * 440 / 24000) * 8000).astype("<i2").tobytes()
    sent = [a.data for a in dialect.control(append(pcm), setup.config, ()) if isinstance(a, Audio)]
    sent.append(dialect.held_audio())
    assert len(b"".join(sent)) == SAMPLE_RATE * 4  # one second of f32 at 16 kHz


def test_the_threshold_is_checked_and_echoed() -> None:
    websocket = SimpleNamespace(query_params={}, headers={}, scope={"type": "websocket"})
    dialect = OpenAIRealtimeDialect()
    setup = dialect.setup(cast(Any, websocket), cast(Any, SimpleNamespace(transcriber=FakeTranscriber())))
    assert dialect.vad_options() == VadOptions()
    (reply,) = dialect.control(
        update(turn_detection={"type": "server_vad", "threshold": 0.8}), setup.config, ()
    )
    assert isinstance(reply, Reply) and reply.messages[0]["type"] == "session.updated"
    echoed = reply.messages[0]["session"]["audio"]["input"]["turn_detection"]
    assert echoed["threshold"] == 0.8 and dialect.vad_options() == VadOptions.at(0.8)
    for bad in (1.5, -0.1, "high", True):
        (reply,) = dialect.control(
            update(turn_detection={"type": "server_vad", "threshold": bad}), setup.config, ()
        )
        assert isinstance(reply, Reply)
        error = reply.messages[0]
        assert error["type"] == "error" and "threshold" in error["error"]["message"], error
    assert dialect.vad_options() == VadOptions.at(0.8)  # a refused update changes nothing
    dialect.control(update(turn_detection=None), setup.config, ())
    assert dialect.vad_options() == VadOptions()  # the client commits: the default decides


def quiet_then_loud(utterances: list[Utterance]) -> tuple[bytes, float]:
    """Quiet speech in steady noise (Silero: 0.5–0.9 at best), a pause, then the same voice
    at full level (above 0.95), as PCM16 at 24 kHz; and when the loud part starts (s)."""
    rng = np.random.default_rng(0)
    quiet, loud = decode_file(utterances[1].wav) * 0.1, decode_file(utterances[2].wav)
    pause = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([quiet, pause, loud, pause])
    audio = audio + 0.01 * rng.standard_normal(len(audio)).astype(np.float32)
    at24k = soxr.resample(audio, SAMPLE_RATE, 24000)
    return (np.clip(at24k, -1, 1) * 32767).astype("<i2").tobytes(), (len(quiet) + len(pause)) / SAMPLE_RATE


def first_turn_start(client: TestClient, threshold: float, pcm: bytes) -> float:
    """Seconds into the audio where the session's first turn starts (speech_started's
    ``audio_start_ms`` plus the prefix padding it is reported with)."""
    with client.websocket_connect(REALTIME) as ws:
        assert ws.receive_json()["type"] == "session.created"
        ws.send_text(update(turn_detection={"type": "server_vad", "threshold": threshold}))
        updated = ws.receive_json()
        assert updated["session"]["audio"]["input"]["turn_detection"]["threshold"] == threshold, updated
        for i in range(0, len(pcm), 4800):  # 100 ms appends
            ws.send_text(append(pcm[i : i + 4800]))
        while (message := ws.receive_json())["type"] != "input_audio_buffer.speech_started":
            assert message["type"] != "error", message
    return float(message["audio_start_ms"] + PREFIX_MS) / 1000


def test_a_high_threshold_keeps_quiet_speech_from_starting_a_turn(utterances: list[Utterance]) -> None:
    pcm, loud_at = quiet_then_loud(utterances)
    app = create_app(Settings(), FakeTranscriber())  # type: ignore[arg-type]
    with TestClient(app, base_url=LOCAL) as client:
        assert first_turn_start(client, 0.5, pcm) < loud_at - 1.5  # the quiet speech started it
        assert loud_at <= first_turn_start(client, 0.95, pcm) < loud_at + 1  # only the loud speech did


def test_a_commit_hears_all_the_audio_before_it() -> None:
    """The dialect's resampler holds its last block back; a commit sends it first."""
    websocket = SimpleNamespace(query_params={}, headers={}, scope={"type": "websocket"})
    dialect = OpenAIRealtimeDialect()
    setup = dialect.setup(cast(Any, websocket), cast(Any, SimpleNamespace(transcriber=FakeTranscriber())))
    dialect.control(update(format={"type": "audio/pcmu"}), setup.config, ())
    codes = bytes(np.random.default_rng(5).integers(0, 256, 1600, dtype=np.uint8))  # 200 ms
    actions = [
        a for i in range(0, 1600, 160) for a in dialect.control(append(codes[i : i + 160]), setup.config, ())
    ]
    actions += dialect.control(json.dumps({"type": "input_audio_buffer.commit"}), setup.config, ())
    assert isinstance(actions[-1], Finalize)
    sent = b"".join(a.data for a in actions[:-1] if isinstance(a, Audio))
    assert len(sent) == 3200 * 4  # 200 ms at 16 kHz, f32: all of it before the Finalize
