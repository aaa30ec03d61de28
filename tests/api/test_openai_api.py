"""POST /v1/audio/transcriptions through OpenAI's own Python client.

In process with a fake model (shapes, errors, limits, the token), then against the real server
with the real model on LibriVox speech (word error rate, a long M4A in chunks, 413)."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from starlette.requests import ClientDisconnect, Request

from tests.support import LiveServer, Utterance, join_utterances, parse_metrics, start_server, stop_server
from tests.support.fakes import FAKE_TEXT, FakeTranscriber
from wirescribe.api.app import create_app
from wirescribe.api.deps import state_of_app
from wirescribe.api.openai_format import language_name, temperatures
from wirescribe.api.openai_rest import _unless_disconnected
from wirescribe.audio.decode import SAMPLE_RATE, encode_audio, find_ffmpeg
from wirescribe.settings import FileSettings, Settings, SettingsError
from wirescribe.wer import word_error_rate

LOCAL = "http://localhost"  # TestClient's own Host, 'testserver', is not an allowed Host


def client_for(http: Any, base: str = LOCAL, key: str = "unused") -> openai.OpenAI:
    """OpenAI's client sending through ``http`` (a TestClient: the app in process)."""
    return openai.OpenAI(base_url=f"{base}/v1", api_key=key, http_client=http, max_retries=0)


@pytest.fixture
def fake_model() -> FakeTranscriber:
    return FakeTranscriber()


@pytest.fixture
def app_client(fake_model: FakeTranscriber) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), fake_model), base_url=LOCAL) as http:  # type: ignore[arg-type]
        yield http


@pytest.fixture(scope="module")
def speech_wav(utterances: list[Utterance]) -> Path:
    return utterances[0].wav


def test_every_response_format(app_client: TestClient, speech_wav: Path, fake_model: FakeTranscriber) -> None:
    client = client_for(app_client)

    def create(fmt: str, **kwargs: object) -> object:
        with speech_wav.open("rb") as f:
            return client.audio.transcriptions.create(
                model="whisper-1", file=f, response_format=fmt, **kwargs
            )  # type: ignore[call-overload]

    result = create("json")
    assert result.text == FAKE_TEXT.strip()  # type: ignore[attr-defined]
    assert create("text") == FAKE_TEXT.strip() + "\n"
    srt = create("srt")
    assert isinstance(srt, str) and srt.startswith("1\n00:00:00,") and FAKE_TEXT.strip() in srt
    vtt = create("vtt")
    assert isinstance(vtt, str) and vtt.startswith("WEBVTT\n\n00:00:00.") and FAKE_TEXT.strip() in vtt
    verbose = create("verbose_json")
    assert verbose.language == "german" and verbose.task == "transcribe"  # type: ignore[attr-defined]
    assert verbose.duration == pytest.approx(7.1, abs=0.1)  # type: ignore[attr-defined]
    segment = verbose.segments[0]  # type: ignore[attr-defined]
    assert (segment.id, segment.tokens, segment.temperature, segment.text) == (0, [1, 2], 0.0, FAKE_TEXT)
    assert verbose.words is None  # type: ignore[attr-defined]
    assert not fake_model.options[-1].word_timestamps
    words_only = create("verbose_json", timestamp_granularities=["word"])
    assert words_only.segments is None  # type: ignore[attr-defined]
    assert [w.word for w in words_only.words] == ["Hello there", "general Kenobi."]  # type: ignore[attr-defined]
    assert fake_model.options[-1].word_timestamps
    both = create("verbose_json", timestamp_granularities=["word", "segment"])
    assert both.segments and both.words


def test_the_form_fields_reach_the_model(
    app_client: TestClient, speech_wav: Path, fake_model: FakeTranscriber
) -> None:
    with speech_wav.open("rb") as f:
        client_for(app_client).audio.transcriptions.create(
            model="whisper-1", file=f, language="en", prompt="Dashwood, Norland.", temperature=0.4
        )
    options = fake_model.options[-1]
    assert (options.language, options.prompt, options.temperature) == (
        "en",
        "Dashwood, Norland.",
        (0.4, 0.6, 0.8, 1.0),
    )
    assert options.beam_size == 5 and options.context_seconds is None


