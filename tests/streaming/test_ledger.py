"""The utterance ledger: the one owner of utterances, their ids, their words and the events."""

from __future__ import annotations

from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    CloseReason,
    Finalized,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)
from wirescribe.streaming.ledger import UtteranceLedger
from wirescribe.streaming.window import Update


def w(start: float, end: float, text: str) -> Word:
    return Word(start, end, " " + text, 0.9)


def test_each_utterance_has_an_id_its_words_and_one_segment_of_the_final() -> None:
    ledger = UtteranceLedger("en")
    ledger.start(0.5)
    ledger.commit([w(0.5, 0.8, "hello"), w(0.9, 1.2, "there.")], limit=5.0)
    ledger.changed(Update(ledger.text, "", 1.5), ledger.words[0:2])
    assert ledger.close(CloseReason.PAUSE, 1.5) == 0
    ledger.commit([w(2.0, 2.4, "again")], limit=5.0)  # no voice activity seen: opened at its word
    ledger.changed(Update(ledger.text, "", 3.0), ledger.words[2:])
    assert ledger.close(CloseReason.FINALIZE, 3.0) == 1
    ledger.finalized(3.0, 1)
    assert ledger.close(CloseReason.EOF, 3.0) is None  # nothing open: no event
    events = ledger.take()
    kinds = [type(e) for e in events]
    assert kinds == [SpeechStarted, TranscriptChanged, UtteranceEnded, SpeechStarted, TranscriptChanged,
                     UtteranceEnded, Finalized]  # fmt: skip
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, UtteranceEnded)]
    changes = [e for e in events if isinstance(e, TranscriptChanged)]
    ids = [0, 1]
    assert [e.utterance for e in starts] == [e.utterance for e in ends] == ids
    assert [c.utterance for c in changes] == ids
    assert [e.reason for e in ends] == [CloseReason.PAUSE, CloseReason.FINALIZE]
    assert events[-1] == Finalized(3.0, 1)
    final = ledger.final(3.0)
    assert "".join(e.text for e in ends) == final.text == "hello there. again"
    assert [s.text for s in final.segments] == ["hello there.", "again"]
    assert [s.words for s in final.segments] == [e.words for e in ends]


def test_committed_times_never_go_backwards_nor_before_the_onset_nor_past_the_audio() -> None:
    ledger = UtteranceLedger("en")
    ledger.start(1.0)
    kept = ledger.commit([w(0.7, 1.3, "a"), w(1.25, 1.6, "b"), w(1.7, 9.0, "c")], limit=2.0)
    assert [(x.start, x.end) for x in kept] == [(1.0, 1.3), (1.3, 1.6), (1.7, 2.0)]


def test_an_utterance_closed_without_words_spans_its_speech() -> None:
    ledger = UtteranceLedger("en")
    ledger.start(4.0)
    ledger.close(CloseReason.PAUSE, 4.6)
    end = ledger.take()[-1]
    assert isinstance(end, UtteranceEnded)
    assert (end.start, end.end, end.text, end.words) == (4.0, 4.6, "", ())


def test_unspaced_languages_join_without_spaces() -> None:
    ledger = UtteranceLedger("ja")
    ledger.commit([Word(0.0, 0.3, "こんにちは", 0.9)], limit=1.0)
    ledger.commit([Word(0.4, 0.6, "世界", 0.9)], limit=1.0)
    assert ledger.text == "こんにちは世界"
