"""The Deepgram Flux translator alone (no socket, no model): options, turn events → TurnInfo in the
official ``deepgram-sdk``'s ``listen.v2`` shapes, Flux's ordering promises, Configure, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from deepgram.listen.v2.types import (
    ListenV2ConfigureFailure,
    ListenV2ConfigureSuccess,
    ListenV2Connected,
    ListenV2FatalError,
    ListenV2TurnInfo,
    ListenV2Warning,
)

from wirescribe.api.actions import Audio, Configure, End, Finalize, KeepAlive
from wirescribe.api.compat.deepgram_flux import FluxLive, FluxOptions, parse_options
from wirescribe.api.compat.deepgram_live import DeepgramRefused, refusal
from wirescribe.api.protocol import ProtocolError
from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    CloseReason,
    EagerEndOfTurn,
    Finalized,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    TurnEnded,
    TurnResumed,
    TurnStarted,
    TurnTrigger,
    TurnUpdate,
    UtteranceEnded,
)

SDK_TYPES: dict[str, Any] = {
    "Connected": ListenV2Connected, "TurnInfo": ListenV2TurnInfo,
    "ConfigureSuccess": ListenV2ConfigureSuccess, "ConfigureFailure": ListenV2ConfigureFailure,
    "Error": ListenV2FatalError, "Warning": ListenV2Warning,
}  # fmt: skip
HE = Word(0.5, 0.7, " He", 0.9)
WAS = Word(0.7, 1.0, " was", 0.8)
HERE = Word(1.0, 1.3, " here.", 0.7)


def flux(keyterms: tuple[str, ...] = (), **query: str) -> FluxLive:
    return FluxLive(parse_options(query, list(keyterms)), language="en", request_id="req-1")


def sdk_checked(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` validated strictly against the SDK's own type for it; returned as is."""
    SDK_TYPES[message["type"]].model_validate(message)
    json.dumps(message)  # plain JSON
    return message


def turns_of(c: SessionConfig) -> tuple[float, float | None, int]:
    return c.eot_threshold, c.eager_eot_threshold, c.eot_timeout_ms


def turn_infos(dg: FluxLive, *events: Any) -> list[dict[str, Any]]:
    return [sdk_checked(m) for e in events for m in dg.event(e)]


def test_options_from_the_query() -> None:
    dg = flux(("Dashwood", "Norland"), model="flux-general-en", encoding="linear16", sample_rate="24000",
              eot_threshold="0.8", eager_eot_threshold="0.5", eot_timeout_ms="3000", tag="x",
              mip_opt_out="true")  # fmt: skip
    assert dg.decoder_format == ("pcm16", 24000)
    c = dg.config
    assert c.turns and c.language == "en" and c.keyterms == ("Dashwood", "Norland")
    assert turns_of(c) == (0.8, 0.5, 3000)
    assert flux(encoding="mulaw", sample_rate="8000").decoder_format == ("mulaw", 8000)
    assert flux().decoder_format[0] == "auto"  # containerised audio: no encoding
    assert flux(encoding="opus").decoder_format[0] == "auto"
    assert turns_of(flux(model="any-name-at-all").config) == (0.7, None, 5000)


@pytest.mark.parametrize(
    "query",
    [{"eot_threshold": "0.4"}, {"eot_threshold": "1.5"}, {"eot_threshold": "high"}, {"eot_threshold": "nan"},
     {"eager_eot_threshold": "0.2"}, {"eager_eot_threshold": "0.95"}, {"eot_timeout_ms": "100"},
     {"eot_timeout_ms": "99999"}, {"eot_timeout_ms": "1500.5"},
     {"eot_threshold": "0.6", "eager_eot_threshold": "0.8"},  # eager over the final threshold
     {"encoding": "speex", "sample_rate": "16000"}, {"encoding": "linear16"},
     {"encoding": "linear16", "sample_rate": "96000"}, {"sample_rate": "fast"}],
)  # fmt: skip
def test_bad_options_are_refused_as_bad_requests(query: dict[str, str]) -> None:
    with pytest.raises(DeepgramRefused) as e:
        parse_options(query, [])
    answer = refusal(e.value.code, e.value.message)
    assert answer.status == 400 and answer.body["err_code"] == "Bad Request" and answer.body["err_msg"]


