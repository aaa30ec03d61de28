"""vad.VoiceActivity with a scripted probability function (no Silero model: see test_vad_silero.py).

The fake reads each frame's probability from the audio itself: every sample of frame ``k`` holds
``probs[k]``, and the fake returns each frame's mean. So any way of pushing the audio must give
the same flags, and the fake can check that each call gets whole frames with the right context.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from wirescribe.audio.vad import FRAME, VadOptions, VadOrderError, VoiceActivity


class ScriptedProbability:
    """A ProbabilityFn that also checks how it is called."""

    def __init__(self) -> None:
        self.calls = 0
        self.previous_frame = np.zeros(FRAME, dtype=np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        self.calls += 1
        assert audio.ndim == 1 and len(audio) % FRAME == 0 and len(audio) >= 2 * FRAME
        assert np.array_equal(audio[:FRAME], self.previous_frame), "context is not the previous frame"
        self.previous_frame = audio[-FRAME:].copy()
        return audio.reshape(-1, FRAME).mean(axis=1)


def frames(probs: list[float] | np.ndarray) -> np.ndarray:
    """Audio whose frame ``k`` makes the fake report ``probs[k]``."""
    return np.repeat(np.asarray(probs, dtype=np.float32), FRAME)


def vad(min_speech: float = 0.1, threshold: float = 0.5, neg: float = 0.35) -> VoiceActivity:
    return VoiceActivity(ScriptedProbability(), VadOptions(threshold, neg, min_speech))


def flags(v: VoiceActivity, n: int) -> list[bool]:
    """Per-frame speech flags through the public API (needs ``min_speech`` of one frame or less)."""
    return [v.has_speech(k * FRAME, (k + 1) * FRAME) for k in range(n)]


def test_hysteresis_thresholds() -> None:
    probs = [0.4, 0.49, 0.5, 0.4, 0.36, 0.351, 0.34, 0.45, 0.49, 0.9, 0.2, 0.5]
    want = [False, False, True, True, True, True, False, False, False, True, False, True]
    v = vad(min_speech=0)
    v.push(frames(probs))
    assert flags(v, len(probs)) == want
    assert v.frames_end == len(probs) * FRAME


def test_custom_thresholds() -> None:
    # values exact in binary, so "at the threshold" is tested exactly
    v = vad(min_speech=0, threshold=0.75, neg=0.25)
    v.push(frames([0.7, 0.75, 0.3, 0.25, 0.2, 0.74]))
    assert flags(v, 6) == [False, True, True, True, False, False]


def test_hysteresis_state_carries_across_pushes() -> None:
    v = vad(min_speech=0)
    v.push(frames([0.6]))
    v.push(frames([0.4]))  # below threshold, above neg_threshold: still speech
    v.push(frames([0.3, 0.4]))
    assert flags(v, 4) == [True, True, False, False]


def test_short_bursts_are_not_speech() -> None:
    # min_speech 0.1 s = 3.125 frames of 32 ms -> 3 frames
    probs = np.zeros(60)
    probs[5:7] = 0.9  # 2 frames: a click
    probs[20:23] = 0.9  # 3 frames: just long enough
    probs[40] = 0.9  # 1 frame
    probs[50:55] = 0.9
    v = vad()
    v.push(frames(probs))
    assert v.speech_bounds(0, 60 * FRAME) == (20 * FRAME, 55 * FRAME)
    assert v.speech_bounds(0, 19 * FRAME) is None  # only the click
    assert not v.has_speech(0, 19 * FRAME)
    assert v.speech_bounds(30 * FRAME, 45 * FRAME) is None
    assert v.speech_bounds(18 * FRAME, 30 * FRAME) == (20 * FRAME, 23 * FRAME)


def test_longer_min_speech() -> None:
    probs = np.zeros(40)
    probs[2:12] = 0.9  # 10 frames = 0.32 s
    probs[20:36] = 0.9  # 16 frames = 0.51 s
    v = vad(min_speech=0.5)
    v.push(frames(probs))
    assert v.speech_bounds(0, 40 * FRAME) == (20 * FRAME, 36 * FRAME)


def test_speech_bounds_over_ranges() -> None:
    probs = np.zeros(100)
    probs[10:20] = 0.9
    probs[30:33] = 0.9
    probs[60:80] = 0.9
    v = vad()
    v.push(frames(probs))
    assert v.speech_bounds(0, 100 * FRAME) == (10 * FRAME, 80 * FRAME)
    assert v.speech_bounds(0, 25 * FRAME) == (10 * FRAME, 20 * FRAME)
    assert v.speech_bounds(21 * FRAME, 59 * FRAME) == (30 * FRAME, 33 * FRAME)
    assert v.speech_bounds(81 * FRAME, 100 * FRAME) is None
    # ranges that do not sit on frame boundaries cover every frame they touch
    assert v.speech_bounds(10 * FRAME + 100, 20 * FRAME - 100) == (10 * FRAME, 20 * FRAME)
    assert v.speech_bounds(15 * FRAME + 7, 65 * FRAME + 3) is not None
    # empty, reversed and out-of-range ranges
    assert v.speech_bounds(50 * FRAME, 50 * FRAME) is None
    assert v.speech_bounds(70 * FRAME, 10 * FRAME) is None
    assert v.speech_bounds(200 * FRAME, 300 * FRAME) is None
    assert v.speech_bounds(-5 * FRAME, 15 * FRAME) == (10 * FRAME, 15 * FRAME)
    assert v.speech_bounds(0, 10**9) == (10 * FRAME, 80 * FRAME)


def test_speech_until_the_end() -> None:
    v = vad()
    v.push(frames([0.0] * 5 + [0.9] * 5))
    assert v.speech_bounds(0, v.frames_end) == (5 * FRAME, 10 * FRAME)


def test_discard_before_keeps_absolute_indices() -> None:
    probs = np.zeros(100)
    probs[10:20] = 0.9
    probs[50:60] = 0.9
    v = vad()
    v.push(frames(probs))
    v.discard_before(40 * FRAME + 100)
    assert v.frames_end == 100 * FRAME
    assert v.speech_bounds(0, 100 * FRAME) == (50 * FRAME, 60 * FRAME)
    assert v.speech_bounds(0, 40 * FRAME) is None  # forgotten
    v.discard_before(10 * FRAME)  # going back is a no-op
    assert v.speech_bounds(0, 100 * FRAME) == (50 * FRAME, 60 * FRAME)
    v.discard_before(55 * FRAME)
    assert v.speech_bounds(0, 100 * FRAME) == (55 * FRAME, 60 * FRAME)

    more = np.zeros(50)
    more[20:30] = 0.9  # frames 120..129
    v.push(frames(more))
    assert v.frames_end == 150 * FRAME
    assert v.speech_bounds(60 * FRAME, 150 * FRAME) == (120 * FRAME, 130 * FRAME)


def test_discard_past_the_end_then_continue() -> None:
    v = vad()
    v.push(frames([0.9] * 10))
    v.discard_before(10**6)
    assert v.frames_end == 10 * FRAME  # nothing classified is left, the clock stays
    assert v.speech_bounds(0, 10**6) is None
    v.push(frames([0.9] * 4))
    assert v.speech_bounds(0, 10**6) == (10 * FRAME, 14 * FRAME)


def test_discard_bounds_memory() -> None:
    v = vad()
    for _ in range(200):
        v.push(frames(np.full(31, 0.9)))  # about 1 s at a time
        v.discard_before(v.frames_end - 16000)
    assert v.frames_end == 200 * 31 * FRAME
    assert v.frames_end - v.frames_start <= 16000 + FRAME


@pytest.mark.parametrize(
    "sizes",
    [[1], [511], [513], [FRAME], [1000, 3, 7000, 1], [2 * FRAME + 1, FRAME - 1], "random"],
    ids=str,
)
def test_pushes_of_odd_sizes_give_the_same_flags(sizes: list[int] | str) -> None:
    rng = np.random.default_rng(5)
    probs = rng.choice([0.1, 0.4, 0.6, 0.95], size=80)
    audio = frames(probs)
    whole = vad(min_speech=0)
    whole.push(audio)
    pieces: list[np.ndarray]
    if sizes == "random":
        pieces = np.split(audio, np.sort(rng.choice(np.arange(1, len(audio)), 30, replace=False)))
    else:
        assert isinstance(sizes, list)
        pieces, i, k = [], 0, 0
        while i < len(audio):
            pieces.append(audio[i : i + sizes[k % len(sizes)]])
            i, k = i + sizes[k % len(sizes)], k + 1
    split = vad(min_speech=0)
    for piece in pieces:
        split.push(piece)
    assert split.frames_end == whole.frames_end == 80 * FRAME
    assert flags(split, 80) == flags(whole, 80)


def test_partial_frames_wait_for_more_audio() -> None:
    fake = ScriptedProbability()
    v = VoiceActivity(fake)
    v.push(np.full(FRAME - 1, 0.9, dtype=np.float32))
    assert fake.calls == 0 and v.frames_end == 0
    v.push(np.full(2, 0.9, dtype=np.float32))
    assert fake.calls == 1 and v.frames_end == FRAME
    v.push(np.zeros(0, dtype=np.float32))
    assert fake.calls == 1


def test_int_audio_is_accepted_as_float() -> None:
    v = vad(min_speech=0)
    v.push(np.ones(4 * FRAME, dtype=np.int16))  # probability 1.0 per frame
    assert flags(v, 4) == [True] * 4


def test_frame_score_accept_is_push_in_three_steps() -> None:
    """The live session's way: frame on the loop, score in a thread, accept on the loop."""
    rng = np.random.default_rng(9)
    audio = frames(rng.choice([0.1, 0.4, 0.6, 0.95], size=60))
    whole, split = vad(min_speech=0), vad(min_speech=0)
    for k in range(0, len(audio), 1600):
        whole.push(audio[k : k + 1600])
        f = split.frame(audio[k : k + 1600])
        split.accept(split.score(f))
    assert split.frames_end == whole.frames_end == 60 * FRAME
    assert flags(split, 60) == flags(whole, 60)


