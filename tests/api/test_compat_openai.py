"""The OpenAI Realtime translator alone (no socket, no model): settings, event order, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from wirescribe.api.compat.openai_realtime import RealtimeError, RealtimeTranscription
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


def make(beta: bool = False) -> RealtimeTranscription:
    return RealtimeTranscription(beta=beta, model_name="tiny.en", languages=LANGS, default_language="en")


def send(rt: RealtimeTranscription, msg: Any) -> tuple[list[str], list[dict[str, Any]]]:
    parsed = rt.client_text(msg if isinstance(msg, str) else json.dumps(msg))
    return [a.kind for a in parsed.actions], list(parsed.replies)


def words(*spec: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(s, e, t, 0.9) for t, s, e in spec)


def test_connect_picks_the_dialect_and_refuses_other_intents() -> None:
    ga = RealtimeTranscription.connect({"intent": "transcription"}, {}, model_name="m", languages=LANGS,
                                       default_language="en")  # fmt: skip
    assert ga.opening()[0]["type"] == "session.created"
    assert ga.opening()[0]["session"]["type"] == "transcription"
    beta = RealtimeTranscription.connect({}, {"openai-beta": "realtime=v1"}, model_name="m", languages=LANGS,
                                         default_language="en")  # fmt: skip
    assert beta.opening()[0]["type"] == "transcription_session.created"
    assert beta.opening()[0]["session"]["input_audio_format"] == "pcm16"
    with pytest.raises(RealtimeError):
        RealtimeTranscription.connect({"intent": "conversation"}, {}, model_name="m", languages=LANGS,
                                      default_language="en")  # fmt: skip


def test_ga_update_sets_format_turn_detection_and_transcription() -> None:
    rt = make()
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcmu"},
        "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Names",
                          "keywords": ["Elinor"]},
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 350, "prefix_padding_ms": 600},
    }}}}  # fmt: skip
    kinds, replies = send(rt, update)
    assert kinds == ["configure"]
    assert replies[0]["type"] == "session.updated"
    assert rt.decoder_format == ("mulaw", 8000)
    assert (
        rt.config.endpointing_ms == 350 and rt.config.keyterms == ("Elinor",) and rt.config.prompt == "Names"
    )
    session = replies[0]["session"]
    assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-transcribe"  # echoed as asked
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 350


def test_beta_update_and_unsupported_values() -> None:
    rt = make(beta=True)
    _, replies = send(rt, {"type": "transcription_session.update", "session": {
        "input_audio_format": "g711_alaw", "turn_detection": None,
        "input_audio_transcription": {"model": "whisper-1", "language": ""},
    }})  # fmt: skip
    assert replies[0]["type"] == "transcription_session.updated"
    assert rt.decoder_format == ("alaw", 8000) and not rt.server_vad
    _, replies = send(rt, {"type": "transcription_session.update", "event_id": "ev1",
                           "session": {"input_audio_format": "mp3"}})  # fmt: skip
    err = replies[0]
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert err["error"]["event_id"] == "ev1" and err["error"]["param"] == "session.input_audio_format"
    _, replies = send(rt, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "transcription": {"language": "de"}}}}})  # fmt: skip
    assert replies[0]["type"] == "error" and "not supported" in replies[0]["error"]["message"]


def test_bad_messages_get_openai_errors_and_change_nothing() -> None:
    rt = make()
    for bad, code in [("not json", "invalid_json"), ({"type": "response.create"}, "invalid_value"),
                      ({"type": "nope"}, "invalid_value"),
                      ({"type": "input_audio_buffer.append", "audio": "%%%"}, "invalid_value")]:  # fmt: skip
        kinds, replies = send(rt, bad)
        assert kinds == [] and replies[0]["error"]["code"] == code, bad
    kinds, replies = send(rt, {"type": "session.update", "session": {"type": "realtime"}})
    assert replies[0]["error"]["param"] == "session.type"


def test_append_feeds_audio_and_format_is_fixed_after_it() -> None:
    rt = make()
    pcm = b"\x01\x00" * 2400  # 100 ms at 24 kHz
    kinds, _ = send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})
    assert kinds == ["audio"] and rt.audio_seconds == pytest.approx(0.1)
    _, replies = send(rt, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "format": {"type": "audio/pcma"}}}}})  # fmt: skip
    assert replies[0]["type"] == "error"


def item_of(message: dict[str, Any]) -> str:
    return str(message.get("item_id", message.get("item", {}).get("id")))


def test_server_vad_turn_event_order() -> None:
    rt = make()
    out = rt.event(SpeechStarted(1.0, utterance=0))
    assert [m["type"] for m in out] == ["input_audio_buffer.speech_started"]
    item = out[0]["item_id"]
    assert out[0]["audio_start_ms"] == 700  # 300 ms prefix padding
    said = words((" He", 1.0, 1.2), (" was", 1.2, 1.5))
    out = rt.event(TranscriptChanged(" He was", " not", 2.0, said, utterance=0))
    assert [(m["type"], m["delta"]) for m in out] == [
        ("conversation.item.input_audio_transcription.delta", "He was")
    ]
    assert rt.event(TranscriptChanged(" He was", " not an", 2.2)) == []  # only the tentative tail changed
    out = rt.event(TranscriptChanged(" He was not.", "", 2.6, words((" not.", 1.6, 1.9)), utterance=0))
    assert out[0]["delta"] == " not." and out[0]["item_id"] == item
    out = rt.event(UtteranceEnded(1.0, 1.9, " He was not.", (), CloseReason.PAUSE, utterance=0))
    assert [m["type"] for m in out] == [
        "input_audio_buffer.speech_stopped", "input_audio_buffer.committed", "conversation.item.added",
        "conversation.item.done", "conversation.item.input_audio_transcription.completed",
    ]  # fmt: skip
    assert all(item_of(m) == item for m in out)
    assert out[-1]["transcript"] == "He was not." and out[1]["previous_item_id"] is None
    # The next turn has a new item, after this one.
    assert rt.event(SpeechStarted(3.0, utterance=1))[0]["item_id"] != item
    rt.event(TranscriptChanged(" He was not. Yes.", "", 4.0, words((" Yes.", 3.0, 3.3)), utterance=1))
    out = rt.event(UtteranceEnded(3.0, 3.3, " Yes.", (), CloseReason.PAUSE, utterance=1))
    assert out[1]["previous_item_id"] == item and out[-1]["transcript"] == "Yes."


def test_a_turns_item_is_named_by_its_utterance() -> None:
    """Every message about utterance ``n`` names the same item, and only that utterance's,
    whatever came in between: the id comes with each event, no open item is remembered."""
    rt = make()
    started = rt.event(SpeechStarted(0.2, utterance=7))
    delta = rt.event(TranscriptChanged(" Hi.", "", 1.0, words((" Hi.", 0.2, 0.5)), utterance=7))
    ended = rt.event(
        UtteranceEnded(0.2, 0.5, " Hi.", words((" Hi.", 0.2, 0.5)), CloseReason.PAUSE, utterance=7)
    )
    items = {item_of(m) for m in [*started, *delta, *ended]}
    assert len(items) == 1
    other = make()
    assert other.event(SpeechStarted(0.2, utterance=8))[0]["item_id"] != items.pop()


def test_a_commit_that_ends_an_utterance_is_answered_by_that_end_only() -> None:
    rt = make()
    send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 48000).decode()})
    item = rt.event(SpeechStarted(0.1, utterance=0))[0]["item_id"]
    rt.event(TranscriptChanged(" One", "", 1.0, words((" One", 0.1, 0.4)), utterance=0))
    kinds, _ = send(rt, {"type": "input_audio_buffer.commit"})
    assert kinds == ["finalize"]
    out = rt.event(UtteranceEnded(0.1, 0.4, " One", (), CloseReason.FINALIZE, utterance=0))
    assert out[0]["type"] == "input_audio_buffer.committed"  # a commit, not a stop
    assert out[-1]["transcript"] == "One" and out[-1]["item_id"] == item
    assert rt.event(Finalized(1.0, closed=0)) == []  # answered already


def test_manual_turns_end_at_commit_only() -> None:
    rt = make(beta=True)
    send(rt, {"type": "transcription_session.update", "session": {"turn_detection": None}})
    send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 48000).decode()})
    assert rt.event(SpeechStarted(0.1)) == []  # no VAD events without server VAD
    first = rt.event(TranscriptChanged(" One.", "", 1.0, words((" One.", 0.1, 0.4)), utterance=0))
    assert rt.event(UtteranceEnded(0.1, 0.4, " One.", (), CloseReason.PAUSE, utterance=0)) == []
    second = rt.event(TranscriptChanged(" One. Two.", "", 1.0, words((" Two.", 0.6, 0.9)), utterance=1))
    assert first[0]["item_id"] == second[0]["item_id"]  # one client turn across two utterances
    kinds, _ = send(rt, {"type": "input_audio_buffer.commit"})
    assert kinds == ["finalize"]
    out = rt.event(UtteranceEnded(0.6, 0.9, " Two.", (), CloseReason.FINALIZE, utterance=1))
    assert [m["type"] for m in out][-1] == "conversation.item.input_audio_transcription.completed"
    assert "conversation.item.created" in [m["type"] for m in out]  # the beta dialect's item event
    assert out[-1]["transcript"] == "One. Two." and out[-1]["item_id"] == first[0]["item_id"]
    assert rt.event(Finalized(1.0, closed=1)) == []  # answered already
    # The next client turn is a new item, after this one.
    third = rt.event(
        TranscriptChanged(" One. Two. Three.", "", 2.0, words((" Three.", 1.2, 1.5)), utterance=2)
    )
    assert third[0]["item_id"] != first[0]["item_id"]


def test_manual_commit_after_a_pause_ended_the_utterance_gets_the_buffers_text() -> None:
    """The utterance ended by a pause before the commit was carried out: the session's
    ``Finalized`` (nothing open) answers, with what the client's turn holds."""
    rt = make()
    send(rt, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "turn_detection": None}}}})  # fmt: skip
    send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 48000).decode()})
    rt.event(TranscriptChanged(" Yes.", "", 1.0, words((" Yes.", 0.1, 0.4)), utterance=0))
    assert rt.event(UtteranceEnded(0.1, 0.4, " Yes.", (), CloseReason.PAUSE, utterance=0)) == []
    send(rt, {"type": "input_audio_buffer.commit"})
    out = rt.event(Finalized(1.0, closed=None))
    assert out[-1]["type"] == "conversation.item.input_audio_transcription.completed"
    assert out[-1]["transcript"] == "Yes."
    assert rt.final() == []  # nothing left uncommitted


