"""The turn-taking state machine (turn_taking.py) on scripted events: thresholds, eager →
resumed → end, the silence timeout, finalize and end of input, and what a turn's text holds."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
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
from wirescribe.streaming.planner import TURN_PROBE, TurnHint
from wirescribe.streaming.turn_taking import WORD_SURE, TurnTaker, end_probability

SR = 16000


def turn_events(events: list[Event]) -> list[Event]:
    return [e for e in events if type(e).__name__.startswith(("Turn", "Eager"))]


class Script:
    """Drives a TurnTaker as a session would: events, then pause facts (in seconds)."""

    def __init__(self, **config: object) -> None:
        self.taker = TurnTaker(SessionConfig(turns=True, **config))  # type: ignore[arg-type]
        self.committed = ""
        self.utterance = -1
        self.out: list[Event] = []

    def speech(self, at: float) -> None:
        self.utterance += 1
        self.feed(SpeechStarted(at, self.utterance))

    def say(self, text: str, at: float, committed: bool = True) -> None:
        words = tuple(Word(at, at + 0.3, " " + w, 0.9) for w in text.split()) if committed else ()
        if committed:
            self.committed += " " + text
        self.feed(TranscriptChanged(self.committed, "" if committed else " " + text, at + 0.3, words,
                                    self.utterance if committed else None))  # fmt: skip

    def end_utterance(self, at: float, reason: CloseReason = CloseReason.PAUSE) -> None:
        self.feed(UtteranceEnded(at - 0.5, at, "", (), reason, self.utterance))

    def pause(self, speech_end: float, now: float, model: float | None = None) -> None:
        """The audio reached ``now`` s with the last speech ending at ``speech_end`` s; the
        model's probability for the pause when it asks for one."""
        total, end = int(now * SR), int(speech_end * SR)
        self.taker.tick(total, end, SR)
        if self.taker.needs_score(total, SR):
            self.taker.scored(model, end, total, SR)
        self.out.extend(self.taker.take())

    def feed(self, event: Event) -> None:
        self.taker.observe(event)
        self.out.extend(self.taker.take())

    @property
    def turns(self) -> list[Event]:
        return turn_events(self.out)


def test_end_probability_weighs_how_the_text_ends_and_grows_with_the_silence() -> None:
    at = TURN_PROBE
    assert end_probability(0.6, "Could you?", at) > end_probability(0.6, "I see an extra.", at) == 0.6
    assert end_probability(0.6, "I see an extra", at) == pytest.approx(0.3)
    assert end_probability(0.6, "Wait...", at) == pytest.approx(0.3)
    assert end_probability(0.95, "Can I have your.", at) < 0.2  # Whisper's stop after a dangling word
    assert end_probability(0.95, "Is there anything I can help you with?", at) > 0.95  # asked, not dangling
    assert end_probability(None, "Fine.", at) == 0.5
    growing = [end_probability(0.2, "so", s) for s in (0.1, 0.5, 1.0, 2.0, 2.5, 4.0)]
    assert growing == sorted(growing) and growing[1] == growing[0] and 0.9 < growing[-1] < 1.0


def test_end_probability_doubts_a_last_word_the_model_heard_unsure() -> None:
    """Whisper closes a phrase stopped short with a word it is unsure of ("Can I have you?" for
    "Can I have your ..."): the belief shrinks in proportion below WORD_SURE, never above."""
    at = TURN_PROBE
    sure = end_probability(0.95, "Can I have you?", at)
    assert end_probability(0.95, "Can I have you?", at, sure=0.4) < 0.7 <= sure
    assert end_probability(0.95, "Can I have you?", at, sure=WORD_SURE) == sure
    assert end_probability(0.95, "Can I have you?", at, sure=1.0) == sure
    assert end_probability(0.95, "Can I have you?", at, sure=None) == sure
    assert end_probability(0.95, "Can I have you?", at, sure=-3.0) == 0.0  # hostile: clamped
    assert end_probability(0.95, "Can I have you?", 2.5, sure=0.1) >= 0.9  # the silence still ends it