def test_frame_and_score_change_nothing() -> None:
    v = vad(min_speech=0)
    f = v.frame(frames([0.9, 0.9, 0.9]))
    scored = v.score(f)
    assert f.count == 3 and scored.probabilities.tolist() == pytest.approx([0.9] * 3)
    assert v.frames_end == 0 and not v.has_speech(0, 10**6)
    v.accept(scored)
    assert v.frames_end == 3 * FRAME and v.has_speech(0, 3 * FRAME)


def test_a_block_short_of_a_frame_is_scored_without_the_model() -> None:
    fake = ScriptedProbability()
    v = VoiceActivity(fake)
    f = v.frame(np.full(100, 0.9, dtype=np.float32))
    assert f.count == 0
    v.accept(v.score(f))
    assert fake.calls == 0 and v.frames_end == 0
    v.push(np.full(FRAME - 100, 0.9, dtype=np.float32))  # the 100 samples were kept
    assert fake.calls == 1 and v.frames_end == FRAME


def test_frames_accepted_out_of_order_are_refused() -> None:
    v = VoiceActivity(lambda audio: audio.reshape(-1, FRAME).mean(axis=1), VadOptions(min_speech=0))
    first = v.frame(frames([0.9]))
    second = v.frame(frames([0.1]))  # made before the first was accepted: same seq
    v.accept(v.score(first))
    with pytest.raises(VadOrderError):
        v.accept(v.score(second))
    with pytest.raises(VadOrderError):
        v.accept(v.score(first))  # twice
    assert v.frames_end == FRAME


