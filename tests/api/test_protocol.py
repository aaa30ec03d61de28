"""protocol.py against docs/protocol.md: parameters, control frames, message shapes, codes."""

from __future__ import annotations

import json

import pytest

from wirescribe.api import protocol
from wirescribe.api.protocol import ProtocolError, SessionParams, parse_control, parse_params
from wirescribe.asr.model import Segment, Word
from wirescribe.streaming.events import SessionConfig
from wirescribe.streaming.policy import FinalTranscript, Update

LANGS = ["en", "de", "fr", "es", "zh", "ja"]


def params(query: dict[str, str], default: str | None = "en", langs: list[str] = LANGS) -> SessionParams:
    return parse_params(query, langs, default)


def refused(query: dict[str, str], default: str | None = "en", langs: list[str] = LANGS) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_params(query, langs, default)
    err = info.value
    assert err.code == "bad_request" and err.close == 1008
    assert err.message and str(err) == err.message
    return err


# -- parameters --------------------------------------------------------------------------------


def test_defaults() -> None:
    assert params({}) == SessionParams("auto", 16000, "en")
    assert params({}, default=None) == SessionParams("auto", 16000, None)


@pytest.mark.parametrize("fmt", ["auto", "pcm16", "f32"])
def test_format_good(fmt: str) -> None:
    assert params({"format": fmt}).format == fmt


@pytest.mark.parametrize("fmt", ["", "mp3", "webm", "PCM16", "pcm16 ", "s16le", "float32", "auto,pcm16"])
def test_format_bad(fmt: str) -> None:
    err = refused({"format": fmt})
    assert "format" in err.message and repr(fmt) in err.message


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_sample_rate_good(rate: int) -> None:
    assert params({"format": "pcm16", "sample_rate": str(rate)}).sample_rate == rate


@pytest.mark.parametrize("raw", ["", "abc", "16k", "16000.0", "1e4", "0x3e80", "nan", "16000hz"])
def test_sample_rate_malformed(raw: str) -> None:
    err = refused({"format": "f32", "sample_rate": raw})
    assert "sample_rate" in err.message and "integer" in err.message


@pytest.mark.parametrize("raw", ["7999", "48001", "0", "-16000", "96000", "1"])
def test_sample_rate_out_of_range(raw: str) -> None:
    err = refused({"format": "pcm16", "sample_rate": raw})
    assert "8000" in err.message and "48000" in err.message and raw in err.message


def test_sample_rate_checked_for_auto_too() -> None:
    refused({"format": "auto", "sample_rate": "5"})


@pytest.mark.parametrize("lang", ["en", "de", "zh"])
def test_language_good(lang: str) -> None:
    assert params({"language": lang}).language == lang


def test_language_empty_means_the_models_own() -> None:
    assert params({"language": ""}).language == "en"
    assert params({"language": ""}, default=None).language is None


@pytest.mark.parametrize("lang", ["xx", "EN", "english", "en-US", " en"])
def test_language_unsupported(lang: str) -> None:
    err = refused({"language": lang})
    assert repr(lang) in err.message and "en" in err.message


def test_language_on_an_english_only_model() -> None:
    assert params({"language": "en"}, langs=["en"]).language == "en"
    refused({"language": "de"}, langs=["en"])


def test_unsupported_language_message_lists_a_few() -> None:
    many = [f"l{i}" for i in range(100)]
    err = refused({"language": "xx"}, default=None, langs=many)
    assert "l0" in err.message and "…" in err.message and "l99" not in err.message


def test_unknown_parameters_are_ignored() -> None:
    assert params({"token": "secret", "foo": "bar"}) == SessionParams("auto", 16000, "en")


def test_first_bad_parameter_is_reported() -> None:
    err = refused({"format": "mp3", "sample_rate": "x", "language": "xx"})
    assert "format" in err.message