def test_a_last_word_heard_unsure_keeps_the_turn_open_until_heard_sure() -> None:
    s = Script(eot_threshold=0.7)
    s.speech(0.0)
    heard = (Word(0.1, 0.4, " Can", 0.97), Word(0.4, 0.6, " I", 0.99), Word(0.6, 0.9, " have", 0.98),
             Word(0.9, 1.1, " you?", 0.4))  # fmt: skip
    s.feed(TranscriptChanged("", " Can I have you?", 1.2, (), None, heard))
    s.pause(speech_end=1.1, now=1.1 + TURN_PROBE, model=0.95)
    assert s.taker.hint is not TurnHint.OVER and not any(isinstance(e, TurnEnded) for e in s.turns)
    # the closing pass hears the same words, the last one sure: the turn is over
    sure = tuple(replace(w, probability=0.95) for w in heard)
    s.feed(TranscriptChanged("", " Can I have you?", 1.25, (), None, sure))
    assert s.taker.hint is TurnHint.OVER
    # committed (no tentative words left): the committed words are what was heard last
    s.committed = " Can I have you?"
    s.feed(TranscriptChanged(s.committed, "", 1.3, heard, s.utterance, ()))
    assert s.taker.hint is TurnHint.OVER  # decided: a turn over stays over
    s.end_utterance(1.3)
    ends = [e for e in s.turns if isinstance(e, TurnEnded)]
    assert [(e.trigger, e.text) for e in ends] == [(TurnTrigger.MODEL, "Can I have you?")]


def test_committed_words_heard_unsure_hold_the_turn_too() -> None:
    s = Script(eot_threshold=0.7)
    s.speech(0.0)
    s.committed = " No, that's it."
    unsure = (Word(0.1, 0.4, " No,", 0.95), Word(0.5, 0.8, " that's", 0.9), Word(0.8, 1.0, " it.", 0.22))
    s.feed(TranscriptChanged(s.committed, "", 1.1, unsure, s.utterance))
    s.pause(speech_end=1.0, now=1.0 + TURN_PROBE, model=0.97)
    assert s.taker.hint is not TurnHint.OVER
    s.pause(speech_end=1.0, now=1.3, model=0.97)
    s.end_utterance(1.3)
    assert not any(isinstance(e, TurnEnded) for e in s.turns)


def test_a_complete_sentence_ends_the_turn_once_its_utterance_ends() -> None:
    s = Script()
    s.speech(0.2)
    s.say("Book a table for two.", 0.3)
    assert isinstance(s.turns[0], TurnStarted) and s.turns[0].at == 0.2
    assert isinstance(s.turns[1], TurnUpdate) and s.turns[1].text == "Book a table for two."
    s.pause(speech_end=1.8, now=1.8 + TURN_PROBE / 2, model=0.99)
    assert s.taker.hint is TurnHint.NONE, "judged before the probe silence"
    s.pause(speech_end=1.8, now=1.8 + TURN_PROBE, model=0.9)
    assert s.taker.hint is TurnHint.OVER and not isinstance(s.turns[-1], TurnEnded), "waits for its utterance"
    s.end_utterance(2.0)
    end = s.turns[-1]
    assert isinstance(end, TurnEnded) and end.trigger is TurnTrigger.MODEL and end.turn == 0
    assert end.text == "Book a table for two." and len(end.words) == 5 and end.confidence >= 0.9
    assert s.taker.hint is TurnHint.NONE


def test_a_hesitation_mid_sentence_is_not_an_end_of_turn() -> None:
    s = Script(eot_threshold=0.7)
    s.speech(0.0)
    s.say("I'd like to book", 0.1)
    s.pause(speech_end=1.0, now=1.2, model=0.55)  # unsure prosody, no sentence end: 0.41
    s.pause(speech_end=1.0, now=1.9)
    s.end_utterance(1.9)  # the endpointing closes the utterance, not the turn
    assert not any(isinstance(e, TurnEnded) for e in s.turns)
    s.speech(2.0)
    s.say("a table for two.", 2.1)
    s.pause(speech_end=3.0, now=3.2, model=0.9)
    s.end_utterance(3.3)
    ends = [e for e in s.turns if isinstance(e, TurnEnded)]
    assert len(ends) == 1 and ends[0].text == "I'd like to book a table for two."
    assert sum(isinstance(e, TurnStarted) for e in s.turns) == 1


