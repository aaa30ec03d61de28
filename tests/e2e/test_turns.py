"""Protocol 1.2 turn-taking end to end: a real server, real speech streamed at real-time pace,
``turns=true`` — each turn ends once, never inside a mid-sentence hesitation, with its final
text; ``finalize`` and ``eof`` end a turn; ``configure`` changes the thresholds; bad thresholds
get the protocol's errors; a client that does not ask for turns sees none of it.

The speech is ``tests/support/turns.py``'s (the bench's): whole clips ~2 s apart, a 0.6–1.0 s
hesitation cut into half of them at a quiet word boundary of the middle third.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from tests.support import LiveServer
from tests.support.dense import prompt_clips
from tests.support.turns import TurnSpeech, build_turns, place_ends
from tests.support.ws import exchange
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import StreamResult, pcm16_slices, stream, webm_slices
from wirescribe.wer import normalize_words, word_error_rate

pytestmark = pytest.mark.e2e

TURN_TYPES = {"start_of_turn", "eager_end_of_turn", "turn_resumed", "end_of_turn"}
SLICE = 0.25  # WebM as a browser's MediaRecorder sends it
FRAME = 0.1  # pcm16 as an agent sends it
SEED = 5  # four turns (two LibriVox, two prompts), two of them with a hesitation
MAX_WER = 0.15  # of the end_of_turn texts against the reference (tiny.en)
# ... and at most this over the utterance_end texts' on the same speech: two words of its 38 (the
# two sessions' closing passes hear different windows: "ill-disposed" / "old-exposed" in 1 run of 8)
WER_SLACK = 0.06


def _ends(result: StreamResult) -> list[tuple[float, dict[str, Any]]]:
    return [(r.at, r.message) for r in result.messages if r.message["type"] == "end_of_turn"]


def _evidence(result: StreamResult, speech: TurnSpeech) -> str:
    """The turn messages (arrival, fields, last word's end) and the turns, for a failure."""
    lines = [f"eof sent at {result.eof_at}"]
    for r in result.messages:
        m = r.message
        if m["type"] in TURN_TYPES:
            last = m["words"][-1]["end"] if m.get("words") else None
            shown = {k: v for k, v in m.items() if k != "words"}
            lines.append(f"{r.at:7.2f} {shown} last word end {last}")
    lines += [str(t) for t in speech.turns]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def turn_speech() -> TurnSpeech:
    speech = build_turns(4, seed=SEED)
    assert speech.pauses == 2
    return speech


@pytest.fixture(scope="module")
def streamed(live_server: LiveServer, turn_speech: TurnSpeech) -> tuple[StreamResult, StreamResult]:
    """The same turns, at once: a turn-taking client (``turns=true&words=true``) and a 1.1
    client (``events=true&words=true``)."""
    chunks = webm_slices(turn_speech.audio, SLICE)

    async def both() -> list[StreamResult]:
        return list(await asyncio.gather(
            stream(live_server.ws + "?turns=true&words=true", chunks, interval=SLICE, timeout=120),
            stream(live_server.ws + "?events=true&words=true", chunks, interval=SLICE, timeout=120),
        ))  # fmt: skip

    turns, plain = asyncio.run(both())
    return turns, plain


def test_every_turn_is_ended_in_the_silence_after_it(
    streamed: tuple[StreamResult, StreamResult], turn_speech: TurnSpeech
) -> None:
    """Each turn's end is decided on the audio (by the model or the timeout, never by ``eof``)
    in the 2 s of silence after its last word: none is missed or merged into the next. Whether
    the model also ends a turn inside a hesitation or at a comma (a false cut, a split) is a
    rate the benchmark measures on many turns (``bench/turn_bench.py``, README): Smart Turn calls
    7 of 12 mid-sentence cuts of this speech complete (tests/asr/test_turn_model.py), so on four
    turns it is chance, and it is not asserted here. Nor is when the end arrives."""
    result, _ = streamed
    assert result.final is not None and result.close_code == 1000, result.errors
    ends = _ends(result)
    placed = place_ends(ends, turn_speech.turns, SLICE)
    evidence = _evidence(result, turn_speech)
    assert not placed.missed, evidence
    assert len(ends) >= len(turn_speech.turns), evidence
    assert {m["trigger"] for _, m in ends} <= {"model", "timeout"}, evidence
    for _, m in ends:
        assert 0.0 <= m["confidence"] <= 1.0 and m["start"] <= m["end"], m


def test_turn_messages_in_order_with_words(streamed: tuple[StreamResult, StreamResult]) -> None:
    result, _ = streamed
    started: set[int] = set()
    ended: list[int] = []
    for r in result.messages:
        m = r.message
        if m["type"] == "start_of_turn":
            assert m["turn"] == len(ended) and m["turn"] not in started, m
            started.add(m["turn"])
        elif m["type"] in ("eager_end_of_turn", "turn_resumed"):
            assert m["turn"] in started and m["turn"] not in ended, m
        elif m["type"] == "end_of_turn":
            assert m["turn"] in started and m["turn"] == len(ended), m
            ended.append(m["turn"])
            assert m["words"] and normalize_words(" ".join(w["text"] for w in m["words"])) == normalize_words(
                m["text"]
            ), m
            assert m["start"] <= m["words"][0]["start"] + 0.5 and m["words"][-1]["end"] <= m["end"] + 0.05, m
    assert ended == list(range(len(ended))) and started == set(ended)


def test_turn_text_is_final_and_accurate(
    streamed: tuple[StreamResult, StreamResult], turn_speech: TurnSpeech
) -> None:
    """The turns' texts make the final transcript; their WER is near the 1.1 client's
    ``utterance_end`` texts' on the same speech."""
    result, plain = streamed
    assert result.final is not None and plain.final is not None
    texts = [m["text"] for m in result.of_type("end_of_turn")]
    assert normalize_words(" ".join(texts)) == normalize_words(result.final["text"])
    turn_wer = word_error_rate(turn_speech.reference, " ".join(texts))
    plain_wer = word_error_rate(
        turn_speech.reference, " ".join(m["text"] for m in plain.of_type("utterance_end"))
    )
    assert turn_wer <= MAX_WER and turn_wer <= plain_wer + WER_SLACK, (turn_wer, plain_wer, texts)
    # Nothing invented that the 1.1 client does not hear: a "Thank you." over the last word's tail
    # (a second closing pass, 2 runs in 6 before it was caught) adds two words and no error elsewhere
    said = len(normalize_words(turn_speech.reference))
    extra = len(normalize_words(" ".join(texts))) - said
    plain_extra = len(normalize_words(" ".join(m["text"] for m in plain.of_type("utterance_end")))) - said
    assert extra <= plain_extra + 1, (extra, plain_extra, texts)


def test_a_client_without_turns_sees_no_turn_messages(streamed: tuple[StreamResult, StreamResult]) -> None:
    _, plain = streamed
    kinds = {r.message["type"] for r in plain.messages}
    assert not kinds & TURN_TYPES and kinds <= {
        "ready",
        "transcript",
        "speech_started",
        "utterance_end",
        "final",
    }
    assert plain.of_type("utterance_end")


def _pcm(audio: np.ndarray) -> list[bytes | str]:
    return list(pcm16_slices(audio, FRAME))


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.float32)


