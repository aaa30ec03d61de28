"""The end of input and results that change nothing, against the scripted world
(``policy_world.py``): what ``eof`` commits, a stream cut inside its last word, and an update
only when the text changed."""

from __future__ import annotations

import numpy as np

from tests.support.policy_world import (
    GARBLED,
    FakeModel,
    energy_probability,
    make_script,
    render,
    stream,
    true_words,
    words_of,
)
from wirescribe.asr.types import Transcript
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import SR, StreamingPolicy, Window


def test_eof_right_after_an_update_commits_the_last_hypothesis() -> None:
    script = make_script(1, seed=25, words=(6, 6))
    audio = render(script, tail=0.3)  # eof before the pause would end the utterance
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    model = FakeModel(script)
    policy.insert_audio(audio)
    window = policy.next_window()
    assert window is not None
    update = policy.apply(window, model(window))
    assert update is not None and update.committed == ""
    policy.drain(CloseReason.EOF, model)  # the closing pass hears it all again
    assert words_of(policy.finish().text) == true_words(script)


def test_eof_mid_word_hears_the_rest() -> None:
    """The stream stops inside its last word: every word whose larger part was sent is final."""
    missing = []
    for seed in (30, 31, 32, 33):
        script = make_script(1, seed=seed, words=(10, 10))
        full = render(script, tail=0)
        last = script[-1]
        for dt in np.arange(0.0, last.end - last.start, 0.04):
            end = last.start + dt
            audible = [w.text for w in script if (w.start + w.end) / 2 < end]
            run = stream(full[: int(end * SR)], FakeModel(script))
            got = [w.removesuffix(GARBLED) for w in words_of(run.final.text)]
            if got != audible:
                missing.append((seed, round(float(dt), 2), audible[len(got) :]))
    assert not missing


def test_apply_without_change_returns_none() -> None:
    """A result that changes neither the committed text nor the tentative one gives no update:
    None. (Whether an empty result first clears the tentative words is the policy's choice; it
    never takes back a commit.)"""
    script = make_script(1, seed=26, words=(6, 6))
    audio = render(script, tail=0.0)
    policy = StreamingPolicy(VoiceActivity(energy_probability))
    model = FakeModel(script)
    sent = 0

    def send_until(seconds: float) -> Window | None:
        nonlocal sent
        policy.insert_audio(audio[sent : int(seconds * SR)])
        sent = int(seconds * SR)
        return policy.next_window()

    for seconds in (1.5, 1.9):  # two hypotheses agree on the first word: it is committed
        window = send_until(seconds)
        assert window is not None
        assert policy.apply(window, model(window)) is not None
    committed = policy.current().committed
    assert committed == "w0"
    assert send_until(2.0) is None  # less than min_new_audio of new audio
    empty = Transcript((), "en", 0.0)  # the model heard nothing
    for seconds in (2.3, 2.7):
        window = send_until(seconds)
        assert window is not None
        update = policy.apply(window, empty)
        assert policy.current().committed == committed
    assert update is None  # the second empty result changed nothing
