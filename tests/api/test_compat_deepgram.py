"""The Deepgram live translator alone (no socket, no model): options, results, errors."""

from __future__ import annotations

import json

import pytest

from wirescribe.api.actions import Audio, Configure
from wirescribe.api.compat.deepgram_live import (
    DeepgramLive,
    DeepgramRefused,
    parse_options,
    plain_word,
    refusal,
)
from wirescribe.api.protocol import ProtocolError
from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    CloseReason,
    Finalized,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)

LANGS = ("en",)


def live(**query: str) -> DeepgramLive:
    terms = query.pop("keyterm", "")
    return DeepgramLive(
        parse_options(query, [t for t in terms.split("|") if t], LANGS, "en"), model_name="tiny.en"
    )


def test_options_from_the_query() -> None:
    dg = live(encoding="linear16", sample_rate="24000", channels="1", language="en-US",
              interim_results="true",
              endpointing="300", utterance_end_ms="1000", vad_events="true", punctuate="true",
              keyterm="Dashwood|Norland", model="nova-3", no_delay="true", filler_words="false")  # fmt: skip
    assert dg.decoder_format == ("pcm16", 24000)
    assert dg.config.language == "en" and dg.config.keyterms == ("Dashwood", "Norland")
    assert dg.config.endpointing_ms == 300
    assert live(encoding="mulaw", sample_rate="8000").decoder_format == ("mulaw", 8000)
    assert live(encoding="opus").decoder_format[0] == "auto"  # Ogg/WebM Opus through ffmpeg
    assert live().decoder_format[0] == "auto"  # containerised audio: no encoding
    assert live(endpointing="10").config.endpointing_ms == 100  # Deepgram's 10 ms: our shortest pause
    assert live(endpointing="false", utterance_end_ms="1200").config.endpointing_ms == 1200


@pytest.mark.parametrize(
    "query",
    [{"encoding": "speex", "sample_rate": "16000"}, {"encoding": "linear16"}, {"encoding": "linear16",
     "sample_rate": "96000"}, {"channels": "2"}, {"multichannel": "true"}, {"language": "de"},
     {"interim_results": "maybe"}, {"endpointing": "soon"}, {"utterance_end_ms": "-1"}],
)  # fmt: skip
def test_bad_options_are_refused_as_bad_requests(query: dict[str, str]) -> None:
    with pytest.raises(DeepgramRefused) as e:
        parse_options(query, [], LANGS, "en")
    answer = refusal(e.value.code, e.value.message)
    assert answer.status == 400 and answer.body["err_code"] == "Bad Request" and answer.body["err_msg"]


def test_refusal_statuses() -> None:
    assert refusal("unauthorized", "no").status == 401
    assert refusal("busy", "full").status == 429


def test_committed_words_are_final_and_the_tail_is_interim() -> None:
    dg = live(interim_results="true", punctuate="true", vad_events="true", utterance_end_ms="1000")
    assert dg.event(SpeechStarted(0.5)) == [{"type": "SpeechStarted", "channel": [0], "timestamp": 0.5}]
    said = (Word(0.5, 0.7, " He", 0.9), Word(0.7, 1.0, " was", 0.8))
    out = dg.event(TranscriptChanged(" He was", " not an", 2.0, said, utterance=0))
    final, interim = out
    assert final["is_final"] and not final["speech_final"]
    alt = final["channel"]["alternatives"][0]
    assert alt["transcript"] == "He was" and alt["confidence"] == pytest.approx(0.85)
    assert alt["words"][0] == {
        "word": "he",
        "start": 0.5,
        "end": 0.7,
        "confidence": 0.9,
        "punctuated_word": "He",
    }
    assert (
        final["start"] == 0.0
        and final["duration"] == 1.0
        and final["metadata"]["request_id"] == dg.request_id
    )
    assert not interim["is_final"] and interim["channel"]["alternatives"][0]["transcript"] == "not an"
    assert interim["start"] == 1.0
    # The tentative tail comes without word probabilities: no confidence is made up for it.
    assert interim["channel"]["alternatives"][0]["confidence"] == 0.0
    assert interim["channel"]["alternatives"][0]["words"] == []
    out = dg.event(UtteranceEnded(0.5, 1.0, " He was", said, CloseReason.PAUSE))
    assert [m["type"] for m in out] == ["Results", "UtteranceEnd"]
    assert (
        out[0]["is_final"]
        and out[0]["speech_final"]
        and out[0]["channel"]["alternatives"][0]["transcript"] == ""
    )
    assert out[1]["last_word_end"] == 1.0


