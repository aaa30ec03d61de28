"""Protocol 1.1 end to end: a real server, real speech in real time, the new parameters and
messages (events, words, keyterms, configure, finalize, keepalive) — and a version-1 client that
sees none of them."""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
import websockets

from tests.support import LiveServer, start_server, stop_server
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.client import StreamResult, pcm16_slices, stream, webm_slices
from wirescribe.wer import normalize_words, word_error_rate

pytestmark = pytest.mark.e2e

KEYTERMS = Path(__file__).parents[1] / "data" / "keyterms"
TYPES_V1 = {"ready", "transcript", "final"}


def check_events(result: StreamResult, audio_seconds: float) -> list[dict[str, Any]]:
    """speech_started < its utterance's words < utterance_end; utterance texts make the final
    text; word times monotonic and inside the audio. Returns the utterance_end messages."""
    final = result.final
    assert final is not None and result.close_code == 1000
    open_at: float | None = None
    ends: list[dict[str, Any]] = []
    words: list[dict[str, Any]] = []
    first_text_seen = False
    for received in result.messages:
        m = received.message
        if m["type"] == "speech_started":
            assert open_at is None, "speech_started twice without utterance_end"
            open_at = m["at"]
        elif m["type"] == "transcript":
            assert "words" in m
            if m["text"] and not first_text_seen:
                first_text_seen = True
                assert open_at is not None or ends, "a transcript before the first speech_started"
            if m["words"]:
                assert open_at is not None, "words committed outside an utterance"
            words.extend(m["words"])
        elif m["type"] == "utterance_end":
            assert open_at is not None, "utterance_end without speech_started"
            assert m["start"] >= open_at - 0.5
            assert not ends or m["start"] >= ends[-1]["end"]
            ends.append(m)
            open_at = None
    assert open_at is None
    assert "".join(e["text"] for e in ends) == final["text"]
    assert [w for e in ends for w in e["words"]] == words
    assert [w for s in final["segments"] for w in s["words"]] == words
    last = 0.0
    for w in words:
        assert last <= w["start"] <= w["end"] <= audio_seconds + 0.05, w
        assert 0.0 <= w["confidence"] <= 1.0
        last = w["end"]
    return ends


def test_events_and_words_on_real_speech(
    live_server: LiveServer, joined_speech: tuple[np.ndarray, str]
) -> None:
    """Five utterances, 1 s apart, streamed as WebM in real time with events and words on."""
    audio, reference = joined_speech
    url = live_server.ws + "?events=true&words=true"
    result = asyncio.run(stream(url, webm_slices(audio), interval=0.25))
    ready = result.messages[0].message
    assert ready["protocol"] == 1.2 and ready["node"]
    ends = check_events(result, len(audio) / SAMPLE_RATE)
    assert len(ends) >= 4  # the pauses between the utterances end them
    assert result.final is not None and word_error_rate(reference, result.final["text"]) < 0.1
    # Each utterance ends within a few seconds of its speech, not only at eof.
    eof_at = result.eof_at or 0.0
    early = [r for r in result.messages if r.message["type"] == "utterance_end" and r.at < eof_at]
    assert len(early) >= 3


def test_a_version_1_client_sees_only_version_1_messages(
    live_server: LiveServer, joined_speech: tuple[np.ndarray, str]
) -> None:
    audio, _ = joined_speech
    result = asyncio.run(stream(live_server.ws, webm_slices(audio[: 20 * SAMPLE_RATE]), interval=0.1))
    assert {r.message["type"] for r in result.messages} == TYPES_V1
    transcripts = result.of_type("transcript")
    assert transcripts and all("words" not in m for m in transcripts)
    assert result.final is not None and all(
        set(s) == {"start", "end", "text"} for s in result.final["segments"]
    )


def utterance(name: str) -> tuple[np.ndarray, str, list[str]]:
    entry = next(e for e in json.loads((KEYTERMS / "manifest.json").read_text()) if e["file"] == name)
    return decode_file(KEYTERMS / name), entry["text"], entry["terms"]


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def terms_right(terms: list[str], text: str) -> int:
    heard = set(normalize_words(fold(text)))
    return sum(all(w in heard for w in normalize_words(fold(t))) for t in terms)


def test_configure_mid_stream_changes_keyterms_from_the_next_window(live_server: LiveServer) -> None:
    """Names heard wrong without keyterms; after ``configure`` sends them, the next utterance's
    names are right. The ``configured`` reply carries the settings in force."""
    before, _, before_terms = utterance("siobhan_nguyen.ogg")
    after, text, terms = utterance("zbigniew_brzezinski.ogg")
    gap = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    configure = json.dumps({"type": "configure", "keyterms": terms, "endpointing": 600})
    chunks: list[bytes | str] = [
        *pcm16_slices(np.concatenate([before, gap]), 0.1),
        configure,
        *pcm16_slices(np.concatenate([after, gap]), 0.1),
    ]
    url = live_server.ws + "?format=pcm16&events=true&words=true"
    result = asyncio.run(stream(url, chunks, interval=0.1))
    assert result.of_type("configured") == [
        {"type": "configured", "language": "en", "keyterms": terms, "prompt": "", "endpointing": 600}
    ]
    ends = check_events(result, (len(before) + len(after) + 2 * len(gap)) / SAMPLE_RATE)
    assert len(ends) == 2, [e["text"] for e in ends]
    assert terms_right(before_terms, ends[0]["text"]) == 0, ends[0]["text"]
    assert terms_right(terms, ends[1]["text"]) == len(terms), ends[1]["text"]
    # The same speech without the keyterms: the names are wrong.
    plain = asyncio.run(stream(live_server.ws + "?format=pcm16", pcm16_slices(after, 0.1), interval=0.1))
    assert plain.final is not None
    assert terms_right(terms, plain.final["text"]) == 0, plain.final["text"]
    assert word_error_rate(text, ends[1]["text"]) < word_error_rate(text, plain.final["text"])