def test_bad_keyterms_are_refused() -> None:
    with pytest.raises(DeepgramRefused):
        parse_options({}, ["ok", "x" * 2000])


def test_connected_first_then_every_message_counts() -> None:
    dg = flux()
    assert sdk_checked(dg.connected()) == {"type": "Connected", "request_id": "req-1", "sequence_id": 0}
    out = turn_infos(dg, TurnStarted(0, 0.5), TurnUpdate(0, " He was", (HE, WAS), 0.5, 1.0))
    assert [m["sequence_id"] for m in out] == [1, 2]
    assert sdk_checked(dg.client_text('{"type": "Dance"}').replies[0])["sequence_id"] == 3


def test_a_turn_start_update_end() -> None:
    dg = flux()
    start, update, update2, end = turn_infos(
        dg, TurnStarted(0, 0.5), TurnUpdate(0, " He was", (HE, WAS), 0.5, 1.0),
        TurnUpdate(0, " He was here", (HE, WAS), 0.5, 1.3),
        TurnEnded(0, " He was here.", (HE, WAS, HERE), 0.83, TurnTrigger.MODEL, 0.5, 1.3),
    )  # fmt: skip
    assert start["event"] == "StartOfTurn" and start["turn_index"] == 0
    assert (start["audio_window_start"], start["audio_window_end"], start["transcript"]) == (0.5, 0.5, "")
    assert update["event"] == "Update" and update["transcript"] == "He was"
    assert update["words"] == [{"word": "He", "confidence": 0.9, "start": 0.5, "end": 0.7},
                               {"word": "was", "confidence": 0.8, "start": 0.7, "end": 1.0}]  # fmt: skip
    # The tentative tail is in the transcript, so in words too: without times or a probability.
    assert update2["transcript"] == "He was here"
    assert update2["words"][-1] == {"word": "here", "confidence": 0.0}
    assert end["event"] == "EndOfTurn" and end["transcript"] == "He was here." and end["trigger"] == "model"
    assert end["end_of_turn_confidence"] == 0.83
    assert (end["audio_window_start"], end["audio_window_end"]) == (0.5, 1.3)
    assert [w["word"] for w in end["words"]] == ["He", "was", "here."]
    assert all("trigger" not in m for m in (start, update, update2))  # only on EndOfTurn


@pytest.mark.parametrize(
    ("trigger", "wire"),
    [(TurnTrigger.MODEL, "model"), (TurnTrigger.TIMEOUT, "timeout"), (TurnTrigger.FINALIZE, "manual"),
     (TurnTrigger.EOF, "eof")],
)  # fmt: skip
def test_triggers_as_flux_names_them(trigger: TurnTrigger, wire: str) -> None:
    dg = flux()
    _, end = turn_infos(dg, TurnStarted(3, 0.0), TurnEnded(3, " Hi.", (), 1.0, trigger, 0.0, 0.4))
    assert end["trigger"] == wire and end["turn_index"] == 3


def test_eager_then_resumed_then_end() -> None:
    dg = flux(eager_eot_threshold="0.4")
    out = turn_infos(
        dg, TurnStarted(0, 0.5), EagerEndOfTurn(0, " He was", (HE, WAS), 0.55, 0.5, 1.0),
        TurnResumed(0, 1.6, 0.2), TurnUpdate(0, " He was here", (HE, WAS), 0.5, 1.9),
        EagerEndOfTurn(0, " He was here.", (HE, WAS, HERE), 0.6, 0.5, 2.0),
        TurnEnded(0, " He was here.", (HE, WAS, HERE), 0.9, TurnTrigger.MODEL, 0.5, 2.0),
    )  # fmt: skip
    assert [m["event"] for m in out] == ["StartOfTurn", "EagerEndOfTurn", "TurnResumed", "Update",
                                         "EagerEndOfTurn", "EndOfTurn"]  # fmt: skip
    eager, resumed = out[1], out[2]
    assert eager["transcript"] == "He was" and eager["end_of_turn_confidence"] == 0.55
    assert resumed["transcript"] == "He was" and resumed["end_of_turn_confidence"] == 0.2
    assert resumed["audio_window_end"] == 1.6
    assert out[-1]["transcript"] == out[-2]["transcript"]  # Flux: EndOfTurn repeats the eager transcript


