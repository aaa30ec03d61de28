"""The policy never takes speech as committed unless words were committed for it.

Whisper decoding without timestamps may stop at a pause inside its window (then everything
after it goes unheard), may echo its prompt instead of the speech, and a closing pass decoded
as one segment can be dropped whole as an invention. Each used to lose an utterance or its
tail (the closing pass's window was marked committed whatever it heard); each is simulated
here on the scripted world, and every spoken word must reach the final text.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.streaming.test_turns import check_events
from tests.support.policy_world import FakeModel, Spoken, check_final, make_script, render, stream, true_words
from wirescribe.asr.types import Segment, Transcript, Word
from wirescribe.streaming.window import SR, Window


def stops_at_first_pause(model: FakeModel) -> FakeModel:
    """Every window is heard up to the end of its first sentence only (Whisper without
    timestamps reaching EOT at a pause)."""

    def cut(window: Window) -> Transcript:
        result = FakeModel.__call__(model, window)
        return replace(result, segments=result.segments[:1])

    class Stopping(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            return cut(window)

    return Stopping(model.script, windows=model.windows)


def test_a_closing_pass_that_stops_at_a_pause_loses_nothing() -> None:
    # Sentences 0.25-0.6 s apart (inside one utterance), then a long pause.
    script = make_script(6, seed=21, pause_after=lambda s: 1.5 if s % 3 == 2 else 0.3 + 0.1 * (s % 3))
    model = stops_at_first_pause(FakeModel(script))
    run = stream(render(script), model)
    check_events(run)
    check_final(run, script)
    assert any(w.retry for w in model.windows), "no closing pass missed speech: the test tests nothing"


def test_the_end_of_input_after_a_short_gap_keeps_the_last_sentence() -> None:
    """The lost sentence tail of test_transcription.py: two sentences 0.25 s apart, the input
    ends right after; the closing pass stops at the first sentence's end."""
    script = make_script(2, seed=5, words=(4, 6))
    model = stops_at_first_pause(FakeModel(script))
    run = stream(render(script, tail=0.3), model)
    check_events(run)
    assert run.final.text.split() == true_words(script)


