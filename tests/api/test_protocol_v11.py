"""Protocol 1.1's additions in protocol.py: new parameters and their limits, configure/finalize/
keepalive, the new messages' shapes (against docs/protocol.md's section 5, version 1.1)."""

from __future__ import annotations

import json

import pytest

from wirescribe.api import protocol
from wirescribe.api.protocol import ProtocolError, SessionParams, parse_control, parse_params
from wirescribe.asr.model import Segment, Word
from wirescribe.streaming.events import (
    CloseReason,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)
from wirescribe.streaming.policy import FinalTranscript

LANGS = ["en", "de", "fr"]


def params(query: dict[str, str]) -> SessionParams:
    return parse_params(query, LANGS, "en")


def refused(query: dict[str, str]) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_params(query, LANGS, "en")
    assert info.value.code == "bad_request" and info.value.close == 1008
    return info.value


def test_a_version_1_connection_asks_for_nothing_new() -> None:
    p = params({})
    assert (p.events, p.words) == (False, False)
    assert p.config == SessionConfig(language="en", keyterms=(), prompt="", endpointing_ms=800)
    assert p.config.hotwords() is None


def test_the_new_parameters() -> None:
    p = params({
        "events": "true", "words": "true", "keyterms": " Asterisk , Dashwood,Kubernetes ",
        "prompt": "A talk about telephony.", "endpointing": "500", "language": "de",
    })  # fmt: skip
    assert (p.events, p.words) == (True, True)
    assert p.config == SessionConfig(
        "de", ("Asterisk", "Dashwood", "Kubernetes"), "A talk about telephony.", 500
    )
    assert p.config.pause == 0.5
    assert p.config.hotwords() == "A talk about telephony. Asterisk, Dashwood, Kubernetes"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"events": "yes"}, "events"),
        ({"words": "2"}, "words"),
        ({"endpointing": "99"}, "endpointing"),
        ({"endpointing": "5001"}, "endpointing"),
        ({"endpointing": "5e2"}, "endpointing"),
        ({"endpointing": "-500"}, "endpointing"),
        ({"endpointing": ""}, "endpointing"),
        ({"keyterms": ",".join(["x"] * 101)}, "keyterms"),
        ({"keyterms": "a,,b"}, "keyterms"),
        ({"keyterms": "y" * 1001}, "keyterms"),
        ({"keyterms": "bad\x00term"}, "keyterms"),
        ({"prompt": "p" * 1001}, "prompt"),
        ({"prompt": "bell\x07"}, "prompt"),
    ],
)
def test_bad_new_parameters_are_refused(query: dict[str, str], named: str) -> None:
    err = refused(query)
    assert named in err.message
    assert len(err.message) < 200  # a big value is not echoed back


def test_the_limits_themselves_are_allowed() -> None:
    p = params({"keyterms": ",".join(["abcdefghi"] * 100), "prompt": "p" * 1000, "endpointing": "5000"})
    assert len(p.config.keyterms) == 100 and len(p.config.prompt) == 1000
    assert params({"endpointing": "100"}).config.endpointing_ms == 100


# -- control messages --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["eof", "finalize", "keepalive"])
def test_the_plain_control_messages(kind: str) -> None:
    assert parse_control(json.dumps({"type": kind})) == protocol.Control(kind)


def test_configure_changes_only_what_it_names() -> None:
    current = SessionConfig("en", ("Old",), "old prompt", 800)
    got = parse_control('{"type":"configure","keyterms":["Asterisk"],"endpointing":300}', current, LANGS)
    assert got.kind == "configure"
    assert got.config == SessionConfig("en", ("Asterisk",), "old prompt", 300)
    got = parse_control('{"type":"configure","language":"fr","prompt":"","keyterms":[]}', current, LANGS)
    assert got.config == SessionConfig("fr", (), "", 800)


@pytest.mark.parametrize(
    "body",
    [
        {"keyterms": "Asterisk"},  # not a list
        {"keyterms": [1, 2]},
        {"keyterms": [""]},
        {"keyterms": ["t"] * 101},
        {"prompt": 5},
        {"prompt": "x" * 1001},
        {"language": "xx"},
        {"language": None},
        {"endpointing": 50},
        {"endpointing": "300"},
        {"endpointing": 300.5},
        {"endpointing": True},
        {"keyterms": ["ok"], "endpointing": 99999},  # one bad field: nothing applies
        {"format": "pcm16"},  # not a setting configure changes
        {"sample_rate": 8000},
    ],
)
def test_a_bad_configure_is_a_bad_message_and_names_no_change(body: dict[str, object]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_control(json.dumps({"type": "configure", **body}), SessionConfig("en"), LANGS)
    assert info.value.code == "bad_message" and info.value.close is None
    assert "nothing was changed" in info.value.message


# -- messages ----------------------------------------------------------------------------------


W1 = Word(10.2, 10.4, " He", 0.93456)
W2 = Word(10.4, 10.9, " was", 0.5)


def test_transcript_words_only_when_asked() -> None:
    change = TranscriptChanged("He was", " not", 11.0, (W1, W2))
    assert "words" not in protocol.transcript_message(change)
    msg = protocol.transcript_message(change, change.words)
    assert msg["words"] == [
        {"start": 10.2, "end": 10.4, "text": " He", "confidence": 0.935},
        {"start": 10.4, "end": 10.9, "text": " was", "confidence": 0.5},
    ]
    assert protocol.transcript_message(TranscriptChanged("", "x", 1.0), ())["words"] == []


def test_event_messages() -> None:
    assert protocol.speech_started_message(SpeechStarted(12.34)) == {"type": "speech_started", "at": 12.34}
    end = protocol.utterance_end_message(UtteranceEnded(10.2, 10.9, " He was", (W1, W2), CloseReason.PAUSE))
    assert end["type"] == "utterance_end" and (end["start"], end["end"], end["text"]) == (
        10.2,
        10.9,
        " He was",
    )
    assert [w["text"] for w in end["words"]] == [" He", " was"] and "reason" not in end
    assert protocol.configured_message(SessionConfig("en", ("Asterisk",), "p", 500)) == {
        "type": "configured", "language": "en", "keyterms": ["Asterisk"], "prompt": "p", "endpointing": 500,
    }  # fmt: skip


def test_final_segments_carry_words_only_when_asked() -> None:
    final = FinalTranscript("He was", (Segment(10.2, 10.9, "He was", (W1, W2)),), 12.0)
    assert "words" not in protocol.final_message(final)["segments"][0]
    assert [w["start"] for w in protocol.final_message(final, words=True)["segments"][0]["words"]] == [
        10.2,
        10.4,
    ]