def test_bad_requests_are_400_in_openai_shape(app_client: TestClient, speech_wav: Path) -> None:
    client = client_for(app_client)
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="whisper-1", file=("notes.mp3", b"this is not audio" * 100))
    assert e.value.status_code == 400
    body = e.value.body
    assert isinstance(body, dict) and body["param"] == "file" and body["code"] == "invalid_file"
    assert body["type"] == "invalid_request_error" and "could not be decoded" in body["message"]
    assert "/tmp" not in body["message"]  # the server's temporary path stays on the server

    cases: list[tuple[dict[str, object], str]] = [
        ({"response_format": "json", "timestamp_granularities": ["word"]}, "timestamp_granularities"),
        ({"response_format": "xml"}, "response_format"),
        ({"temperature": 1.5}, "temperature"),
        ({"language": "xx"}, "language"),
    ]
    for kwargs, param in cases:
        with speech_wav.open("rb") as f, pytest.raises(openai.BadRequestError) as e:
            client.audio.transcriptions.create(model="whisper-1", file=f, **kwargs)  # type: ignore[call-overload]
        assert isinstance(e.value.body, dict) and e.value.body["param"] == param, kwargs

    no_file = app_client.post("/v1/audio/transcriptions", data={"model": "whisper-1"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    not_a_form = app_client.post("/v1/audio/transcriptions", json={"model": "whisper-1"})
    assert not_a_form.status_code == 400 and not_a_form.json()["error"]["code"] == "missing_file"


def multipart(fields: dict[str, str], audio: bytes, boundary: str = "b0undary") -> bytes:
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in fields.items()
    ]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    return "".join(parts).encode() + head.encode() + audio + f"\r\n--{boundary}--\r\n".encode()


def test_uploads_over_the_limit_are_413_with_or_without_a_length(
    fake_model: FakeTranscriber, speech_wav: Path
) -> None:
    app = create_app(Settings(files=FileSettings(max_upload_bytes=50_000)), fake_model)  # type: ignore[arg-type]
    audio = speech_wav.read_bytes()  # about 230 kB
    with TestClient(app, base_url=LOCAL) as http:
        with speech_wav.open("rb") as f, pytest.raises(openai.APIStatusError) as e:
            client_for(http).audio.transcriptions.create(model="whisper-1", file=f)
        assert e.value.status_code == 413
        assert isinstance(e.value.body, dict) and e.value.body["code"] == "file_too_large"
        body = multipart({"model": "whisper-1"}, audio)
        chunked = http.post(  # no Content-Length: the bytes are counted as they arrive
            "/v1/audio/transcriptions",
            content=iter([body[i : i + 8192] for i in range(0, len(body), 8192)]),
            headers={"content-type": "multipart/form-data; boundary=b0undary"},
        )
        assert chunked.status_code == 413
        small = multipart({"model": "whisper-1"}, audio[:40_000])  # under the limit: transcribed
        headers = {"content-type": "multipart/form-data; boundary=b0undary"}
        assert http.post("/v1/audio/transcriptions", content=small, headers=headers).status_code == 200
        scraped = http.get("/metrics").text
    assert 'stt_errors_total{code="too_large"} 2.0' in scraped


def test_the_access_token_is_the_api_key(fake_model: FakeTranscriber, speech_wav: Path) -> None:
    app = create_app(Settings(token="s3cret"), fake_model)  # type: ignore[arg-type]
    with TestClient(app, base_url=LOCAL) as http:
        with speech_wav.open("rb") as f, pytest.raises(openai.AuthenticationError) as e:
            client_for(http, key="wrong").audio.transcriptions.create(model="whisper-1", file=f)
        assert isinstance(e.value.body, dict) and e.value.body["code"] == "invalid_api_key"
        with speech_wav.open("rb") as f:
            result = client_for(http, key="s3cret").audio.transcriptions.create(model="whisper-1", file=f)
        assert result.text == FAKE_TEXT.strip()
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_uploads_take_turns_and_past_the_line_is_429(
    fake_model: FakeTranscriber, joined_speech: tuple[np.ndarray, str]
) -> None:
    body = encode_audio(np.concatenate([joined_speech[0]] * 2), "mp3")  # 60 s: two chunks or more
    with TestClient(create_app(Settings(), fake_model), base_url=LOCAL) as http:  # type: ignore[arg-type]

        def upload(prompt: str) -> int:
            files = {"file": ("a.mp3", body)}
            return http.post("/v1/audio/transcriptions", files=files, data={"prompt": prompt}).status_code

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(upload, ["first", "second"])) == [200, 200]
        prompts = [o.prompt for o in fake_model.options]
        assert len(prompts) >= 4 and prompts == sorted(prompts, key=prompts.index)  # A A … B B …: in turn
        assert len(set(prompts)) == 2

        state = state_of_app(http.app)
        assert state is not None
        files = state.settings.files
        state.file_turns.admitted = files.max_jobs + files.max_queue  # as if that many were in line
        try:
            with pytest.raises(openai.RateLimitError) as e:
                client_for(http).audio.transcriptions.create(model="whisper-1", file=("a.mp3", body))
            assert e.value.response.headers["retry-after"] == "5"
        finally:
            state.file_turns.admitted = 0


