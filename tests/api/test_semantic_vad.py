"""OpenAI Realtime ``semantic_vad`` in the translator alone (no socket, no model): ``eagerness`` onto
the end-of-turn model's settings, and one item per turn (not per utterance), its commit answered
once whichever of the session's two answers comes first; ``server_vad`` stays silence-based."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from wirescribe.api.compat.openai_realtime import RealtimeTranscription
from wirescribe.api.compat.openai_session import EAGERNESS
from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    MAX_EAGER_EOT_THRESHOLD,
    MAX_EOT_THRESHOLD,
    MAX_EOT_TIMEOUT_MS,
    MIN_EAGER_EOT_THRESHOLD,
    MIN_EOT_THRESHOLD,
    MIN_EOT_TIMEOUT_MS,
    CloseReason,
    EagerEndOfTurn,
    Event,
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

COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


def make(turn_detection: dict[str, Any] | None, beta: bool = False) -> RealtimeTranscription:
    rt = RealtimeTranscription(beta=beta, model_name="tiny.en", languages=("en",), default_language="en")
    if beta:
        update = {"type": "transcription_session.update", "session": {"turn_detection": turn_detection}}
    else:
        update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "turn_detection": turn_detection}}}}  # fmt: skip
    parsed = rt.client_text(json.dumps(update))
    assert not [r for r in parsed.replies if r["type"] == "error"], parsed.replies
    return rt


def turns_of(c: SessionConfig) -> tuple[bool, float, float | None, int]:
    return c.turns, c.eot_threshold, c.eager_eot_threshold, c.eot_timeout_ms


def w(text: str, start: float, end: float) -> Word:
    return Word(start, end, text, 0.9)


def kinds(out: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in out]


@pytest.mark.parametrize(
    ("eagerness", "expected"),
    [("low", (True, 0.85, None, 8000)), ("medium", (True, 0.7, None, 4000)),
     ("auto", (True, 0.7, None, 4000)), ("high", (True, 0.5, 0.35, 2000)), (None, (True, 0.7, None, 4000))],
)  # fmt: skip
def test_eagerness_sets_the_end_of_turn_model(eagerness: str | None, expected: tuple[Any, ...]) -> None:
    td: dict[str, Any] = {"type": "semantic_vad"}
    if eagerness is not None:
        td["eagerness"] = eagerness
    rt = make(td)
    assert turns_of(rt.config) == expected
    echoed = rt.client_text(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
    assert echoed.replies[0]["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad", "eagerness": eagerness or "auto"
    }  # fmt: skip


def test_every_eagerness_is_in_the_ranges_the_session_takes() -> None:
    for e in EAGERNESS.values():
        assert MIN_EOT_THRESHOLD <= e.eot_threshold <= MAX_EOT_THRESHOLD
        assert MIN_EOT_TIMEOUT_MS <= e.eot_timeout_ms <= MAX_EOT_TIMEOUT_MS
        if e.eager_eot_threshold is not None:
            assert MIN_EAGER_EOT_THRESHOLD <= e.eager_eot_threshold <= e.eot_threshold
            assert e.eager_eot_threshold <= MAX_EAGER_EOT_THRESHOLD
    # Less eager waits longer and for more certainty.
    low, medium, high = EAGERNESS["low"], EAGERNESS["medium"], EAGERNESS["high"]
    assert low.eot_threshold > medium.eot_threshold > high.eot_threshold
    assert low.eot_timeout_ms > medium.eot_timeout_ms > high.eot_timeout_ms


def test_server_vad_and_manual_turns_keep_the_model_off() -> None:
    assert not make({"type": "server_vad"}).config.turns
    assert not make(None).config.turns
    rt = make({"type": "semantic_vad", "eagerness": "low"})
    assert rt.config.turns
    server_vad = {"turn_detection": {"type": "server_vad", "silence_duration_ms": 300}}
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": server_vad}}}
    switched = rt.client_text(json.dumps(update))
    (action,) = switched.actions
    assert not action.config.turns and action.config.endpointing_ms == 300  # type: ignore[union-attr]


def test_a_bad_eagerness_is_refused_in_openais_shape() -> None:
    rt = RealtimeTranscription(beta=False, model_name="m", languages=("en",), default_language="en")
    before = rt.config
    bad = {"type": "session.update", "event_id": "evt_9", "session": {"type": "transcription", "audio": {
        "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "very"}}}}}  # fmt: skip
    parsed = rt.client_text(json.dumps(bad))
    (error,) = parsed.replies
    assert error["type"] == "error" and error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.audio.input.turn_detection"
    assert error["error"]["event_id"] == "evt_9"
    assert parsed.actions == () and rt.config == before
    beta = make({"type": "semantic_vad", "eagerness": "high"}, beta=True)
    assert beta.config.eot_threshold == 0.5


def test_one_item_per_turn_across_its_utterances() -> None:
    """A hesitation ends an utterance, not the turn: the turn's item spans both utterances, and
    the eager and resumed points (no OpenAI event) say nothing."""
    rt = make({"type": "semantic_vad", "eagerness": "high"})
    out = rt.event(TurnStarted(0, 1.0))
    assert kinds(out) == ["input_audio_buffer.speech_started"] and out[0]["audio_start_ms"] == 700
    item = out[0]["item_id"]
    assert rt.event(SpeechStarted(1.0, utterance=0)) == []
    said = (w(" I'd", 1.0, 1.2), w(" like", 1.2, 1.4), w(" to", 1.4, 1.5), w(" book", 1.5, 1.8))
    deltas = rt.event(TranscriptChanged(" I'd like to book", "", 2.0, said, utterance=0))
    assert [(m["type"], m["item_id"], m["delta"]) for m in deltas] == [(DELTA, item, "I'd like to book")]
    quiet: list[Event] = [UtteranceEnded(1.0, 1.8, " I'd like to book", (), CloseReason.PAUSE, utterance=0),
             EagerEndOfTurn(0, " I'd like to book", (), 0.4, 1.0, 1.8), TurnResumed(0, 2.6, 0.1),
             SpeechStarted(2.6, utterance=1), TurnUpdate(0, " I'd like to book a", (), 1.0, 2.8)]  # fmt: skip
    assert [m for e in quiet for m in rt.event(e)] == []
    more = (w(" a", 2.6, 2.7), w(" table.", 2.7, 3.1))
    deltas = rt.event(TranscriptChanged(" I'd like to book a table.", "", 3.4, more, utterance=1))
    assert deltas[0]["item_id"] == item and deltas[0]["delta"] == " a table."
    assert rt.event(UtteranceEnded(2.6, 3.1, " a table.", (), CloseReason.PAUSE, utterance=1)) == []
    out = rt.event(TurnEnded(0, " I'd like to book a table.", (), 0.9, TurnTrigger.MODEL, 1.0, 3.1))
    assert kinds(out) == ["input_audio_buffer.speech_stopped", "input_audio_buffer.committed",
                          "conversation.item.added", "conversation.item.done", COMPLETED]  # fmt: skip
    assert all(m.get("item_id", m.get("item", {}).get("id")) == item for m in out)
    assert out[0]["audio_end_ms"] == 3100
    assert out[-1]["transcript"] == "I'd like to book a table."
    # The next turn is another item, after this one.
    nxt = rt.event(TurnStarted(1, 5.0))[0]["item_id"]
    assert nxt != item
    yes = (w(" Yes.", 5.0, 5.3),)
    rt.event(TranscriptChanged(" I'd like to book a table. Yes.", "", 6.0, yes, utterance=2))
    out = rt.event(TurnEnded(1, " Yes.", (), 0.8, TurnTrigger.TIMEOUT, 5.0, 5.3))
    assert out[1]["previous_item_id"] == item
    assert out[-1]["item_id"] == nxt and out[-1]["transcript"] == "Yes."


def append(rt: RealtimeTranscription, seconds: float) -> None:
    audio = base64.b64encode(b"\0" * int(48000 * seconds)).decode()
    rt.client_text(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))


@pytest.mark.parametrize("finalized_first", [True, False])
def test_a_commit_ends_the_turn_and_is_answered_once(finalized_first: bool) -> None:
    rt = make({"type": "semantic_vad"})
    append(rt, 1.0)
    item = rt.event(TurnStarted(0, 0.1))[0]["item_id"]
    rt.event(TranscriptChanged(" One", "", 1.0, (w(" One", 0.1, 0.4),), utterance=0))
    assert [a.kind for a in rt.client_text('{"type": "input_audio_buffer.commit"}').actions] == ["finalize"]
    ended: list[Event] = [UtteranceEnded(0.1, 0.4, " One", (), CloseReason.FINALIZE, utterance=0),
             TurnEnded(0, " One", (), 1.0, TurnTrigger.FINALIZE, 0.1, 0.4)]  # fmt: skip
    done = Finalized(1.0, closed=0)
    events: list[Event] = [done, *ended] if finalized_first else [*ended, done]
    out = [m for e in events for m in rt.event(e)]
    assert kinds(out)[0] == "input_audio_buffer.committed"  # a commit, not a stop
    assert kinds(out).count(COMPLETED) == 1 and out[-1]["item_id"] == item and out[-1]["transcript"] == "One"
    # A later commit with no turn open gets its own, empty, item; so does the one after it.
    for _ in range(2):
        append(rt, 0.5)
        rt.client_text('{"type": "input_audio_buffer.commit"}')
        out = rt.event(Finalized(1.5, closed=None))
        assert kinds(out)[-1] == COMPLETED and out[-1]["transcript"] == "" and out[-1]["item_id"] != item


def test_the_end_of_input_stops_the_open_turn() -> None:
    rt = make({"type": "semantic_vad"})
    rt.event(TurnStarted(0, 0.1))
    rt.event(TranscriptChanged(" Bye", "", 1.0, (w(" Bye", 0.1, 0.4),), utterance=0))
    out = rt.event(TurnEnded(0, " Bye", (), 1.0, TurnTrigger.EOF, 0.1, 0.4))
    assert kinds(out)[:2] == ["input_audio_buffer.speech_stopped", "input_audio_buffer.committed"]
    assert out[-1]["transcript"] == "Bye" and rt.final() == []


def test_server_vad_ignores_turn_events() -> None:
    rt = make({"type": "server_vad"})
    turn_events: list[Event] = [TurnStarted(0, 0.1), TurnUpdate(0, " Hi", (), 0.1, 0.4),
                   TurnEnded(0, " Hi", (), 0.9, TurnTrigger.MODEL, 0.1, 0.4)]  # fmt: skip
    assert [m for e in turn_events for m in rt.event(e)] == []
    assert kinds(rt.event(SpeechStarted(0.1, utterance=0))) == ["input_audio_buffer.speech_started"]


def test_a_commit_answered_by_a_turn_already_judged_over() -> None:
    """The model had judged the turn over when the commit closed its utterance: that turn's end
    (trigger model) answers the commit, and the session's Finalized adds no empty item."""
    rt = make({"type": "semantic_vad"})
    append(rt, 1.0)
    rt.event(TurnStarted(0, 0.1))
    rt.event(TranscriptChanged(" One.", "", 1.0, (w(" One.", 0.1, 0.4),), utterance=0))
    rt.client_text('{"type": "input_audio_buffer.commit"}')
    events: list[Event] = [UtteranceEnded(0.1, 0.4, " One.", (), CloseReason.FINALIZE, utterance=0),
                           TurnEnded(0, " One.", (), 0.8, TurnTrigger.MODEL, 0.1, 0.4),
                           Finalized(1.0, closed=0)]  # fmt: skip
    out = [m for e in events for m in rt.event(e)]
    assert kinds(out).count(COMPLETED) == 1 and out[-1]["transcript"] == "One."


def test_a_commit_of_speech_without_words_gets_an_empty_item() -> None:
    """Voice activity with no words starts no turn: its commit is answered by an empty item."""
    rt = make({"type": "semantic_vad"})
    append(rt, 1.0)
    rt.client_text('{"type": "input_audio_buffer.commit"}')
    events: list[Event] = [SpeechStarted(0.1, utterance=0),
                           UtteranceEnded(0.1, 0.4, "", (), CloseReason.FINALIZE, utterance=0),
                           Finalized(1.0, closed=0)]  # fmt: skip
    out = [m for e in events for m in rt.event(e)]
    assert kinds(out) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done",
                          COMPLETED]  # fmt: skip
    assert out[-1]["transcript"] == ""