def test_configure_timeout_finalize_and_eof(live_server: LiveServer) -> None:
    """``configure`` (echoed) sets eot_threshold 1.0, which no probability reaches: a turn then
    ends by ``timeout`` (1 s: the 2 s of silence after it), then, with the timeout at 10 s, by
    ``finalize`` (3 s of silence after it: only the finalize can end it), the last by ``eof``."""
    clip = {c.name: c for c in prompt_clips()}
    a, b, c = clip["billing"], clip["charge"], clip["card"]
    frames: list[bytes | str] = [
        json.dumps({"type": "configure", "eot_threshold": 1.0, "eot_timeout_ms": 1000})
    ]
    frames += _pcm(np.concatenate([a.audio, quiet(2.0)]))
    frames += [json.dumps({"type": "configure", "eot_timeout_ms": 10000})]
    frames += [*_pcm(b.audio[: b.speech_end]), json.dumps({"type": "finalize"})]
    frames += _pcm(np.concatenate([quiet(3.0), c.audio[: c.speech_end]]))
    result = asyncio.run(stream(live_server.ws + "?turns=true&format=pcm16&sample_rate=16000", frames,
                                interval=FRAME, timeout=60))  # fmt: skip
    assert result.final is not None and result.close_code == 1000, result.errors
    configured = result.of_type("configured")
    assert [(m["eot_threshold"], m["eot_timeout_ms"], m["eager_eot_threshold"]) for m in configured] == [
        (1.0, 1000, None),
        (1.0, 10000, None),
    ]
    ends = result.of_type("end_of_turn")
    evidence = "\n".join(
        f"{r.at:6.2f} {r.message}" for r in result.messages if r.message["type"] != "transcript"
    )
    assert [m["trigger"] for m in ends] == ["timeout", "finalize", "eof"], evidence
    assert [m["turn"] for m in ends] == [0, 1, 2]
    assert "words" not in ends[0]
    for m, ref in zip(ends, (a, b, c), strict=True):
        assert word_error_rate(ref.text, m["text"]) <= 0.3, (m["text"], ref.text)


@pytest.mark.parametrize(
    "query",
    [
        "turns=true&eot_threshold=1.5",
        "turns=true&eot_threshold=0.4",
        "turns=true&eot_threshold=high",
        "turns=true&eager_eot_threshold=0.95",
        "turns=true&eot_threshold=0.6&eager_eot_threshold=0.8",
        "turns=true&eot_timeout_ms=100",
        "turns=true&eot_timeout_ms=2000.5",
        "eot_threshold=0.8",
    ],
)
def test_bad_thresholds_at_connect(live_server: LiveServer, query: str) -> None:
    result = asyncio.run(exchange(live_server.ws + "?" + query, [], timeout=20))
    assert [m["code"] for m in result.errors] == ["bad_request"], result.messages
    assert result.close_code == 1008
    assert not any(r.message["type"] == "ready" for r in result.messages)


def test_bad_configure_changes_nothing(live_server: LiveServer) -> None:
    bad: list[dict[str, object]] = [
        {"eot_threshold": 0.2},
        {"eot_threshold": "0.8"},
        {"eager_eot_threshold": 0.95},
        {"eot_threshold": 0.6, "eager_eot_threshold": 0.7},
        {"eot_timeout_ms": 20000},
        {"eot_threshold": None},
    ]
    frames = [json.dumps({"type": "configure", **b}) for b in bad]
    frames += [json.dumps({"type": "configure", "eager_eot_threshold": 0.5}), json.dumps({"type": "eof"})]
    result = asyncio.run(exchange(live_server.ws + "?turns=true", frames, timeout=20))
    codes = [m["code"] for m in result.errors]
    assert codes == ["bad_message"] * len(bad), result.messages
    configured = result.of_type("configured")
    assert len(configured) == 1, result.messages
    assert configured[0]["eager_eot_threshold"] == 0.5 and configured[0]["eot_threshold"] == 0.7
    assert result.final is not None and result.close_code == 1000