def test_a_client_that_goes_away_cancels_its_transcription() -> None:
    async def scenario() -> bool:
        cancelled = asyncio.Event()

        async def receive() -> dict[str, str]:
            await asyncio.sleep(0.05)
            return {"type": "http.disconnect"}

        async def work() -> str:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "done"

        request = Request({"type": "http", "method": "POST", "headers": []}, receive)
        with pytest.raises(ClientDisconnect):
            await _unless_disconnected(request, work())
        return cancelled.is_set()

    assert asyncio.run(scenario())


def test_temperatures_and_language_names_and_settings() -> None:
    assert temperatures(0.0) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperatures(0.5) == (0.5, 0.7, 0.9)
    assert temperatures(1.0) == (1.0,)
    assert language_name("en") == "english" and language_name("ht") == "haitian creole"
    assert language_name("xx") == "xx"
    assert Settings.from_env({}).files == FileSettings()
    config = Settings.from_env({"STT_MAX_UPLOAD_BYTES": "1000", "STT_FILE_CHUNK_SECONDS": "20"}).files
    assert (config.max_upload_bytes, config.chunk_seconds) == (1000, 20.0)
    for bad in (
        {"STT_MAX_UPLOAD_BYTES": "lots"},
        {"STT_FILE_CHUNK_SECONDS": "45"},
        {"STT_MAX_FILE_JOBS": "0"},
    ):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            Settings.from_env(bad)


# --- the real server, the real model ----------------------------------------------------------


def m4a_with_index_at_the_end(audio: np.ndarray, path: Path) -> Path:
    """What phones and iTunes write: a plain MP4 whose moov atom follows the audio (unreadable
    from a pipe; the server must give ffmpeg a seekable file)."""
    wav = path.with_suffix(".wav")
    wav.write_bytes(encode_audio(audio, "wav"))
    cmd = [find_ffmpeg(), "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", "-b:a", "64k", str(path)]
    subprocess.run(cmd, check=True)
    data = path.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat") > 0
    return path


