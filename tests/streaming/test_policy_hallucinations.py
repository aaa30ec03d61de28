"""streaming.StreamingPolicy drops what Whisper invents: phrases in silence, loops, words the
VAD did not hear, a prompt continued into a pause — and keeps what was really said."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.support.policy_world import (
    FakeModel,
    Spoken,
    check_final,
    energy_probability,
    make_script,
    render,
    stream,
    true_words,
    words_of,
)
from wirescribe.asr.model import Segment, Word
from wirescribe.audio.vad import FRAME, VoiceActivity
from wirescribe.streaming.policy import SR, StreamingPolicy, Window

# -- hallucinations ----------------------------------------------------------------------------


@dataclass
class Inject:
    """Extra segments the fake model adds wherever a window holds session time ``at``."""

    at: float
    make: Callable[[float], list[Segment]]  # window-relative start -> segments
    margin: float = 0.5  # the window must reach this far past ``at``
    fired: int = 0

    def __call__(self, window: Window) -> list[Segment]:
        t0, t1 = window.start / SR, window.end / SR
        if not t0 <= self.at < t1 - self.margin:
            return []
        self.fired += 1
        return self.make(self.at - t0)


def thank_you(no_speech_prob: float, avg_logprob: float) -> Callable[[float], list[Segment]]:
    def make(s: float) -> list[Segment]:
        words = (Word(s, s + 0.2, " Thank", 0.5), Word(s + 0.2, s + 0.5, " you.", 0.5))
        return [Segment(s, s + 0.5, " Thank you.", words, avg_logprob, no_speech_prob)]

    return make


def ghost(s: float) -> list[Segment]:
    """A confident word where there was no sound."""
    return [Segment(s, s + 0.3, " ghost", (Word(s, s + 0.3, " ghost", 0.9),), -0.2, 0.1)]


def one_window(script: list[Spoken]) -> tuple[StreamingPolicy, Window]:
    """A policy that holds all of ``script`` (ending in speech) and its first window over it."""
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    policy.insert_audio(render(script, tail=0.0))
    window = policy.next_window()
    assert window is not None and not window.final
    assert window.start <= script[0].start * SR and window.end >= script[-1].end * SR - FRAME
    return policy, window


@pytest.mark.parametrize(
    "extra", [thank_you(0.7, -0.5), thank_you(0.1, -1.2), ghost], ids=["thanks", "unsure", "ghost"]
)
def test_inventions_in_silence_are_dropped(extra: Callable[[float], list[Segment]]) -> None:
    """Inside one window: speech, 2 s without a sound, speech. Whatever the model puts in the
    silence is dropped (a known phrase with poor scores, or any word the VAD did not hear)."""
    script = make_script(2, seed=17, words=(5, 5), pause_after=lambda s: 2.0)
    policy, window = one_window(script)
    silence_at = script[4].end + 0.8
    inject = Inject(silence_at, extra)
    update = policy.apply(window, FakeModel(script, extra=inject)(window))
    assert inject.fired == 1
    assert update is not None
    assert words_of(update.text) == true_words(script)


def test_low_confidence_thank_you_over_speech_is_dropped() -> None:
    """A known phrase with a high no-speech probability is dropped even where there is speech."""
    script = make_script(3, seed=18)
    inject = Inject(script[10].start, thank_you(0.7, -0.5))
    run = stream(render(script), FakeModel(script, extra=inject))
    assert inject.fired
    assert "Thank" not in run.final.text
    check_final(run, script)


def test_repetition_loops_are_dropped() -> None:
    script = make_script(2, seed=20)

    def loop(s: float) -> list[Segment]:
        words = tuple(Word(s + 0.1 * i, s + 0.1 * (i + 1), " la", 0.9) for i in range(8))
        return [Segment(s, s + 0.8, " la" * 8, words, compression_ratio=3.1)]

    inject = Inject(script[3].start, loop, margin=1.0)
    run = stream(render(script), FakeModel(script, extra=inject))
    assert inject.fired
    assert "la" not in words_of(run.final.text)


def test_confident_words_over_speech_are_kept() -> None:
    """The filters are not too eager: an extra confident word where there is sound stays."""
    script = make_script(1, seed=19, words=(8, 8))
    policy, window = one_window(script)
    inject = Inject(script[3].start, ghost, margin=0.0)
    update = policy.apply(window, FakeModel(script, extra=inject)(window))
    assert update is not None and "ghost" in words_of(update.text)


def test_a_real_thank_you_is_kept() -> None:
    texts = ["well", "Thank", "you.", "said", "Elinor"]
    script = make_script(1, seed=21, texts=texts)
    run = stream(render(script), FakeModel(script))
    assert run.final.text == "well Thank you. said Elinor"
    only = make_script(1, seed=22, texts=["Thank", "you."])
    run = stream(render(only), FakeModel(only))
    assert run.final.text == "Thank you."


def continued_prompt(s: float) -> list[Segment]:
    """A confident sentence placed in a pause, repeated: the model continuing its prompt."""

    def sentence(t: float) -> Segment:
        texts = (" And", " that's", " what", " he", " said.")
        words = tuple(Word(t + 0.1 * i, t + 0.1 * (i + 1), w, 0.8) for i, w in enumerate(texts))
        return Segment(t, t + 0.5, "".join(texts), words, -0.3, 0.05)

    return [sentence(s), sentence(s + 0.5), sentence(s + 1.0)]


def test_a_sentence_put_in_a_pause_is_dropped() -> None:
    script = make_script(2, seed=23, words=(5, 5), pause_after=lambda s: 2.0)
    policy, window = one_window(script)
    inject = Inject(script[4].end + 0.05, continued_prompt)
    update = policy.apply(window, FakeModel(script, extra=inject)(window))
    assert inject.fired == 1
    assert update is not None
    assert words_of(update.text) == true_words(script)


def test_a_segment_repeated_over_speech_is_dropped_once() -> None:
    """Two identical segments in a row over real sound: the second is a loop, not speech."""
    script = make_script(1, seed=24, words=(10, 10))
    policy, window = one_window(script)

    def twice(s: float) -> list[Segment]:
        return [*ghost(s), *ghost(s + 0.3)]

    update = policy.apply(window, FakeModel(script, extra=Inject(script[3].start, twice, margin=0.0))(window))
    assert update is not None and words_of(update.text).count("ghost") == 1
