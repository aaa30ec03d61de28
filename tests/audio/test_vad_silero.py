"""vad.SileroVad and VoiceActivity on real speech: decisions that do not depend on the blocks.

Silero is recurrent (an LSTM) and reads 64 samples of the frame before each frame. These tests
feed it LibriVox speech with pauses of digital silence and of low noise, cut into 20 ms, 100 ms,
250 ms and uneven pieces, and want the decisions (and, within float tolerance, the
probabilities) of one call over the whole stream, as faster-whisper scores a file.
"""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.support import librivox_utterances
from wirescribe.audio.decode import decode_file
from wirescribe.audio.vad import FRAME, SileroVad, VadOptions, VoiceActivity, silero_probability


def flags(v: VoiceActivity, n: int) -> list[bool]:
    """Per-frame speech flags through the public API (needs ``min_speech`` of one frame or less)."""
    return [v.has_speech(k * FRAME, (k + 1) * FRAME) for k in range(n)]


def cut(audio: np.ndarray, sizes: list[int] | str, rng: np.random.Generator) -> list[np.ndarray]:
    """``audio`` in pieces of ``sizes`` (cycled), or at 30 random places (``"random"``)."""
    if sizes == "random":
        return np.split(audio, np.sort(rng.choice(np.arange(1, len(audio)), 30, replace=False)))
    assert isinstance(sizes, list)
    pieces, i, k = [], 0, 0
    while i < len(audio):
        pieces.append(audio[i : i + sizes[k % len(sizes)]])
        i, k = i + sizes[k % len(sizes)], k + 1
    return pieces


SR = 16000
PAUSES = (("silence", 0.7), ("noise", 0.9), ("silence", 0.35), ("noise", 0.5))


@pytest.fixture(scope="module")
def silero() -> SileroVad:
    return silero_probability()


