"""The streaming policy with the real model (tiny.en) on dense real speech, on a simulated clock
where every model call takes 0.8 s (a loaded server): audio that arrives while the model works is
in the session before its result, as in the server. Gaps between utterances are 0.25–0.9 s, so
some start a closing pass that the speech then interrupts."""

from __future__ import annotations

import difflib

import numpy as np
import pytest

from tests.support import Utterance
from wirescribe.asr.model import ModelConfig, Transcriber
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.audio.vad import VoiceActivity, silero_probability
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import StreamingPolicy
from wirescribe.streaming.session import live_decode_options
from wirescribe.wer import normalize_words

pytestmark = pytest.mark.e2e  # the real model

CALL = 0.8  # seconds each model call takes on the simulated clock
SLICE = 0.25


def dense(utterances: list[Utterance], gaps: list[float]) -> tuple[np.ndarray, str]:
    parts: list[np.ndarray] = []
    for u, gap in zip(utterances * 2, gaps, strict=False):
        parts += [decode_file(u.wav), np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)]
    return np.concatenate(parts), " ".join(u.text for u in (utterances * 2)[: len(gaps)])


def run_slowly(model: Transcriber, audio: np.ndarray) -> str:
    policy = StreamingPolicy(VoiceActivity(silero_probability()), language="en")
    step, fed, clock = int(SLICE * SAMPLE_RATE), 0, 0.0

    def arrive(until: float) -> None:
        nonlocal fed
        while fed < len(audio) and fed + step <= until * SAMPLE_RATE + 1:
            policy.insert_audio(audio[fed : fed + step])
            policy.settle()
            fed += step

    while fed < len(audio):
        arrive(clock)
        window = policy.next_window()
        if window is None:
            clock = max(clock, (fed + step) / SAMPLE_RATE)
            continue
        result = model.transcribe(window.audio, live_decode_options(window, "en", 8.0))
        clock += CALL
        arrive(clock)  # what the decoder delivered while the model worked
        policy.apply(window, result)
    policy.drain(CloseReason.EOF, lambda w: model.transcribe(w.audio, live_decode_options(w, "en", 8.0)))
    return policy.finish().text


def test_a_loaded_server_loses_no_words_around_short_gaps(utterances: list[Utterance]) -> None:
    """Before: a closing pass cut at a 0.5-0.8 s gap and interrupted by the next words became a
    mere tentative update, and "do for them. He was" never reached the transcript."""
    rng = np.random.default_rng(0)
    audio, reference = dense(utterances, [float(rng.uniform(0.5, 0.75)) for _ in range(7)])
    text = run_slowly(Transcriber.load(ModelConfig()), audio)
    ref, hyp = normalize_words(reference), normalize_words(text)
    lost = [
        " ".join(ref[i1:i2])
        for tag, i1, i2, _, _ in difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_opcodes()
        if tag == "delete" and i2 - i1 >= 2
    ]
    assert lost == [], text