def test_an_end_whose_text_changed_after_the_eager_point_is_resumed_first() -> None:
    """The closing pass may change the text after the eager point: Flux promises an EndOfTurn
    with the eager transcript, else a TurnResumed before it."""
    dg = flux(eager_eot_threshold="0.4")
    out = turn_infos(
        dg, TurnStarted(0, 0.5), EagerEndOfTurn(0, " He was hear", (HE, WAS), 0.5, 0.5, 1.3),
        TurnEnded(0, " He was here.", (HE, WAS, HERE), 0.8, TurnTrigger.MODEL, 0.5, 1.3),
    )  # fmt: skip
    assert [m["event"] for m in out] == ["StartOfTurn", "EagerEndOfTurn", "TurnResumed", "EndOfTurn"]
    # Likewise an Update with another transcript after the eager point.
    dg = flux(eager_eot_threshold="0.4")
    out = turn_infos(
        dg, TurnStarted(0, 0.5), EagerEndOfTurn(0, " He was", (HE, WAS), 0.5, 0.5, 1.0),
        TurnUpdate(0, " He was", (HE, WAS), 0.5, 1.25), TurnUpdate(0, " He was here", (HE, WAS), 0.5, 1.5),
        TurnResumed(0, 1.2, 0.1),  # the session's own, late: already said
    )  # fmt: skip
    assert [m["event"] for m in out] == ["StartOfTurn", "EagerEndOfTurn", "Update", "TurnResumed", "Update"]


def test_an_eager_point_without_words_is_not_sent_nor_its_resumption() -> None:
    dg = flux(eager_eot_threshold="0.4")
    eager = EagerEndOfTurn(0, " ", (), 0.5, 0.5, 0.8)
    out = turn_infos(dg, TurnStarted(0, 0.5), eager, TurnResumed(0, 1.0, 0.1))
    assert [m["event"] for m in out] == ["StartOfTurn"]


def test_turns_count_on_and_utterance_events_say_nothing() -> None:
    dg = flux()
    quiet = (SpeechStarted(0.5, 0), TranscriptChanged(" He", "", 1.0, (HE,), 0),
             UtteranceEnded(0.5, 0.7, " He", (HE,), CloseReason.PAUSE, 0), Finalized(1.0, None))  # fmt: skip
    assert [m for e in quiet for m in dg.event(e)] == []
    out = turn_infos(
        dg, TurnStarted(0, 0.5), TurnEnded(0, " He", (HE,), 0.9, TurnTrigger.MODEL, 0.5, 0.7),
        TurnStarted(1, 2.0), TurnEnded(1, " Was.", (), 1.0, TurnTrigger.FINALIZE, 2.0, 2.4),
    )  # fmt: skip
    assert [(m["event"], m["turn_index"]) for m in out] == [("StartOfTurn", 0), ("EndOfTurn", 0),
                                                            ("StartOfTurn", 1), ("EndOfTurn", 1)]  # fmt: skip
    assert dg.event(TurnUpdate(1, " late", (), 2.0, 2.5)) == []  # after its end: nothing


def test_client_messages() -> None:
    dg = flux()
    assert dg.client_binary(b"\x00\x01").actions == (Audio(b"\x00\x01"),)
    assert dg.client_binary(b"").actions == ()
    assert dg.client_text('{"type": "CloseStream"}').actions == (End(),)
    assert dg.client_text('{"type": "ForceEndTurn"}').actions == (Finalize(),)
    assert dg.client_text('{"type": "KeepAlive"}').actions == (KeepAlive(),)
    bad = (("nope", "INVALID_JSON"), ('{"type": "Dance"}', "UNKNOWN_MESSAGE_TYPE"),
           ("[1, 2]", "UNKNOWN_MESSAGE_TYPE"), ('{"type": ' + '"x' * 500 + '"}', "INVALID_JSON"))  # fmt: skip
    for text, code in bad:
        parsed = dg.client_text(text)
        assert parsed.actions == ()
        (warning,) = parsed.replies
        assert sdk_checked(warning)["type"] == "Warning" and warning["code"] == code
        assert len(warning["description"]) < 200  # nothing echoed whole