def test_scoring_runs_in_any_thread() -> None:
    seen: list[str] = []

    def probability(audio: np.ndarray) -> np.ndarray:
        seen.append(threading.current_thread().name)
        return np.full(len(audio) // FRAME, 0.9, dtype=np.float32)

    v = VoiceActivity(probability, VadOptions(min_speech=0))
    with ThreadPoolExecutor(1, thread_name_prefix="vad") as pool:
        for _ in range(3):
            v.accept(pool.submit(v.score, v.frame(np.zeros(1600, dtype=np.float32))).result())
    assert seen and all(name.startswith("vad") for name in seen)
    assert v.frames_end == 4800 // FRAME * FRAME and v.has_speech(0, v.frames_end)


class CountingScorer:
    """A FrameScorer whose state is every frame's first sample so far, so the state shows
    whether each frame advanced it once and in order."""

    def initial_state(self) -> tuple[float, ...]:
        return ()

    def score_frames(
        self, audio: np.ndarray, state: tuple[float, ...]
    ) -> tuple[np.ndarray, tuple[float, ...]]:
        firsts = tuple(audio.reshape(-1, FRAME)[:, 0].tolist())
        return np.full(len(firsts), 0.9, dtype=np.float32), state + firsts


def test_a_scorer_state_advances_once_per_frame_in_order() -> None:
    """Frames cut on the caller's thread, scored in another, accepted in order: the state each
    Frames carries is the one after every frame before it; frames refused stay unscored."""
    audio = np.arange(40 * FRAME, dtype=np.float32)  # frame k starts with k * FRAME
    v = VoiceActivity(CountingScorer(), VadOptions(min_speech=0))
    with ThreadPoolExecutor(1, thread_name_prefix="vad") as pool:
        for piece in np.split(audio, [100, 1700, 1701, 5000, 9000, 15000]):
            made = v.frame(piece)
            assert made.state == tuple(range(0, v.frames_end, FRAME))
            v.accept(pool.submit(v.score, made).result())
    stale = v.frame(audio[:FRAME])
    v.accept(v.score(v.frame(audio[FRAME : 2 * FRAME])))
    with pytest.raises(VadOrderError):
        v.accept(v.score(stale))
    assert v.frame(np.zeros(0, np.float32)).state == (*range(0, 40 * FRAME, FRAME), FRAME)
