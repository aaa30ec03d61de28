"""The planner, one pure function: each step it can take, from a state built by hand, and the
promise that the scheduler's urgency and the policy's execution read the same plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from tests.support.policy_world import FakeModel, make_script, render
from tests.support.policy_world import energy_probability as energy
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import CloseReason, UtteranceEnded
from wirescribe.streaming.planner import IDLE, PlanState, Step, TurnHint, closing_silence, plan
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.window import SR, StreamingOptions, WindowKind

OPTS = StreamingOptions()  # pause 0.8 s, closing pass 0.3 s early, 0.25 s of new audio per refresh
S = SR  # one second in samples

SPEAKING = PlanState(
    total=10 * S, last_window_end=9 * S, window_start=2 * S, uncommitted_speech=(5 * S, 10 * S),
    new_speech=True, has_hypothesis=True, utterance_open=True, open_speech_end=10 * S,
    held_speech_end=None, resumed_at=None,
)  # fmt: skip


def test_speech_going_on_gets_a_refresh_of_the_whole_window() -> None:
    step = plan(SPEAKING, OPTS)
    assert (step.step, step.end, step.speech_from, step.new_speech) == (Step.REFRESH, 10 * S, 5 * S, True)
    assert step.needs_model and not step.closes


def test_less_than_the_new_audio_minimum_waits() -> None:
    assert plan(replace(SPEAKING, last_window_end=10 * S - 100), OPTS).step is Step.IDLE


def test_no_new_speech_keeps_the_hypothesis() -> None:
    state = replace(SPEAKING, new_speech=False, uncommitted_speech=(5 * S, int(9.9 * S)))
    assert plan(state, OPTS).step is Step.IDLE
    assert plan(replace(state, has_hypothesis=False), OPTS).step is Step.REFRESH


def test_a_window_grown_too_long_is_cut() -> None:
    state = replace(SPEAKING, window_start=10 * S - int(OPTS.max_window * S))
    assert plan(state, OPTS).step is Step.CUT


@pytest.mark.parametrize("silence", [0.36, 0.5, 0.79, 2.0])
def test_silence_after_speech_starts_the_closing_pass_ending_after_the_speech(silence: float) -> None:
    end = 10 * S - int(silence * S)
    state = replace(SPEAKING, uncommitted_speech=(5 * S, end), open_speech_end=end)
    step = plan(state, OPTS)
    assert silence >= closing_silence(OPTS)
    assert (step.step, step.reason, step.end) == (Step.CLOSE, CloseReason.PAUSE, end + int(OPTS.tail_pad * S))
    assert step.closes


def test_the_closing_pass_never_starts_before_0_35_s_of_silence() -> None:
    short = replace(OPTS, pause=0.3)
    assert closing_silence(short) == pytest.approx(0.3)
    assert closing_silence(replace(OPTS, pause=0.6)) == pytest.approx(0.35)
    assert closing_silence(OPTS) == pytest.approx(0.35)  # at 0.8 s: 0.45 s before the pause is complete
    assert closing_silence(OPTS, sentence_end=False) == pytest.approx(0.5)  # "...amiable woman,"
    assert closing_silence(short, sentence_end=False) == pytest.approx(0.3)
    end = 10 * S - int(0.4 * S)
    mid = replace(SPEAKING, uncommitted_speech=(5 * S, end), new_speech=False, has_hypothesis=True)
    assert plan(mid, OPTS).step is Step.CLOSE
    assert plan(replace(mid, sentence_end=False), OPTS).step is Step.IDLE
    end = 10 * S - int(0.3 * S)
    state = replace(SPEAKING, uncommitted_speech=(5 * S, end), new_speech=False, has_hypothesis=True)
    assert plan(state, OPTS).step is Step.IDLE


def test_a_held_pass_waits_for_its_pause_then_ends_the_utterance() -> None:
    held = replace(SPEAKING, held_speech_end=int(9.5 * S), uncommitted_speech=(5 * S, int(9.5 * S)))
    assert plan(held, OPTS) == replace(IDLE, speech_from=5 * S, new_speech=True)
    done = plan(replace(held, total=int(10.3 * S)), OPTS)
    assert (done.step, done.reason, done.ends_utterance) == (Step.COMMIT_HELD, CloseReason.PAUSE, True)
    assert not done.needs_model


def test_a_held_pass_interrupted_by_speech_commits_and_the_utterance_goes_on() -> None:
    held = replace(SPEAKING, held_speech_end=int(9.0 * S), resumed_at=int(9.6 * S))
    step = plan(held, OPTS)
    assert (step.step, step.ends_utterance) == (Step.COMMIT_HELD, False)
    late = plan(replace(held, resumed_at=int(9.9 * S)), replace(OPTS, pause=0.8))
    assert late.ends_utterance  # the pause was complete before the speech came back


@pytest.mark.parametrize("request_", [CloseReason.FINALIZE, CloseReason.EOF])
def test_finalize_and_eof_close_with_all_the_audio_or_end_quietly(request_: CloseReason) -> None:
    step = plan(replace(SPEAKING, request=request_), OPTS)
    assert (step.step, step.reason, step.end) == (Step.CLOSE, request_, 10 * S)
    quiet = replace(SPEAKING, request=request_, uncommitted_speech=None)
    assert (plan(quiet, OPTS).step, plan(quiet, OPTS).reason) == (Step.END_QUIET, request_)
    assert plan(replace(quiet, utterance_open=False), OPTS).step is Step.IDLE
    held = replace(SPEAKING, request=request_, held_speech_end=int(9.6 * S))
    assert (plan(held, OPTS).step, plan(held, OPTS).reason) == (Step.COMMIT_HELD, request_)


@pytest.mark.parametrize("request_", [CloseReason.FINALIZE, CloseReason.EOF])
def test_a_request_that_finds_the_pause_complete_closes_by_the_pause(request_: CloseReason) -> None:
    """Under load a finalize may be carried out after the pause that ended the utterance: the
    utterance ended by that pause (a client sees speech_final / speech_stopped), and the
    finalize finds none open."""
    end = 9 * S
    state = replace(SPEAKING, request=request_, uncommitted_speech=(5 * S, end), open_speech_end=end)
    step = plan(state, OPTS)
    assert (step.step, step.reason, step.end) == (Step.CLOSE, CloseReason.PAUSE, end + int(OPTS.tail_pad * S))
    held = plan(replace(state, held_speech_end=end), OPTS)
    assert (held.step, held.reason) == (Step.COMMIT_HELD, CloseReason.PAUSE)
    quiet = plan(replace(state, uncommitted_speech=None), OPTS)
    assert (quiet.step, quiet.reason) == (Step.END_QUIET, CloseReason.PAUSE)


def test_an_utterance_with_nothing_left_to_hear_ends_a_pause_after_its_speech() -> None:
    quiet = replace(SPEAKING, uncommitted_speech=None, open_speech_end=int(9.3 * S))
    assert plan(quiet, OPTS).step is Step.IDLE
    done = plan(replace(quiet, open_speech_end=int(9.1 * S)), OPTS)
    assert (done.step, done.reason) == (Step.END_QUIET, CloseReason.PAUSE)


def test_the_policy_carries_out_exactly_what_it_plans() -> None:
    """Whatever the plan says at any moment of a real run, the window the policy then cuts is
    of that kind, reason and end: no second copy of the decision exists."""
    script = make_script(5, seed=4, pause_after=lambda s: (0.3, 0.6, 1.2)[s % 3])
    audio, model = render(script), FakeModel(script)
    policy = StreamingPolicy(VoiceActivity(energy), OPTS, "en")
    kinds = {Step.REFRESH: WindowKind.REFRESH, Step.CUT: WindowKind.CUT, Step.CLOSE: WindowKind.CLOSE}
    seen: set[Step] = set()
    for k in range(0, len(audio), S // 4):
        policy.insert_audio(audio[k : k + S // 4])
        policy.settle()
        step = policy.plan()
        seen.add(step.step)
        window = policy.next_window()
        if step.needs_model:
            assert window is not None
            assert (window.kind, window.reason, window.end) == (kinds[step.step], step.reason, step.end)
            policy.apply(window, model(window))
        else:
            assert window is None
    assert {Step.REFRESH, Step.CLOSE, Step.IDLE} <= seen


def test_the_pause_counts_from_the_last_word_not_the_detectors_hangover() -> None:
    """The detector's speech runs on after the last word (here 0.3 s); the utterance ends a
    pause after the word as the closing pass aligned it, but never more than 0.15 s before a
    pause after the detector's end."""
    script = make_script(1, seed=31, words=(6, 6))
    audio = render(script, tail=2.0)
    hangover = int(0.3 * S)

    left = [0]  # frames of hangover still to come, across calls

    def lingering(frames: np.ndarray) -> np.ndarray:
        probs = energy(frames)  # the first row is the context frame, which the caller drops
        for i in range(1, len(probs)):
            left[0] = hangover // 512 if probs[i] > 0.5 else max(0, left[0] - 1)
            probs[i] = 0.95 if left[0] else probs[i]
        return probs

    policy = StreamingPolicy(VoiceActivity(lingering), OPTS, "en")
    model = FakeModel(script)
    ended_at = None
    for k in range(0, len(audio), S // 20):
        policy.insert_audio(audio[k : k + S // 20])
        policy.settle()
        if (window := policy.next_window()) is not None:
            policy.apply(window, model(window))
        if ended_at is None and any(isinstance(e, UtteranceEnded) for e in policy.take_events()):
            ended_at = policy.audio_seconds
    assert ended_at is not None
    word_end = script[-1].end
    assert word_end + 0.8 + 0.15 <= ended_at + 0.05  # the hangover counted but 0.15 s of it
    assert ended_at <= word_end + hangover / S + 0.8 - 0.1  # ... not all of it


def test_a_turn_likely_over_starts_its_closing_pass_after_the_probe_silence() -> None:
    end = 10 * S - int(0.12 * S)  # 0.12 s of silence: far from the closing silence
    state = replace(SPEAKING, uncommitted_speech=(5 * S, end), open_speech_end=end)
    state = replace(state, last_window_end=10 * S - 10)
    assert plan(state, OPTS).step is Step.IDLE
    for hint in (TurnHint.EAGER, TurnHint.OVER):
        step = plan(replace(state, hint=hint), OPTS)
        assert (step.step, step.reason, step.end) == (Step.CLOSE, CloseReason.PAUSE, 10 * S)  # all it has
    speaking = replace(state, uncommitted_speech=(5 * S, 10 * S - int(0.05 * S)), hint=TurnHint.EAGER)
    assert plan(speaking, OPTS).step is not Step.CLOSE, "not before the probe silence"


def test_a_turn_over_ends_its_utterance_without_waiting_for_the_endpointing() -> None:
    held = replace(SPEAKING, uncommitted_speech=None, held_speech_end=int(9.7 * S))
    assert plan(held, OPTS).step is Step.IDLE  # 0.3 s of an 0.8 s pause
    step = plan(replace(held, hint=TurnHint.OVER), OPTS)
    assert (step.step, step.ends_utterance) == (Step.COMMIT_HELD, True)
    resumed = replace(held, resumed_at=int(9.9 * S), hint=TurnHint.OVER)  # the next turn began
    assert plan(resumed, OPTS).ends_utterance
    quiet = replace(SPEAKING, uncommitted_speech=None, open_speech_end=int(9.7 * S))
    assert plan(quiet, OPTS).step is Step.IDLE
    assert plan(replace(quiet, hint=TurnHint.OVER), OPTS).step is Step.END_QUIET
    assert plan(replace(quiet, hint=TurnHint.EAGER), OPTS).step is Step.IDLE


def test_no_refresh_while_the_turn_model_judges_a_pause() -> None:
    end = 10 * S - int(0.12 * S)
    state = replace(SPEAKING, uncommitted_speech=(5 * S, end), open_speech_end=end, hint=TurnHint.JUDGING)
    assert plan(state, OPTS).step is Step.IDLE
    assert plan(replace(state, request=CloseReason.FINALIZE), OPTS).step is Step.CLOSE  # requests go on
