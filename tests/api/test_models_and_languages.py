"""Models, languages and translation per session, with fakes (no model): which model and
options each protocol hands the scheduler, the refusals, GET /v1/models, and language=auto's
detection told once."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from tests.asr.test_models_registry import Named, model_set
from tests.support import Utterance
from tests.support.sessions import FakeDecoder, always_speech
from wirescribe.api import language_choice
from wirescribe.api.app import create_app
from wirescribe.api.session_options import OptionError
from wirescribe.asr.scheduler import Scheduler
from wirescribe.asr.types import DecodeOptions, Segment, Transcript, Word
from wirescribe.audio.vad import VoiceActivity
from wirescribe.settings import Settings
from wirescribe.streaming.decoding import detect_language
from wirescribe.streaming.events import Event, LanguageDetected, SessionConfig, TranscriptChanged
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import LiveSession

LOCAL = "http://localhost"
WS_LOCAL = "ws://localhost"  # websocket_connect ignores base_url


@pytest.fixture
def english() -> Named:
    return Named("tiny.en", ["en"])


@pytest.fixture
def multi() -> Named:
    return Named("base", ["en", "fr", "es", "ja"])


@pytest.fixture
def http(english: Named, multi: Named) -> Iterator[TestClient]:
    models = model_set({"tiny.en": english, "base": multi}, "tiny.en")
    with TestClient(create_app(Settings(), models), base_url=LOCAL) as client:
        yield client


def openai_client(http: TestClient) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{LOCAL}/v1", api_key="unused", http_client=http, max_retries=0)


def test_the_choice_of_model_language_and_task(english: Named, multi: Named) -> None:
    models = model_set({"tiny.en": english, "base": multi}, "tiny.en")
    assert language_choice.choose(models).language == "en"  # the default model's own
    auto = language_choice.choose(models, "base", "auto")
    assert (auto.name, auto.language, auto.task, auto.multilingual) == ("base", None, "transcribe", True)
    assert language_choice.choose(models, "base", "FR", "translate").language == "fr"
    refusals = {
        ("tiny.en", "fr", None): "speaks English only, not 'fr'",
        ("tiny.en", None, "translate"): "cannot translate",
        ("large-v3", None, None): "'large-v3' is not loaded here (loaded: tiny.en, base)",
        ("base", "xx", None): "language 'xx' is not supported",
        ("base", None, "summarize"): "task must be transcribe or translate",
    }
    for (model, language, task), message in refusals.items():
        with pytest.raises(OptionError, match=re.escape(message)):
            language_choice.choose(models, model, language, task)
    # OpenAI's names stand for the default, or for a multilingual model when more is asked.
    assert language_choice.choose_openai(models, "whisper-1", None).name == "tiny.en"
    assert language_choice.choose_openai(models, "whisper-1", "es").name == "base"
    assert language_choice.choose_openai(models, "gpt-realtime-whisper", None).name == "tiny.en"
    assert language_choice.choose_openai(models, "gpt-4o-transcribe", None, "translate").name == "base"
    with pytest.raises(language_choice.UnknownModelName):
        language_choice.choose_openai(models, "whisper-2", None)
    # Deepgram's: its tiers, language=multi and detect_language.
    assert language_choice.choose_deepgram(models, "nova-3", "en-US", False).name == "tiny.en"
    assert language_choice.choose_deepgram(models, "nova-3", "fr-FR", False).language == "fr"
    multi_choice = language_choice.choose_deepgram(models, "nova-2", "multi", False)
    assert (multi_choice.name, multi_choice.language) == ("base", None)
    assert language_choice.choose_deepgram(models, "base", None, True).language is None
    with pytest.raises(OptionError, match="not served here"):
        language_choice.choose_deepgram(models, "my-model", None, False)


def test_models_are_listed_as_openai_lists_them(http: TestClient) -> None:
    listed = openai_client(http).models.list()
    assert [m.id for m in listed.data] == ["tiny.en", "base"]
    body = http.get("/v1/models").json()
    assert body["object"] == "list" and body["data"][0]["default"] is True
    assert body["data"][1]["multilingual"] is True and "translate" in body["data"][1]["tasks"]
    assert body["data"][0]["languages"] == ["en"]


def test_uploads_choose_their_model(
    http: TestClient, english: Named, multi: Named, utterances: list[Utterance]
) -> None:
    client = openai_client(http)
    wav = utterances[0].wav
    with wav.open("rb") as f:
        client.audio.transcriptions.create(model="base", file=f, language="fr")
    assert (multi.options[-1].model, multi.options[-1].language, multi.options[-1].task) == (
        "base",
        "fr",
        "transcribe",
    )
    with wav.open("rb") as f:
        client.audio.transcriptions.create(model="whisper-1", file=f)
    assert english.options[-1].model == "tiny.en"
    with wav.open("rb") as f:
        translated = client.audio.translations.create(model="whisper-1", file=f)
    assert translated.text and (multi.options[-1].task, multi.options[-1].language) == ("translate", None)
    with pytest.raises(openai.NotFoundError) as missing, wav.open("rb") as f:
        client.audio.transcriptions.create(model="large-v3", file=f)
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as refused, wav.open("rb") as f:
        client.audio.transcriptions.create(model="tiny.en", file=f, language="fr")
    assert "speaks English only" in refused.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("model=tiny.en&language=fr", "speaks English only"),
        ("model=large-v3", "is not loaded here"),
        ("task=translate", "cannot translate"),
        ("model=base&task=shout", "task must be"),
    ],
)
def test_the_native_protocol_refuses_what_a_model_cannot_do(
    http: TestClient, query: str, message: str
) -> None:
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?{query}") as ws:
        error = ws.receive_json()
    assert error["type"] == "error" and error["code"] == "bad_request" and message in error["message"]


def test_the_native_protocol_opens_a_session_of_the_model_asked_for(http: TestClient, multi: Named) -> None:
    with http.websocket_connect(
        f"{WS_LOCAL}/ws/transcribe?model=base&language=auto&task=translate&format=pcm16"
    ) as ws:
        ready = ws.receive_json()
        assert (ready["model"], ready["language"], ready["task"]) == ("base", None, "translate")
        ws.send_bytes((np.sin(np.arange(32000) / 5) * 8000).astype("<i2").tobytes())
        ws.send_json({"type": "eof"})
        messages = []
        while (message := ws.receive_json())["type"] != "final":
            messages.append(message)
    assert message["language"] is None or isinstance(message["language"], str)
    assert all(o.model == "base" and o.task == "translate" for o in multi.options)


def heard_in(language: str) -> object:
    def model(audio: np.ndarray, options: DecodeOptions) -> Transcript:
        seconds = len(audio) / 16000
        word = Word(0.1, min(0.5, seconds), " bonjour", 0.9)
        return Transcript(
            (Segment(0.1, word.end, " bonjour", (word,)),), options.language or language, seconds
        )

    return model


def test_detection_waits_for_enough_speech_then_fixes_the_language() -> None:
    from wirescribe.streaming.window import Window

    config = SessionConfig(language=None)
    result = Transcript((Segment(0.0, 1.0, " bonjour"),), "fr", 1.0)
    short = Window(np.zeros(16000, np.float32), start=0, prompt="")  # 1 s, not closing
    assert detect_language(config, short, result) is None
    long = Window(np.zeros(3 * 16000, np.float32), start=0, prompt="")
    fixed = detect_language(config, long, result)
    assert fixed is not None and fixed[0].language == "fr" and fixed[1] == LanguageDetected("fr", 3.0)
    assert detect_language(fixed[0], long, result) is None  # once
    assert detect_language(config, long, Transcript((), "fr", 3.0)) is None  # no words: not heard


def test_an_auto_session_is_told_its_language_once_and_keeps_it() -> None:
    async def main() -> tuple[list[Event], list[DecodeOptions]]:
        asked: list[DecodeOptions] = []

        def model(audio: np.ndarray, options: DecodeOptions) -> Transcript:
            asked.append(options)
            return heard_in("fr")(audio, options)  # type: ignore[operator]

        scheduler = Scheduler(model)
        await scheduler.start()
        events: list[Event] = []

        async def emit(event: Event) -> None:
            events.append(event)

        decoder = FakeDecoder()
        policy = StreamingPolicy(VoiceActivity(always_speech))
        config = SessionConfig(language=None, model="base")
        session = LiveSession(
            decoder, policy, scheduler, emit, config=config, max_seconds=60, decode_timeout=1
        )
        worker = asyncio.create_task(session.run())
        try:
            for _ in range(8):
                await session.feed(np.zeros(8000, dtype="<i2").tobytes())
                await asyncio.sleep(0.05)
            await session.end_input()
            await asyncio.wait_for(worker, 10)
        finally:
            await scheduler.stop()
        return events, asked

    events, asked = asyncio.run(main())
    detected = [e for e in events if isinstance(e, LanguageDetected)]
    assert [d.language for d in detected] == ["fr"]
    first = events.index(detected[0])
    assert any(isinstance(e, TranscriptChanged) for e in events[first:])
    assert asked[-1].language == "fr" and all(o.model == "base" for o in asked)


def test_translations_need_a_file(http: TestClient, tmp_path: Path) -> None:
    response = http.post("/v1/audio/translations", data={"model": "whisper-1"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "file"


def test_configure_switches_among_the_sessions_models_languages(http: TestClient) -> None:
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?model=base&format=pcm16") as ws:
        assert ws.receive_json()["model"] == "base"
        ws.send_json({"type": "configure", "language": "es"})
        assert ws.receive_json() == {**ws_configured(), "language": "es"}
        ws.send_json({"type": "eof"})
        while ws.receive_json()["type"] != "final":
            pass
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?format=pcm16") as ws:  # tiny.en
        ws.receive_json()
        ws.send_json({"type": "configure", "language": "es"})
        refused = ws.receive_json()
        assert refused["type"] == "error" and refused["code"] == "bad_message"


def ws_configured() -> dict[str, object]:
    return {"type": "configured", "keyterms": [], "prompt": "", "endpointing": 800}


def test_a_language_set_by_configure_is_the_one_the_final_reports(http: TestClient, multi: Named) -> None:
    with http.websocket_connect(f"{WS_LOCAL}/ws/transcribe?model=base&language=auto&format=pcm16") as ws:
        assert ws.receive_json()["language"] is None
        ws.send_json({"type": "configure", "language": "fr"})
        while (message := ws.receive_json())["type"] != "configured":
            pass
        assert message["language"] == "fr"
        ws.send_bytes((np.sin(np.arange(16000) / 5) * 8000).astype("<i2").tobytes())
        ws.send_json({"type": "eof"})
        while (message := ws.receive_json())["type"] != "final":
            pass
    assert message["language"] == "fr"