@pytest.fixture(scope="module")
def stream() -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Four LibriVox utterances, each followed by a pause of digital silence or of low noise
    (about -50 dBFS), whole frames only; and each pause's ``[start, end)`` in samples."""
    rng = np.random.default_rng(19)
    parts, pauses, at = [], [], 0
    for u, (kind, seconds) in zip(librivox_utterances(), PAUSES, strict=False):
        speech = decode_file(u.wav)
        n = int(seconds * SR)
        pause = (
            np.zeros(n, np.float32)
            if kind == "silence"
            else rng.standard_normal(n).astype(np.float32) * 0.003
        )
        parts += [speech, pause]
        at += len(speech)
        pauses.append((at, at + n))
        at += n
    audio = np.concatenate(parts)
    return audio[: len(audio) // FRAME * FRAME], pauses


def test_silero_gets_the_rows_faster_whisper_gives_it(
    silero: SileroVad, stream: tuple[np.ndarray, list[tuple[int, int]]]
) -> None:
    """One call over the stream gives faster-whisper's own probabilities (64 samples of context
    before each frame, zeros before the first); the stream has speech, and pauses without."""
    from faster_whisper.vad import get_vad_model

    audio, pauses = stream
    model = get_vad_model()
    theirs = np.asarray(model(audio if hasattr(model, "session") else audio[None])).reshape(-1)
    ours = silero(audio)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    for start, end in pauses:  # the pause's second half, once the speech has faded
        assert (ours[(start + end) // 2 // FRAME : end // FRAME] < 0.35).all()
    assert (ours >= 0.5).mean() > 0.6


@pytest.mark.parametrize(
    "sizes", [[320], [1600], [4000], [1, 511, 513, 7000, 320, 4001, 2], "random"], ids=str
)
def test_block_size_does_not_change_silero_decisions(
    silero: SileroVad, stream: tuple[np.ndarray, list[tuple[int, int]]], sizes: list[int] | str
) -> None:
    """20 ms, 100 ms, 250 ms and uneven pieces, scored in a worker thread as a live session does:
    the flags of one push of the whole stream, the probabilities of one call over it."""
    audio, _ = stream
    n = len(audio) // FRAME
    whole = VoiceActivity(silero, VadOptions(min_speech=0))
    whole.push(audio)
    live = VoiceActivity(silero, VadOptions(min_speech=0))
    probs = []
    with ThreadPoolExecutor(1, thread_name_prefix="vad") as pool:
        for piece in cut(audio, sizes, np.random.default_rng(7)):
            scored = pool.submit(live.score, live.frame(piece)).result()
            probs.append(scored.probabilities)
            live.accept(scored)
    assert live.frames_end == whole.frames_end == n * FRAME
    assert flags(live, n) == flags(whole, n)
    np.testing.assert_allclose(np.concatenate(probs), silero(audio), atol=1e-5)


def test_a_fresh_state_per_block_would_depend_on_the_split(
    silero: SileroVad, stream: tuple[np.ndarray, list[tuple[int, int]]]
) -> None:
    """What the carried state fixes: the model called afresh on every block (faster-whisper's
    ``__call__``) flags tens of frames of this stream otherwise than one call over it."""
    audio, _ = stream
    n = len(audio) // FRAME
    reference = VoiceActivity(silero, VadOptions(min_speech=0))
    reference.push(audio)
    for size in (1600, 4000):
        afresh = VoiceActivity(lambda a: silero(a), VadOptions(min_speech=0))  # a plain function: no state
        for piece in cut(audio, [size], np.random.default_rng(0)):
            afresh.push(piece)
        differ = sum(a != b for a, b in zip(flags(afresh, n), flags(reference, n), strict=True))
        assert differ > 10, size


def test_sessions_sharing_one_model_keep_their_own_state(
    silero: SileroVad, stream: tuple[np.ndarray, list[tuple[int, int]]]
) -> None:
    """Two sessions on one model, scored at the same time in two threads: each gets the flags it
    gets alone (the state travels with each session's frames, not in the model)."""
    audio, _ = stream
    other = np.roll(audio, len(audio) // 3)
    n = len(audio) // FRAME
    alone = [VoiceActivity(silero, VadOptions(min_speech=0)) for _ in range(2)]
    alone[0].push(audio)
    alone[1].push(other)
    live = [VoiceActivity(silero, VadOptions(min_speech=0)) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        for k in range(0, len(audio), 1600):
            jobs = [
                (v, pool.submit(v.score, v.frame(a[k : k + 1600])))
                for v, a in zip(live, (audio, other), strict=True)
            ]
            for v, job in jobs:
                v.accept(job.result())
    assert flags(live[0], n) == flags(alone[0], n)
    assert flags(live[1], n) == flags(alone[1], n)


def test_silero_state_is_small_and_memory_stays_bounded(
    silero: SileroVad, stream: tuple[np.ndarray, list[tuple[int, int]]]
) -> None:
    """A session keeps ~1 KiB of model state, whatever it has heard; a large push leaves nothing
    of itself behind; with ``discard_before`` the flags stay within the window."""
    audio, _ = stream
    v = VoiceActivity(silero)
    first = v.frame(np.zeros(0, np.float32)).state
    tracemalloc.start()
    try:
        v.push(np.concatenate([audio, audio[:300]]))  # ~24 s at once, with a partial frame left
        held = tracemalloc.get_traced_memory()[0]
        for _ in range(3):
            for k in range(0, len(audio), 1600):
                v.push(audio[k : k + 1600])
                v.discard_before(v.frames_end - SR)
        grown = tracemalloc.get_traced_memory()[0] - held
    finally:
        tracemalloc.stop()
    assert held < 64 << 10  # the 1.5 MiB pushed is not kept alive by the pending samples or the state
    assert grown < 16 << 10
    last = v.frame(np.zeros(0, np.float32)).state
    assert first.nbytes == last.nbytes <= 2 << 10
    assert v.frames_end - v.frames_start <= SR + FRAME
