"""streaming.StreamingPolicy against a scripted world (``policy_world.py``): whole streams,
LocalAgreement-2, bounded windows, the prompt, silence and text assembly. The hallucination
filters are in ``test_policy_hallucinations.py``."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.policy_world import (
    GARBLED,
    FakeModel,
    Spoken,
    check_final,
    check_updates,
    energy_probability,
    make_script,
    render,
    stream,
    true_words,
    words_of,
)
from wirescribe.asr.model import Segment, Transcript, Word
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import SR, StreamingOptions, StreamingPolicy, Window

# -- the whole stream --------------------------------------------------------------------------


@pytest.mark.parametrize(("block", "every"), [(0.25, 1), (0.1, 1), (0.5, 1), (0.25, 4), (0.02, 13)])
def test_everything_said_is_final_once(block: float, every: int) -> None:
    script = make_script(8, seed=2, pause_after=lambda s: 1.2 if s % 3 == 2 else 0.25)
    run = stream(render(script), FakeModel(script), block=block, every=every)
    check_updates(run)
    check_final(run, script)


def test_commits_grow_before_the_end() -> None:
    """Committed text is not held back until eof: most of it is committed while streaming."""
    script = make_script(10, seed=3)  # continuous speech, no pause
    run = stream(render(script), FakeModel(script))
    check_updates(run)
    assert len(words_of(run.updates[-1].committed)) >= 0.8 * len(script)
    halfway = run.updates[len(run.updates) // 2].committed
    assert len(words_of(halfway)) >= 0.3 * len(script)


def test_tentative_is_the_newest_speech() -> None:
    script = make_script(6, seed=4)
    run = stream(render(script), FakeModel(script), eof=False)
    truth = true_words(script)
    assert any(u.tentative for u in run.updates)  # there is tentative speech to check
    for u in run.updates:
        said = words_of(u.committed) + [w.removesuffix(GARBLED) for w in words_of(u.tentative)]
        assert said == truth[: len(said)]  # committed then tentative: in order, nothing skipped


def test_audio_seconds() -> None:
    script = make_script(3, seed=5)
    audio = render(script)
    run = stream(audio, FakeModel(script), block=0.25)
    assert run.updates
    for u in run.updates:
        assert u.audio_seconds > 0 and u.audio_seconds * 4 == int(u.audio_seconds * 4)  # whole blocks
    assert run.final.audio_seconds == pytest.approx(len(audio) / SR)
    assert run.policy.audio_seconds == pytest.approx(len(audio) / SR)


# -- LocalAgreement-2 --------------------------------------------------------------------------


def test_first_hypothesis_commits_nothing() -> None:
    script = make_script(1, seed=6, words=(12, 12))
    audio = render(script)
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    model = FakeModel(script)
    policy.insert_audio(audio[: int(2.5 * SR)])
    window = policy.next_window()
    assert window is not None and not window.final and window.start < script[0].start * SR
    update = policy.apply(window, model(window))
    assert update is not None
    assert update.committed == ""
    assert words_of(update.tentative)[0] == script[0].text
    assert len(words_of(update.tentative)) >= 3


def test_words_commit_only_when_two_hypotheses_agree() -> None:
    """Every word committed by a non-final window was in the previous hypothesis and in this one,
    spelt the same."""
    script = make_script(12, seed=7)
    audio = render(script)
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    model = FakeModel(script)
    previous: list[str] = []
    committed_before: list[str] = []
    commits = 0
    n = SR // 4
    for k in range(0, len(audio), n):
        policy.insert_audio(audio[k : k + n])
        window = policy.next_window()
        if window is None:
            continue
        result = model(window)
        now = [w.text.strip() for s in result.segments for w in s.words]
        policy.apply(window, result)
        committed = words_of(policy.current().committed)
        assert committed[: len(committed_before)] == committed_before
        new = committed[len(committed_before) :]
        if not window.final:
            commits += bool(new)
            for word in new:
                assert word in previous and word in now, f"{word} committed without agreement"
        committed_before, previous = committed, now
    assert commits >= 5


def test_a_word_that_keeps_changing_is_not_committed_until_the_utterance_ends() -> None:
    script = make_script(1, seed=8, words=(14, 14))
    flip = 5  # the model hesitates between two spellings of word 5 on every call

    def rewrite(call: int, w: Spoken, i: int) -> str:
        return w.text + ("a" if call % 2 else "b") if i == flip else w.text

    run = stream(render(script, tail=0.2), FakeModel(script, rewrite=rewrite), eof=False)
    check_updates(run)
    truth = true_words(script)
    for u in run.updates:  # the utterance has not ended (0.2 s < pause): nothing past the dispute
        committed = words_of(u.committed)
        assert committed == truth[: len(committed)] and len(committed) <= flip

    # once the speaker pauses, the utterance is committed whole, in the final window's spelling
    run = stream(render(script, tail=1.5), FakeModel(script, rewrite=rewrite), eof=False)
    check_updates(run)
    committed = words_of(run.updates[-1].committed)
    assert committed[:flip] == truth[:flip] and committed[flip + 1 :] == truth[flip + 1 :]
    assert committed[flip] in (truth[flip] + "a", truth[flip] + "b")


def test_a_pause_commits_the_utterance() -> None:
    script = make_script(1, seed=9, words=(8, 8))
    audio = render(script, tail=1.5)
    run = stream(audio, FakeModel(script), eof=False)
    check_updates(run)
    last = run.updates[-1]
    assert words_of(last.committed) == true_words(script)
    assert last.tentative == ""
    # Everything is committed within a pause's length of the speech's end, whether by agreement
    # or by a final window over the utterance.
    assert run.updates[-1].audio_seconds <= script[-1].end + StreamingOptions().pause + 0.6
    final_windows = [w for w in run.model.windows if w.final]
    assert final_windows  # the pause closed the utterance with a final window
    for final_window in final_windows:
        assert final_window.end / SR <= script[-1].end + 0.6  # cut soon after the speech ended
        assert final_window.end / SR >= script[-1].end  # but the last word is whole


@pytest.mark.parametrize(("block", "every"), [(0.25, 1), (0.5, 1), (0.25, 3), (1.0, 1)])
def test_each_pause_ends_an_utterance_and_a_segment(block: float, every: int) -> None:
    """One segment per utterance: the words of one utterance committed partly by agreement and
    partly by the final window at its pause are still one segment."""
    script = make_script(4, seed=10, words=(4, 6), pause_after=lambda s: 1.5)
    run = stream(render(script), FakeModel(script), block=block, every=every)
    check_final(run, script)
    utterances = [" ".join(w.text for w in script if w.sentence == s) for s in range(4)]
    assert [seg.text for seg in run.final.segments] == utterances


# -- bounded windows ---------------------------------------------------------------------------


def test_ten_minutes_of_speech_keep_the_window_bounded() -> None:
    script = make_script(150, seed=11)  # about 10 minutes without a pause
    assert script[-1].end > 600
    audio = render(script)
    model = FakeModel(script)
    run = stream(audio, model, block=0.5)
    lengths = np.array([len(w.audio) / SR for w in model.windows])
    starts = np.array([w.end / SR for w in model.windows])
    assert lengths.max() <= 25.0
    first, last = lengths[starts < 60], lengths[starts > starts[-1] - 60]
    assert last.max() <= first.max() + 1.0 and last.mean() <= first.mean() + 2.0
    check_updates(run)
    check_final(run, script)
    assert run.policy.window_seconds <= 25.0


def test_window_bounded_when_the_model_never_agrees() -> None:
    """No agreement at all (every call spells the words anew): still no window past max_window."""
    script = make_script(12, seed=12)

    def rewrite(call: int, w: Spoken, i: int) -> str:
        return f"{w.text}v{call}"

    model = FakeModel(script, rewrite=rewrite)
    options = StreamingOptions()
    run = stream(render(script), model, options=options)
    assert max(len(w.audio) for w in model.windows) / SR <= options.max_window + 0.5
    previous = ""
    for u in run.updates:  # (a window cut at max_window may commit the word it cuts in half)
        assert u.committed.startswith(previous)
        previous = u.committed
    assert len(words_of(run.final.text)) >= len(script) - 3


def test_slow_model_still_bounded_and_complete() -> None:
    script = make_script(30, seed=13)
    model = FakeModel(script)
    run = stream(render(script), model, block=0.25, every=8)  # a window every 2 s
    assert max(len(w.audio) for w in model.windows) / SR <= 25.0
    check_updates(run)
    check_final(run, script)


# -- prompt ------------------------------------------------------------------------------------


def test_prompt_is_committed_text_before_the_window() -> None:
    script = make_script(40, seed=14, pause_after=lambda s: 1.0 if s % 4 == 3 else 0.25)
    model = FakeModel(script)
    options = StreamingOptions()
    run = stream(render(script), model, options=options)
    check_final(run, script)
    ends = {w.text: w.end for w in script}
    with_prompt = 0
    for window, committed in zip(model.windows, run.committed_at_window, strict=True):
        assert len(window.prompt) <= options.prompt_chars
        assert committed.endswith(window.prompt) or committed.find(window.prompt) >= 0
        before = [w for w in words_of(committed) if ends[w] <= window.start / SR + 0.05]
        if not before:
            assert window.prompt == ""
            continue
        with_prompt += 1
        expected = " ".join(before)
        # the newest committed words before the window, in order, ending right before it
        assert window.prompt.strip() and expected.endswith(window.prompt.strip())
        assert len(window.prompt.strip()) >= min(len(expected), options.prompt_chars // 2)
    assert with_prompt >= len(model.windows) // 2


def test_prompt_starts_on_a_word() -> None:
    script = make_script(40, seed=14, pause_after=lambda s: 1.0 if s % 4 == 3 else 0.25)
    model = FakeModel(script)
    stream(render(script), model)
    starts = {w.text for w in script}
    prompted = [window for window in model.windows if window.prompt]
    assert len(prompted) >= len(model.windows) // 2 > 0
    for window in prompted:
        assert window.prompt == window.prompt.strip()
        assert window.prompt.split()[0] in starts


# -- silence -----------------------------------------------------------------------------------


def silence_bound(options: StreamingOptions | None = None) -> float:
    """How much audio the policy may hold when it has heard no new speech: its lead-in, plus
    committed audio kept as context (``max_gap``, where the policy has one), plus a block."""
    options = options or StreamingOptions()
    return options.lead_in + getattr(options, "max_gap", 0.0) + 0.5


def test_silence_never_reaches_the_model() -> None:
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    silence = np.zeros(int(0.25 * SR), dtype=np.float32)
    for _ in range(120):  # 30 s
        policy.insert_audio(silence)
        assert policy.next_window() is None
        assert policy.window_seconds <= silence_bound()
    assert policy.next_window(CloseReason.EOF) is None
    assert policy.finish().text == "" and policy.finish().segments == ()
    assert policy.audio_seconds == pytest.approx(30.0)


def test_quiet_noise_is_silence() -> None:
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    rng = np.random.default_rng(0)
    for _ in range(40):
        policy.insert_audio(rng.uniform(-0.01, 0.01, SR // 4).astype(np.float32))
        assert policy.next_window() is None
        assert policy.window_seconds <= silence_bound()


def test_silence_after_speech_does_not_grow_the_buffer() -> None:
    script = make_script(2, seed=15)
    audio = np.concatenate([render(script), np.zeros(60 * SR, dtype=np.float32)])
    model = FakeModel(script)
    run = stream(audio, model, eof=False)
    assert words_of(run.updates[-1].committed) == true_words(script)
    assert run.policy.window_seconds <= silence_bound()
    calls = len(model.windows)
    assert all(w.end / SR <= script[-1].end + 2 for w in model.windows)  # none in the silence
    assert calls < 60


def test_speech_after_long_silence_starts_near_its_onset() -> None:
    script = make_script(1, seed=16, start=20.0, words=(6, 6))
    model = FakeModel(script)
    run = stream(render(script), model)
    check_final(run, script)
    first = model.windows[0]
    assert script[0].start - 1.0 <= first.start / SR <= script[0].start
    assert len(first.audio) / SR < 5.0


def test_clicks_are_not_speech() -> None:
    audio = np.zeros(10 * SR, dtype=np.float32)
    for t in (1.0, 3.0, 5.5, 8.0):  # 20 ms clicks (two frames at most)
        audio[int(t * SR) : int((t + 0.02) * SR)] = 0.5
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    for k in range(0, len(audio), SR // 4):
        policy.insert_audio(audio[k : k + SR // 4])
        assert policy.next_window() is None
    assert policy.next_window(CloseReason.EOF) is None


# -- text assembly -----------------------------------------------------------------------------


def test_repeated_words_across_a_commit_boundary_are_kept() -> None:
    """'had had', 'that that', 'no no': a word that repeats the last committed one is speech,
    not the model re-reading its prompt, when its audio comes after the committed word's."""
    texts = "I had had enough of it and that that was all no no no said he".split()
    script = make_script(1, seed=23, texts=texts)
    for block, every in ((0.25, 1), (0.1, 1), (0.25, 3), (0.05, 7)):
        run = stream(render(script), FakeModel(script), block=block, every=every)
        assert words_of(run.final.text) == texts, (block, every)


def test_language_without_spaces() -> None:
    texts = list("我们明天去公园散步吧")
    script = make_script(1, seed=24, texts=texts)

    class NoSpace(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            t = super().__call__(window)
            segments = tuple(
                Segment(s.start, s.end, s.text.replace(" ", ""),
                        tuple(Word(w.start, w.end, w.text.strip(), w.probability) for w in s.words))
                for s in t.segments
            )  # fmt: skip
            return Transcript(segments, "zh", t.duration)

    run = stream(render(script), NoSpace(script), language="zh")
    assert run.final.text == "".join(texts)
    assert run.updates and all(" " not in u.text for u in run.updates)