def test_eager_then_resumed_then_end() -> None:
    s = Script(eot_threshold=0.9, eager_eot_threshold=0.5)
    s.speech(0.0)
    s.say("Yes.", 0.1)
    s.pause(speech_end=0.6, now=0.8, model=0.6)  # over the eager threshold only
    eager = s.turns[-1]
    assert isinstance(eager, EagerEndOfTurn) and eager.text == "Yes."
    assert eager.confidence == pytest.approx(end_probability(0.6, "Yes.", 0.2))
    assert 0.5 <= eager.confidence < 0.9
    assert s.taker.hint is TurnHint.EAGER  # its closing pass starts now
    s.pause(speech_end=1.3, now=1.35)  # speech again
    resumed = s.turns[-1]
    assert isinstance(resumed, TurnResumed) and resumed.at == pytest.approx(1.3)
    assert resumed.confidence == eager.confidence
    assert s.taker.hint is TurnHint.NONE
    s.say("I mean no.", 1.0)
    s.pause(speech_end=2.0, now=2.2, model=0.95)
    s.end_utterance(2.3)
    kinds = [type(e).__name__ for e in s.turns if not isinstance(e, TurnUpdate)]
    assert kinds == ["TurnStarted", "EagerEndOfTurn", "TurnResumed", "TurnEnded"]
    assert s.turns[-1].text == "Yes. I mean no."


def test_silence_ends_the_turn_at_the_timeout_whatever_the_model_said() -> None:
    s = Script(eot_timeout_ms=2000)
    s.speech(0.0)
    s.say("so the", 0.1)
    s.pause(speech_end=0.5, now=0.7, model=0.0)
    s.end_utterance(1.3)
    s.pause(speech_end=0.5, now=2.0)
    assert not any(isinstance(e, TurnEnded) for e in s.turns)
    s.pause(speech_end=0.5, now=2.5)
    end = s.turns[-1]
    assert isinstance(end, TurnEnded) and end.trigger is TurnTrigger.TIMEOUT and end.text == "so the"


def test_without_a_model_the_transcript_and_the_silence_decide() -> None:
    s = Script(eot_threshold=0.7)
    s.speech(0.0)
    s.say("Thank you!", 0.1)
    s.pause(speech_end=0.5, now=0.7, model=None)  # 0.8 with the exclamation mark
    assert s.taker.hint is TurnHint.OVER
    s.end_utterance(1.0)
    s.speech(1.2)
    s.say("Right.", 1.2)
    s.pause(speech_end=1.5, now=1.7, model=None)  # an even guess: the silence decides
    assert s.taker.hint is not TurnHint.OVER
    s.pause(speech_end=1.5, now=3.2, model=None)
    assert s.taker.hint is TurnHint.OVER


def test_finalize_and_end_of_input_end_the_open_turn() -> None:
    s = Script()
    s.speech(0.0)
    s.say("hello", 0.1)
    s.feed(UtteranceEnded(0.0, 0.5, " hello", (), CloseReason.FINALIZE, 0))
    s.feed(Finalized(0.6, closed=0))
    ends = [e for e in s.turns if isinstance(e, TurnEnded)]
    assert [(e.trigger, e.text) for e in ends] == [(TurnTrigger.FINALIZE, "hello")]
    s.speech(1.0)
    s.say("again", 1.1)
    s.end_utterance(2.0)  # closed by the endpointing; the turn waits
    s.feed(Finalized(2.1, closed=None))  # a finalize that found no utterance open ends it
    s.speech(3.0)
    s.say("bye", 3.1)
    s.taker.end_of_input()
    s.out.extend(s.taker.take())
    ends = [e for e in s.turns if isinstance(e, TurnEnded)]
    assert [(e.turn, e.trigger, e.text) for e in ends] == [
        (0, TurnTrigger.FINALIZE, "hello"), (1, TurnTrigger.FINALIZE, "again"), (2, TurnTrigger.EOF, "bye")
    ]  # fmt: skip


def test_a_cough_starts_no_turn_and_tentative_words_do() -> None:
    s = Script()
    s.speech(0.0)
    s.end_utterance(0.4)  # no words
    s.pause(speech_end=0.3, now=1.0, model=1.0)
    assert s.turns == [] and s.taker.hint is TurnHint.NONE
    s.speech(2.0)
    s.say("wait", 2.1, committed=False)
    assert isinstance(s.turns[0], TurnStarted) and s.turns[0].at == 2.0


def test_the_closing_pass_finishing_the_sentence_ends_the_turn_without_waiting_for_audio() -> None:
    s = Script()
    s.speech(0.0)
    s.say("did you", 0.1, committed=False)  # the live hypothesis has no mark yet
    s.pause(speech_end=0.9, now=1.05, model=0.6)
    assert s.taker.hint is TurnHint.NONE  # 0.3: not even eager
    s.say("Did you?", 0.1, committed=False)  # the closing pass heard a question
    assert s.taker.hint is TurnHint.OVER
