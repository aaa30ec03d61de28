"""The policy on its growable buffer: windows keep their audio, scores may come from a thread."""

from __future__ import annotations

import numpy as np

from tests.support.policy_world import FakeModel, Spoken, energy_probability, make_script, render, stream
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import SR, StreamingOptions, StreamingPolicy, Update, Window


def test_windows_keep_their_audio_while_the_session_goes_on() -> None:
    """A window is a view of the buffer, read by the model's thread while the loop appends and
    cuts: it must still hold the audio it was cut from when the session is over."""
    script = make_script(12, seed=3, pause_after=lambda s: 1.5 if s % 3 == 2 else 0.25)
    audio = render(script)
    result = stream(audio, FakeModel(script), options=StreamingOptions(max_window=8.0))
    windows = result.model.windows
    assert len(windows) > 20 and max(w.start for w in windows) > 8 * SR  # the buffer was cut
    for w in windows:
        assert np.array_equal(w.audio, audio[w.start : w.end])
        assert not w.audio.flags.writeable


def drive(policy: StreamingPolicy, audio: np.ndarray, script: list[Spoken], *, scored: bool) -> list[Update]:
    """As policy_world.stream, inserting the blocks with scores computed apart (as the live
    session does in a worker thread) or in place."""
    model = FakeModel(script)
    updates: list[Update] = []

    def step(window: Window | None) -> None:
        if window is not None and (update := policy.apply(window, model(window))) is not None:
            updates.append(update)

    for k in range(0, len(audio), 4000):
        block = audio[k : k + 4000]
        policy.insert_audio(block, policy.vad.score(policy.vad.frame(block)) if scored else None)
        step(policy.next_window())
    policy.drain(CloseReason.EOF, model)
    return updates


def test_scores_computed_apart_give_the_same_transcript() -> None:
    script = make_script(6, seed=8)
    audio = render(script)
    apart = StreamingPolicy(VoiceActivity(energy_probability), language="en")
    in_place = StreamingPolicy(VoiceActivity(energy_probability), language="en")
    assert drive(apart, audio, script, scored=True) == drive(in_place, audio, script, scored=False)
    assert apart.finish() == in_place.finish()
    assert apart.finish().text.split() == [w.text for w in script]