@pytest.mark.e2e
def test_openai_client_against_the_real_server(
    live_server: LiveServer, utterances: list[Utterance], joined_speech: tuple[np.ndarray, str]
) -> None:
    client = openai.OpenAI(base_url=f"{live_server.http}/v1", api_key="unused", max_retries=0)
    u = utterances[0]  # 7 s, 21 words
    results: dict[str, object] = {}
    for fmt in ("json", "text", "srt", "vtt"):
        with u.wav.open("rb") as f:
            results[fmt] = client.audio.transcriptions.create(model="whisper-1", file=f, response_format=fmt)
    assert word_error_rate(u.text, results["json"].text) <= 0.15, results["json"]  # type: ignore[attr-defined]
    assert word_error_rate(u.text, str(results["text"])) <= 0.15
    for fmt in ("srt", "vtt"):
        cue_text = " ".join(line for line in str(results[fmt]).splitlines() if line and "-->" not in line
                            and not line.isdigit() and line != "WEBVTT")  # fmt: skip
        assert word_error_rate(u.text, cue_text) <= 0.15, results[fmt]

    audio, reference = joined_speech  # 30 s, 90 words, as MP3
    verbose = client.audio.transcriptions.create(
        model="whisper-1",
        file=("joined.mp3", encode_audio(audio, "mp3")),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "english" and verbose.segments and verbose.words
    assert word_error_rate(reference, verbose.text) <= 0.1, verbose.text
    assert word_error_rate(reference, " ".join(w.word for w in verbose.words)) <= 0.1
    starts = [w.start for w in verbose.words]
    assert starts == sorted(starts) and verbose.words[-1].end <= verbose.duration + 0.1

    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="whisper-1", file=("broken.wav", b"RIFF" + b"\0" * 4000))


@pytest.mark.e2e
def test_a_long_m4a_is_transcribed_in_chunks(
    live_server: LiveServer, utterances: list[Utterance], tmp_path: Path
) -> None:
    audio, reference = join_utterances([*utterances, *utterances[:3]], pause=0.8)  # about 46 s
    path = m4a_with_index_at_the_end(audio, tmp_path / "long.m4a")
    before = scrape(live_server.http)
    client = openai.OpenAI(base_url=f"{live_server.http}/v1", api_key="unused", max_retries=0)
    with path.open("rb") as f:
        result = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json")
    assert result.duration == pytest.approx(len(audio) / SAMPLE_RATE, abs=0.1)
    assert word_error_rate(reference, result.text) <= 0.1, result.text
    assert result.segments and result.segments[-1].end > 35.0  # one timeline across the chunks
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    after = scrape(live_server.http)
    assert after["stt_scheduler_jobs_total"] - before["stt_scheduler_jobs_total"] >= 2  # ≤ 30 s per call
    assert after["stt_file_transcriptions_total"] - before.get("stt_file_transcriptions_total", 0) == 1
    assert after['stt_audio_seconds_total{source="file"}'] >= len(audio) / SAMPLE_RATE - 0.1


def scrape(base: str) -> dict[str, float]:
    """/metrics parsed: ``name{label="value"}`` → value."""
    return parse_metrics(httpx.get(f"{base}/metrics").text)


@pytest.mark.e2e
def test_a_server_with_a_small_upload_limit_answers_413(tmp_path: Path, utterances: list[Utterance]) -> None:
    server = start_server(tmp_path, env={"STT_MAX_UPLOAD_BYTES": "100000"})
    try:
        client = openai.OpenAI(base_url=f"{server.http}/v1", api_key="unused", max_retries=0)
        big = encode_audio(np.zeros(10 * SAMPLE_RATE, dtype=np.float32), "wav")  # 320 kB
        with pytest.raises(openai.APIStatusError) as e:
            client.audio.transcriptions.create(model="whisper-1", file=("big.wav", big))
        assert e.value.status_code == 413
        assert json.loads(e.value.response.text)["error"]["code"] == "file_too_large"
        with utterances[0].wav.open("rb") as f:  # the server is still fine for the next request
            with pytest.raises(openai.APIStatusError):
                client.audio.transcriptions.create(model="whisper-1", file=f)  # 230 kB: also too large
        small = encode_audio(np.zeros(SAMPLE_RATE, dtype=np.float32), "mp3")
        assert client.audio.transcriptions.create(model="whisper-1", file=("quiet.mp3", small)).text == ""
    finally:
        stop_server(server)