# -- control frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['{"type": "eof"}', '{"type":"eof","extra":1}', ' {"type" : "eof"} \n'])
def test_eof(text: str) -> None:
    assert parse_control(text).kind == "eof"


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "EOF"}',
        '{"type": "stop"}',
        '{"type": "Finalize"}',
        '{"type": "KeepAlive"}',
        '{"type": ""}',
        '{"type": 1}',
        '{"type": null}',
        '{"type": ["eof"]}',
        "{}",
        '{"kind": "eof"}',
        "[]",
        '["eof"]',
        '"eof"',
        "null",
        "42",
        "true",
        "eof",
        "",
        "   ",
        "{",
        '{"type": "eof"',
        "{'type': 'eof'}",
    ],
)
def test_bad_control_frames_are_bad_message(text: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_control(text)
    err = info.value
    assert err.code == "bad_message"
    assert err.close is None  # the session goes on
    assert err.to_message() == {"type": "error", "code": "bad_message", "message": err.message}


def test_unknown_type_is_named() -> None:
    with pytest.raises(ProtocolError, match="'pause'"):
        parse_control('{"type": "pause"}')


def test_deeply_nested_json_is_a_bad_message() -> None:
    """Any text frame that is not a valid control message is `bad_message` and the session goes
    on, even one that makes the JSON parser give up (frames may be up to 1 MiB)."""
    for text in ("[" * 100_000, '{"a":' * 100_000):
        with pytest.raises(ProtocolError) as info:
            parse_control(text)
        assert info.value.code == "bad_message" and info.value.close is None


# -- messages ----------------------------------------------------------------------------------


def roundtrip(message: dict) -> dict:
    """What the client receives: messages must be plain JSON."""
    return json.loads(json.dumps(message, allow_nan=False))


def test_ready_message() -> None:
    msg = roundtrip(
        protocol.ready_message("abc123", "tiny.en", SessionParams("pcm16", 44100, "en"), "box:42")
    )
    assert msg == {
        "type": "ready",
        "protocol": 1.2,
        "session_id": "abc123",
        "model": "tiny.en",
        "language": "en",
        "sample_rate": 44100,
        "node": "box:42",
    }
    assert msg["protocol"] >= 1  # a version-1 client's check still passes
    assert list(msg) == ["type", "protocol", "session_id", "model", "language", "sample_rate", "node"]


def test_ready_message_language_detected() -> None:
    msg = roundtrip(protocol.ready_message("s", "small", SessionParams()))
    assert msg["language"] is None and msg["sample_rate"] == 16000


def test_transcript_message() -> None:
    update = Update("Hello world.", " How are", 12.7501234)
    msg = roundtrip(protocol.transcript_message(update))
    assert msg == {
        "type": "transcript",
        "text": "Hello world. How are",
        "committed": "Hello world.",
        "tentative": " How are",
        "audio_seconds": 12.75,
    }
    assert msg["text"] == msg["committed"] + msg["tentative"]


def test_transcript_message_empty() -> None:
    msg = roundtrip(protocol.transcript_message(Update("", "", 0.0)))
    assert msg == {"type": "transcript", "text": "", "committed": "", "tentative": "", "audio_seconds": 0.0}


def test_final_message() -> None:
    words = (Word(0.0, 0.5, " Hello"), Word(0.5, 2.4, " there."))
    final = FinalTranscript(
        "Hello there. Bye now.",
        (
            Segment(0.0, 2.4000001, "Hello there.", words),
            Segment(3.123456, 4.987654, "Bye now.", avg_logprob=-0.2, no_speech_prob=0.1),
        ),
        61.30000001,
    )
    msg = roundtrip(protocol.final_message(final))
    assert msg == {
        "type": "final",
        "text": "Hello there. Bye now.",
        "segments": [
            {"start": 0.0, "end": 2.4, "text": "Hello there."},
            {"start": 3.12, "end": 4.99, "text": "Bye now."},
        ],
        "audio_seconds": 61.3,
    }


def test_final_message_nothing_said() -> None:
    msg = roundtrip(protocol.final_message(FinalTranscript("", (), 3.0)))
    assert msg == {"type": "final", "text": "", "segments": [], "audio_seconds": 3.0}


@pytest.mark.parametrize(
    "code",
    ["bad_request", "unauthorized", "bad_message", "bad_audio", "too_large", "busy", "timeout", "internal"],
)
def test_error_message(code: str) -> None:
    msg = roundtrip(protocol.error_message(code, "people read this"))
    assert msg == {"type": "error", "code": code, "message": "people read this"}


# -- errors and close codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "close"),
    [
        ("bad_request", 1008),
        ("unauthorized", 1008),
        ("bad_audio", 1003),
        ("too_large", 1009),
        ("busy", 1013),
        ("internal", 1011),
        ("bad_message", None),
    ],
)
def test_close_codes(code: str, close: int | None) -> None:
    err = ProtocolError(code, "why")
    assert err.close == close
    assert err.to_message() == {"type": "error", "code": code, "message": "why"}


def test_idle_timeout_closes_normally() -> None:
    assert ProtocolError("timeout", "no audio").close == 1000


def test_explicit_close_code_wins() -> None:
    assert ProtocolError("internal", "shutting down", close=1001).close == 1001
    assert ProtocolError("bad_message", "x", close=1003).close == 1003


def test_unknown_code_is_internal() -> None:
    assert ProtocolError("mystery", "?").close == 1011


def test_close_code_constants_match_the_table() -> None:
    assert (protocol.NORMAL, protocol.GOING_AWAY, protocol.UNSUPPORTED, protocol.POLICY) == (
        1000,
        1001,
        1003,
        1008,
    )
    assert (protocol.TOO_BIG, protocol.INTERNAL, protocol.TRY_AGAIN) == (1009, 1011, 1013)
    assert protocol.PROTOCOL_VERSION == 1.2
    assert protocol.FORMATS == ("auto", "pcm16", "f32")
    assert (protocol.MIN_RATE, protocol.MAX_RATE) == (8000, 48000)


def test_protocol_error_is_an_exception_with_its_message() -> None:
    err = ProtocolError("busy", "the server is at its limit")
    assert isinstance(err, Exception) and str(err) == "the server is at its limit"


def test_configure_language_auto_detects_again_on_a_multilingual_model_only() -> None:
    auto = '{"type": "configure", "language": "auto"}'
    control = protocol.parse_control(auto, SessionConfig(language="es"), ("en", "es", "fr"))
    assert control.config is not None and control.config.language is None
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_control(auto, SessionConfig(language="en"), ("en",))