def test_configure_thresholds_and_keyterms() -> None:
    dg = flux()
    msg = {"type": "Configure", "thresholds": {"eot_threshold": 0.8, "eager_eot_threshold": 0.5},
           "keyterms": ["Dashwood"], "language_hints": ["en"]}  # fmt: skip
    parsed = dg.client_text(json.dumps(msg))
    (action,) = parsed.actions
    assert isinstance(action, Configure)
    c = action.config
    assert turns_of(c) == (0.8, 0.5, 5000) and c.keyterms == ("Dashwood",)
    assert c.turns and c.language == "en"
    (success,) = parsed.replies
    assert sdk_checked(success)["type"] == "ConfigureSuccess"
    assert success["thresholds"] == {"eot_threshold": 0.8, "eager_eot_threshold": 0.5, "eot_timeout_ms": 5000}
    assert success["keyterms"] == ["Dashwood"] and success["request_id"] == "req-1"
    # A missing value keeps its own; keyterms replace the list; null turns the eager events off.
    thresholds = {"eot_timeout_ms": 2000, "eager_eot_threshold": None}
    parsed = dg.client_text(json.dumps({"type": "Configure", "thresholds": thresholds}))
    c = parsed.actions[0].config  # type: ignore[union-attr]
    assert turns_of(c) == (0.8, None, 2000) and c.keyterms == ("Dashwood",)
    assert dg.config == c
    one = dg.client_text(json.dumps({"type": "Configure", "keyterms": "Norland"}))
    assert one.replies[0]["keyterms"] == ["Norland"]


@pytest.mark.parametrize(
    ("body", "code"),
    [({"thresholds": {"eot_threshold": 0.3}}, "INVALID_THRESHOLD"),
     ({"thresholds": {"eot_threshold": "0.8x"}}, "INVALID_THRESHOLD"),
     ({"thresholds": {"eot_threshold": True}}, "INVALID_THRESHOLD"),
     ({"thresholds": {"eager_eot_threshold": 0.9}}, "INVALID_THRESHOLD"),  # over eot_threshold 0.7
     ({"thresholds": {"eot_timeout_ms": 50}}, "INVALID_THRESHOLD"),
     ({"thresholds": [0.5]}, "INVALID_THRESHOLD"),
     ({"keyterms": [1, 2]}, "INVALID_KEYTERMS"), ({"keyterms": {"a": 1}}, "INVALID_KEYTERMS"),
     ({"keyterms": ["x" * 600, "y" * 600]}, "INVALID_KEYTERMS"),
     ({"thresholds": {"eot_threshold": 0.9}, "keyterms": [""]}, "INVALID_KEYTERMS")],
)  # fmt: skip
def test_a_bad_configure_fails_and_changes_nothing(body: dict[str, Any], code: str) -> None:
    dg = flux(("Dashwood",))
    before = dg.config
    parsed = dg.client_text(json.dumps({"type": "Configure", **body}))
    assert parsed.actions == ()
    (failure,) = parsed.replies
    assert sdk_checked(failure)["type"] == "ConfigureFailure"
    assert failure["code"] == code and failure["description"]
    assert dg.config == before


def test_errors_in_flux_shape() -> None:
    dg = flux()
    error = sdk_checked(dg.error(ProtocolError("bad_audio", "cannot decode")))
    assert error == {"type": "Error", "sequence_id": 0, "code": "DATA-0000", "description": "cannot decode"}
    assert sdk_checked(dg.error(ProtocolError("weird", "x")))["code"] == "INTERNAL_SERVER_ERROR"
    # Before the connection's options are read (the edge renders with defaults).
    early = FluxLive(FluxOptions(), language=None)
    assert early.error(ProtocolError("busy", "full"))["code"] == "TOO_MANY_REQUESTS"