def test_keyterms_at_connect(live_server: LiveServer) -> None:
    audio, _, terms = utterance("tchaikovsky_dvorak.ogg")
    url = live_server.ws + "?format=pcm16&keyterms=" + quote(",".join(terms))
    result = asyncio.run(stream(url, pcm16_slices(audio, 0.1), interval=0.1))
    assert result.final is not None and terms_right(terms, result.final["text"]) == len(terms), result.final


def test_bad_configure_payloads_change_nothing(live_server: LiveServer) -> None:
    audio = decode_file(KEYTERMS / "quarrington.ogg")
    bad = [
        {"type": "configure", "keyterms": "Quarrington"},
        {"type": "configure", "endpointing": 20},
        {"type": "configure", "language": "de"},  # tiny.en speaks English only
        {"type": "configure", "keyterms": ["x"] * 101},
        {"type": "configure", "format": "f32"},
    ]
    chunks: list[bytes | str] = [json.dumps(b) for b in bad]
    chunks += [json.dumps({"type": "configure"}), *pcm16_slices(audio, 0.1)]
    url = live_server.ws + "?format=pcm16&keyterms=Ignatius&endpointing=700"
    result = asyncio.run(stream(url, chunks, interval=0.05))
    errors = result.errors
    assert [e["code"] for e in errors] == ["bad_message"] * len(bad)
    assert result.of_type("configured") == [
        {"type": "configured", "language": "en", "keyterms": ["Ignatius"], "prompt": "", "endpointing": 700}
    ]
    assert result.final is not None and result.final["text"] and result.close_code == 1000


def test_finalize_commits_the_tail_without_eof(live_server: LiveServer, utterances: list[Any]) -> None:
    """``finalize`` right after speech (no pause yet): everything said is committed and its
    utterance ends, while the session stays open for more."""
    first = decode_file(utterances[0].wav)
    second = decode_file(utterances[2].wav)

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None]:
        before: list[dict[str, Any]] = []
        after: list[dict[str, Any]] = []
        url = live_server.ws + "?format=pcm16&events=true"
        async with websockets.connect(url, max_size=None) as ws:
            start = time.perf_counter()
            for i, chunk in enumerate(pcm16_slices(first, 0.1)):
                await asyncio.sleep(max(0.0, start + i * 0.1 - time.perf_counter()))
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "finalize"}))
            while True:  # the utterance ends without eof and without waiting for a pause
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                before.append(msg)
                if msg["type"] == "utterance_end":
                    break
            for chunk in pcm16_slices(second, 0.1):
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "eof"}))
            async for raw in ws:
                after.append(json.loads(raw))
            return before, after, ws.close_code

    before, after, code = asyncio.run(run())
    end = next(m for m in before if m["type"] == "utterance_end")
    last = [m for m in before if m["type"] == "transcript"][-1]
    assert last["tentative"] == "" and last["committed"].endswith(end["text"])
    assert word_error_rate(utterances[0].text, end["text"]) < 0.2, end["text"]
    final = after[-1]
    assert final["type"] == "final" and code == 1000
    assert final["text"].startswith(last["committed"])
    assert word_error_rate(utterances[0].text + " " + utterances[2].text, final["text"]) < 0.2


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("impatient"), env={"STT_IDLE_TIMEOUT": "1.5"})
    yield server
    stop_server(server)


def test_keepalive_holds_an_idle_session_past_the_idle_timeout(impatient_server: LiveServer) -> None:
    keepalive = json.dumps({"type": "keepalive"})
    silence = pcm16_slices(np.zeros(SAMPLE_RATE, dtype=np.float32), 0.1)
    # 4 s with no audio at all, only keepalives (the idle timeout is 1.5 s), then audio.
    chunks: list[bytes | str] = []
    for _ in range(8):
        chunks += [keepalive, b""]  # b"": an empty slot in the pace, nothing is sent
    chunks += silence
    url = impatient_server.ws + "?format=pcm16"
    result = asyncio.run(stream(url, chunks, interval=0.5))
    assert result.errors == [] and result.final is not None and result.close_code == 1000
    # Without keepalives the same wait is a timeout.
    quiet = asyncio.run(stream(url, [b""] * 8 + silence, interval=0.5))
    assert [e["code"] for e in quiet.errors] == ["timeout"]
