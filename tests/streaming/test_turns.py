"""Utterance events from the policy (its ledger, ``ledger.py``) in the scripted world:
speech_started before the first words, utterance_end with exactly the text each utterance
committed, words whose times never go backwards, endpointing, finalize, and the closing pass's
check of early commits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.support.policy_world import FakeModel, Run, Spoken, check_updates, make_script, render, stream
from wirescribe.asr.model import Transcript, Word
from wirescribe.streaming.events import SpeechStarted, TranscriptChanged, UtteranceEnded
from wirescribe.streaming.policy import StreamingOptions, Window


def check_events(run: Run) -> list[UtteranceEnded]:
    """The promises of protocol 1.1 about events, for any run; returns the utterance ends."""
    ends: list[UtteranceEnded] = []
    open_at: float | None = None
    committed = ""
    words: list[Word] = []
    for e in run.events:
        if isinstance(e, SpeechStarted):
            assert open_at is None, "two speech_started without an utterance_end between"
            assert not ends or e.at >= ends[-1].end - 0.3
            open_at = e.at
        elif isinstance(e, TranscriptChanged):
            assert e.committed.startswith(committed)
            if e.words:
                assert open_at is not None, "words committed outside an utterance"
            words.extend(e.words)
            committed = e.committed
        elif isinstance(e, UtteranceEnded):
            assert open_at is not None, "utterance_end without speech_started"
            assert e.start <= e.end
            assert not ends or e.start >= ends[-1].end  # in order, never overlapping
            ends.append(e)
            open_at = None
    assert open_at is None, "an utterance left open after the end of input"
    assert "".join(e.text for e in ends) == run.final.text == committed
    assert [w for e in ends for w in e.words] == words  # every committed word, in one utterance
    assert [w.text for w in words] == [w.text for s in run.final.segments for w in s.words]
    last = 0.0
    for w in words:
        assert last <= w.start <= w.end <= run.policy.audio_seconds
        last = w.end
    return ends


def test_each_pause_ends_an_utterance_with_its_own_text() -> None:
    script = make_script(6, seed=11, pause_after=lambda s: 1.5 if s % 2 == 1 else 0.25)
    run = stream(render(script, tail=0.3), FakeModel(script))  # the input ends before a pause would
    ends = check_events(run)
    assert [e.reason for e in ends] == ["pause", "pause", "eof"]
    for end, pair in zip(ends, (0, 1, 2), strict=True):
        said = [w.text for w in script if w.sentence // 2 == pair]
        assert end.text.split() == said
        assert end.start == pytest.approx(next(w.start for w in script if w.sentence // 2 == pair), abs=0.05)


@pytest.mark.parametrize(("block", "every"), [(0.1, 1), (0.25, 3), (0.02, 17)])
def test_events_keep_their_promises_at_any_pace(block: float, every: int) -> None:
    script = make_script(9, seed=12, pause_after=lambda s: [0.25, 1.1, 2.5][s % 3])
    check_events(stream(render(script), FakeModel(script), block=block, every=every))


def test_speech_started_comes_before_the_words_of_its_utterance() -> None:
    script = make_script(4, seed=13, start=2.0, pause_after=lambda s: 2.0)
    run = stream(render(script), FakeModel(script))
    starts = [e for e in run.events if isinstance(e, SpeechStarted)]
    assert len(starts) == 4
    for start, first in zip(
        starts, [next(w for w in script if w.sentence == s) for s in range(4)], strict=True
    ):
        assert abs(start.at - first.start) < 0.1  # at the onset the detector saw
    check_events(run)


def test_endpointing_sets_the_pause_that_ends_an_utterance() -> None:
    script = make_script(4, seed=14, pause_after=lambda s: 1.2)
    short = check_events(stream(render(script), FakeModel(script)))
    assert len(short) == 4
    long = check_events(stream(render(script), FakeModel(script), options=StreamingOptions(pause=2.0)))
    assert len(long) == 1 and long[0].reason == "eof"


def test_finalize_commits_what_was_heard_and_the_session_goes_on() -> None:
    script = make_script(3, seed=15, words=(12, 12))  # one stretch of speech, no pause
    cut = script[10].end + 0.05
    run = stream(render(script, tail=0.3), FakeModel(script), finalize_at=(cut,))
    ends = check_events(run)
    assert ends[0].reason == "finalize"
    assert ends[0].text.split()[:10] == [w.text for w in script[:10]]
    assert ends[-1].reason == "eof"
    assert run.final.text.split() == [w.text for w in script]  # nothing lost around the cut


def test_silence_only_gives_no_events() -> None:
    script = [Spoken(0.5, 0.8, "w0", 0)]
    run = stream(render(script, tail=0.0)[: 16000 * 5] * 0, FakeModel(script))
    assert run.events == [] or all(isinstance(e, TranscriptChanged) for e in run.events)


def test_the_closing_pass_counts_early_words_it_hears_otherwise() -> None:
    """Words committed by agreement stay committed; the closing pass that re-reads them and
    hears one differently is counted, not obeyed."""
    script = make_script(2, seed=16, words=(10, 10), pause_after=lambda s: 1.5)

    def late_change(call: int, word: Spoken, index: int) -> str:
        final_pass = any(w.final for w in model.windows[-1:])
        return "changed" if final_pass and index == 1 else word.text

    model = FakeModel(script, rewrite=late_change)
    run = stream(render(script), model)
    check_events(run)
    policy = run.policy
    assert policy.early_words > 0
    assert policy.early_disagreed >= 1
    assert "changed" not in run.final.text  # committed text never changes


def test_the_closing_pass_runs_before_the_pause_is_complete_and_commits_when_it_is() -> None:
    """With 0.8 s endpointing the closing window is cut 0.45 s early; nothing commits until the
    pause is complete, then the utterance ends at once, with no other model call in between."""
    script = make_script(1, seed=17, words=(8, 8))
    end = script[-1].end
    run = stream(render(script, tail=2.0), FakeModel(script), block=0.05)
    closing = [w for w in run.model.windows if w.reason == "pause"]
    assert len(closing) == 1
    cut_at = closing[0].end / 16000
    assert cut_at <= end + 0.3  # speech end + tail pad: the window was cut early
    after = [w for w in run.model.windows if w.start / 16000 <= end and w.end / 16000 > cut_at + 0.05]
    assert after == [], "a model call after the closing pass"
    ends = check_events(run)
    assert ends[0].reason == "pause" and ends[0].text.split() == [w.text for w in script]


def test_speech_that_resumes_during_the_early_pass_goes_on_as_one_utterance() -> None:
    """A gap of 0.6 s: long enough to start the closing pass, too short to end the utterance."""
    script = make_script(2, seed=18, words=(6, 6), pause_after=lambda s: 0.6)
    run = stream(render(script, tail=0.3), FakeModel(script), block=0.05)
    assert any(w.reason == "pause" for w in run.model.windows)  # the early pass ran
    ends = check_events(run)
    assert len(ends) == 1 and ends[0].reason == "eof"
    assert run.final.text.split() == [w.text for w in script]


def test_silence_after_speech_costs_no_refreshes() -> None:
    """Once the speech stops, tentative refreshes stop too: only the closing pass runs."""
    script = make_script(1, seed=19, words=(8, 8))
    run = stream(render(script, tail=5.0), FakeModel(script), block=0.1)
    late = [w for w in run.model.windows if w.end / 16000 > script[-1].end + 0.3]
    assert late == []  # the closing window ends at the speech's end plus its tail pad
    assert [w.reason for w in run.model.windows if w.final] == ["pause"]


def test_speech_that_arrives_in_one_big_block_starts_where_it_starts() -> None:
    """A client that sends seconds of audio at once: the onset is found at the speech's start,
    not only in the block's last second (and the closing window starts there)."""
    script = make_script(2, seed=20, start=0.5, pause_after=lambda s: 0.3)
    audio = render(script, tail=0.3)
    run = stream(audio, FakeModel(script), block=len(audio) / 16000)
    starts = [e for e in run.events if isinstance(e, SpeechStarted)]
    assert len(starts) == 1 and abs(starts[0].at - 0.5) < 0.1
    assert run.final.text.split() == [w.text for w in script]