def echo_model(script: list[Spoken]) -> FakeModel:
    """A closing window with a prompt is heard as the prompt's last words said again, placed
    over its speech (Whisper continuing its prompt); without a prompt it is heard right."""

    class Echo(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            result = super().__call__(window)
            prompt = window.prompt.split()[-4:]
            if not (window.closes_utterance and len(prompt) >= 2 and result.segments):
                return result
            t0 = result.segments[0].start
            words = tuple(Word(t0 + 0.3 * i, t0 + 0.3 * i + 0.25, " " + p, 0.9) for i, p in enumerate(prompt))
            text = "".join(w.text for w in words)
            echo = Segment(words[0].start, words[-1].end, text, words, avg_logprob=-0.3)
            return replace(result, segments=(echo,))

    return Echo(script)


def test_a_closing_pass_that_echoes_its_prompt_is_heard_again_without_it() -> None:
    script = make_script(4, seed=3, pause_after=lambda s: 1.5)
    model = echo_model(script)
    run = stream(render(script), model)
    check_events(run)
    check_final(run, script)
    retried = [w for w in model.windows if w.retry]
    assert retried and all(w.prompt == "" for w in retried)


def test_a_closing_pass_dropped_as_an_invention_is_heard_again() -> None:
    """A closing pass without timestamps is one segment: unsure words (mean probability under
    0.3) used to drop the whole utterance. A second pass keeps the words that lie on speech."""
    script = make_script(3, seed=9, pause_after=lambda s: 1.5)

    class Unsure(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            result = super().__call__(window)
            if not window.closes_utterance:
                return Transcript((), "en", result.duration)  # live passes hear nothing
            unsure = [tuple(replace(w, probability=0.2) for w in s.words) for s in result.segments]
            segs = tuple(replace(s, words=ws) for s, ws in zip(result.segments, unsure, strict=True))
            return replace(result, segments=segs)

    model = Unsure(script)
    run = stream(render(script), model)
    check_events(run)
    assert run.final.text.split() == true_words(script)


def test_a_closing_pass_that_hears_nothing_of_silence_is_not_retried() -> None:
    """Noise the detector took for speech, that the model hears as nothing: one second pass
    at most, then the utterance ends (no loop)."""
    script = make_script(1, seed=2, words=(3, 3), pause_after=lambda s: 1.5)

    class Deaf(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            self.windows.append(window)
            return Transcript((), "en", window.seconds)

    model = Deaf(script)
    run = stream(render(script), model)
    check_events(run)
    closing = [w for w in model.windows if w.closes_utterance]
    assert 1 <= sum(w.retry for w in closing) <= 1
    assert run.final.text == ""
    assert len(model.windows) < 3 * run.policy.audio_seconds / 0.25  # no storm of calls
    assert run.policy.total_samples == len(render(script))
    assert SR == 16000


def stretching(script: list[Spoken], *, live_hear: bool) -> FakeModel:
    """A first closing pass that leaves an utterance's last three words unheard and stretches its
    last kept word over them; live passes hear everything, or nothing (``live_hear``)."""

    class Stretching(FakeModel):
        def __call__(self, window: Window) -> Transcript:
            result = super().__call__(window)
            if not window.closes_utterance and not live_hear:
                return Transcript((), "en", result.duration)
            if not window.closes_utterance or window.retry or not result.segments:
                return result
            seg = result.segments[-1]
            kept = list(seg.words[:-3])  # the last three words unheard ...
            kept[-1] = replace(kept[-1], end=seg.words[-1].end)  # ... and the last kept one stretched
            short = replace(seg, text="".join(w.text for w in kept), words=tuple(kept), end=kept[-1].end)
            return replace(result, segments=(*result.segments[:-1], short))

    return Stretching(script)


def test_a_closing_pass_that_stretches_its_last_word_over_what_it_missed_loses_nothing() -> None:
    """A pass that stops early tends to stretch its last word's alignment over the speech it did
    not decode: its own times look complete. The live hypothesis, which heard on, tells."""
    script = make_script(2, seed=13, words=(8, 8), pause_after=lambda s: 1.5)
    model = stretching(script, live_hear=True)
    run = stream(render(script), model)
    check_events(run)
    assert run.final.text.split() == true_words(script)
    assert any(w.retry for w in model.windows)


def test_a_stretched_last_word_is_caught_even_when_no_live_pass_heard_on() -> None:
    """Under load a session may get no live pass over its last words: the closing pass's last
    word, lasting several times its others, gives it away."""
    script = make_script(2, seed=13, words=(8, 8), pause_after=lambda s: 1.5)
    model = stretching(script, live_hear=False)
    run = stream(render(script), model)
    check_events(run)
    assert run.final.text.split() == true_words(script)
    assert any(w.retry for w in model.windows)


@pytest.mark.parametrize(("no_speech", "logprob"), [(0.6, -1.44), (0.15, -1.16)], ids=["silence", "stock"])
def test_a_second_closing_pass_invents_nothing_over_the_tail(no_speech: float, logprob: float) -> None:
    """A second pass over what the first missed keeps every word over speech (the first pass's
    inventions check may be what dropped it), but not what the decoder itself calls silence:
    over a word's tail Whisper says "Thank you." (no_speech_prob 0.6, avg_logprob -1.44 offline;
    0.15 and -1.16 live, in tests/e2e/test_turns.py)."""
    script = make_script(2, seed=13, words=(8, 8), pause_after=lambda s: 1.5)
    model = stretching(script, live_hear=True)

    def thanks_on_a_retry(window: Window) -> list[Segment]:
        if not window.retry:
            return []
        words = (Word(0.0, 0.34, " Thank", 0.0), Word(0.34, 0.34, " you.", 0.97))
        return [Segment(0.0, 0.34, " Thank you.", words, avg_logprob=logprob, no_speech_prob=no_speech)]

    model.extra = thanks_on_a_retry
    run = stream(render(script), model)
    check_events(run)
    assert any(w.retry for w in model.windows)
    assert run.final.text.split() == true_words(script)