def test_without_punctuate_the_transcript_is_plain_words() -> None:
    dg = live()
    said = (Word(0, 0.5, " Hello,"), Word(0.5, 1.0, " Mr."), Word(1.0, 1.5, " Dashwood!"))
    out = dg.event(TranscriptChanged(" Hello, Mr. Dashwood!", "", 2.0, said))
    assert [m["channel"]["alternatives"][0]["transcript"] for m in out] == ["hello mr dashwood"]
    assert plain_word(" Don't!") == "don't"
    assert dg.event(SpeechStarted(0.0)) == []  # vad_events off
    assert len(dg.event(TranscriptChanged(" a", " b", 2.0))) == 0  # interim_results off


def test_utterance_end_needs_words_and_gives_the_last_ones_end() -> None:
    """``UtteranceEnd`` follows an utterance that had words (Deepgram sends none after noise),
    with the end of its last word: both read from the event, not counted here."""
    dg = live(utterance_end_ms="1000")
    assert [
        m["type"] for m in dg.event(UtteranceEnded(0.5, 0.9, "", (), CloseReason.PAUSE, utterance=3))
    ] == ["Results"]
    said = (Word(1.0, 1.2, " Yes", 0.9), Word(1.3, 1.7, " sir.", 0.9))
    out = dg.event(UtteranceEnded(1.0, 1.7, " Yes sir.", said, CloseReason.PAUSE, utterance=4))
    assert out[-1] == {"type": "UtteranceEnd", "channel": [0], "last_word_end": 1.7}


def test_finalize_is_answered_from_finalize_once() -> None:
    dg = live()
    parsed = dg.client_text(json.dumps({"type": "Finalize"}))
    assert [a.kind for a in parsed.actions] == ["finalize"]
    out = dg.event(UtteranceEnded(0.0, 1.0, " x", (), CloseReason.FINALIZE, utterance=0))
    assert out[0]["from_finalize"] and out[0]["is_final"] and out[0]["speech_final"]
    assert dg.event(Finalized(1.0, closed=0)) == []  # the utterance's end answered it
    dg.client_text('{"type": "Finalize"}')
    out = dg.event(Finalized(1.5, closed=None))  # nothing was open: an empty final result answers it
    assert out[0]["from_finalize"] and out[0]["channel"]["alternatives"][0]["transcript"] == ""


def test_a_pause_just_before_a_finalize_is_not_its_answer() -> None:
    """The pause ended the utterance before the ``Finalize`` was carried out: that end is a
    plain ``speech_final``; the finalize, finding nothing open, gets its own empty answer."""
    dg = live()
    dg.client_text('{"type": "Finalize"}')
    out = dg.event(UtteranceEnded(0.0, 1.0, " x", (), CloseReason.PAUSE, utterance=0))
    assert out[0]["speech_final"] and not out[0]["from_finalize"]
    (answer,) = dg.event(Finalized(1.2, closed=None))
    assert answer["from_finalize"] and answer["is_final"] and not answer["speech_final"]


def test_client_messages() -> None:
    dg = live()
    assert [a.kind for a in dg.client_text('{"type": "KeepAlive"}').actions] == ["keepalive"]
    assert [a.kind for a in dg.client_text('{"type": "CloseStream"}').actions] == ["eof"]
    assert dg.client_binary(b"\1\2").actions == (Audio(b"\1\2"),)
    parsed = dg.client_text('{"type": "Configure", "keyterms": ["Elinor"]}')
    configure = parsed.actions[0]
    assert isinstance(configure, Configure) and configure.config.keyterms == ("Elinor",)
    assert parsed.replies[0]["type"] == "ConfigureSuccess"
    assert dg.client_text('{"type": "Configure", "keyterms": "x"}').replies[0]["type"] == "ConfigureFailure"
    for bad in ("nope", '{"type": "Dance"}'):
        reply = dg.client_text(bad).replies[0]
        assert reply["type"] == "Error" and reply["variant"] == "SchemaError"
    meta = dg.final(12.5)[0]
    assert (
        meta["type"] == "Metadata"
        and meta["duration"] == 12.5
        and meta["channels"] == 1
        and len(meta["sha256"]) == 64
    )


def test_errors_close_as_deepgram_does() -> None:
    dg = live()
    message, code, reason = dg.error(ProtocolError("bad_audio", "cannot decode"))
    assert (message["type"], code, reason) == ("Error", 1008, "DATA-0000")
    assert dg.error(ProtocolError("timeout", "idle"))[1:] == (1011, "NET-0001")