def test_the_closing_pass_keeps_an_unsure_last_word() -> None:
    """A live window that ends inside a word drops the model's near-zero-probability guess at it;
    the closing window ends after the speech, so its last word is kept however unsure."""
    script = make_script(1, seed=21, words=(7, 7))

    class UnsureLastWord(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            result = super().__call__(window)
            segments = tuple(
                replace(s, words=(*s.words[:-1], replace(s.words[-1], probability=0.02))) if s.words else s
                for s in result.segments
            )
            return replace(result, segments=segments)

    run = stream(render(script, tail=1.5), UnsureLastWord(script))
    assert run.final.text.split() == [w.text for w in script]


@pytest.mark.parametrize("every", [1, 3])
def test_short_endpointing_commits_no_word_cut_off_by_the_closing_window(every: int) -> None:
    """With 300 ms endpointing the closing pass may not start before the pause is complete (it
    would start at once, and a window ending 0.25 s after the speech would cut the next word)."""
    script = make_script(6, seed=23, pause_after=lambda s: [0.15, 0.35, 0.6][s % 3])
    short = StreamingOptions(pause=0.3)
    run = stream(render(script), FakeModel(script), block=0.1, every=every, options=short)
    check_updates(run)  # nothing half-heard is committed
    check_events(run)
    assert run.final.text.split() == [w.text for w in script]


def test_a_closing_pass_the_speech_interrupts_keeps_its_words_and_is_counted() -> None:
    """Gaps of 0.6 s start a closing pass (0.5 s into a pause) that the next words interrupt
    before the 0.8 s endpointing: its words commit, the utterance goes on, and the policy counts
    it (the metric stt_closing_passes_interrupted)."""
    script = make_script(4, seed=21, pause_after=lambda s: 0.6 if s < 3 else 1.5)
    run = stream(render(script), FakeModel(script))
    ends = check_events(run)
    assert run.policy.interrupted_closings >= 2
    assert [w.text for w in script] == run.final.text.split()
    assert len(ends) == 1  # the gaps were shorter than the endpointing: one utterance