def test_text_the_client_never_committed_is_completed_when_the_session_ends() -> None:
    rt = make()
    send(rt, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
        "turn_detection": None}}}})  # fmt: skip
    rt.event(TranscriptChanged(" Last", "", 1.0, words((" Last", 0.1, 0.4)), utterance=0))
    assert rt.event(UtteranceEnded(0.1, 0.4, " Last", (), CloseReason.EOF, utterance=0)) == []
    assert rt.final()[-1]["transcript"] == "Last"


def test_commit_with_nothing_heard_is_answered_once_the_finalize_is_done() -> None:
    rt = make()
    _, replies = send(rt, {"type": "input_audio_buffer.commit"})
    assert replies[0]["error"]["code"] == "input_audio_buffer_commit_empty"
    send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 9600).decode()})
    kinds, _ = send(rt, {"type": "input_audio_buffer.commit"})
    assert kinds == ["finalize"]
    out = rt.event(Finalized(0.2, closed=None))
    assert (
        out[-1]["type"] == "conversation.item.input_audio_transcription.completed"
        and out[-1]["transcript"] == ""
    )


def test_clear_drops_the_words_of_cleared_audio() -> None:
    rt = make()
    send(rt, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\0" * 48000).decode()})  # 1 s
    rt.event(SpeechStarted(0.2, utterance=0))
    _, replies = send(rt, {"type": "input_audio_buffer.clear"})
    assert replies[0]["type"] == "input_audio_buffer.cleared"
    assert rt.event(TranscriptChanged(" Old", "", 1.0, words((" Old", 0.2, 0.5)), utterance=0)) == []
    out = rt.event(TranscriptChanged(" Old new", "", 2.0, words((" new", 1.2, 1.5)), utterance=0))
    assert out[-1]["delta"] == "new"


def test_errors_are_in_openais_shape() -> None:
    rt = make()
    msg = rt.error_message(ProtocolError("unauthorized", "a valid access token is required"))
    assert msg["type"] == "error" and msg["event_id"].startswith("event_")
    assert msg["error"] == {
        "type": "invalid_request_error", "code": "invalid_api_key",
        "message": "a valid access token is required", "param": None, "event_id": None,
    }  # fmt: skip
    assert rt.error_message(ProtocolError("internal", "boom"))["error"]["type"] == "server_error"
