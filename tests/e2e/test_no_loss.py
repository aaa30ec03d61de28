"""No word lost on dense speech: a real server, ~40 s of utterances with 0.25–0.9 s gaps streamed
as WebM/Opus in real time with ``events=true``, every reference utterance found in the final text.

The loss this guards against is intermittent (about one run in three lost a whole utterance
before the core was rebuilt), so one run here is a tripwire, not the measurement: the
measurement is ``bench/loss_bench.py`` over many runs.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.support import LiveServer
from tests.support.dense import DenseSpeech, build_dense, clips
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.client import stream, webm_slices
from wirescribe.wer import lost_utterances, word_error_rate

pytestmark = pytest.mark.e2e

SEED = 19  # one fixed stream: 12 clips (LibriVox and prompts, 99 words), 40 s
WER_MARGIN = 0.05  # as test_e2e_stream: streaming greedy windows against one offline beam-5 pass


@pytest.fixture(scope="module")
def dense() -> DenseSpeech:
    return build_dense(clips(), 38.0, seed=SEED)


def offline_wer(speech: DenseSpeech) -> float:
    """One offline pass of the server's own model (the embedded tiny.en, beam 5) over each clip
    on its own, joined in the stream's order: what the model hears in the clips at its best.
    Per clip, not the whole stream: past Whisper's 30 s window its long-form decoding repeats
    and drops sentences, which would make the bound depend on that, not on the server."""
    model = Transcriber.load(ModelConfig())
    heard = {p.clip.name: p.clip for p in speech.placed}  # each clip once
    options = DecodeOptions(language="en", beam_size=5)
    texts = {name: model.transcribe(c.audio, options).text for name, c in heard.items()}
    return word_error_rate(speech.reference, " ".join(texts[p.clip.name] for p in speech.placed))


def test_dense_speech_loses_no_utterance(live_server: LiveServer, dense: DenseSpeech) -> None:
    assert 35 <= dense.seconds <= 45 and len(dense.placed) >= 12
    url = live_server.ws + "?events=true&words=true"
    result = asyncio.run(stream(url, webm_slices(dense.audio), interval=0.25, timeout=120))
    final = result.final
    assert final is not None and result.close_code == 1000, result.errors
    text = final["text"]

    lost = lost_utterances(dense.texts, text)
    assert not lost, (
        "lost utterances:\n"
        + "\n".join(
            f"  #{m.index} at {dense.placed[m.index].seconds[0]:.1f} s: {m.found}/{m.words} words of "
            f"“{m.reference}”; the transcript had there: “{m.between}”"
            for m in lost
        )
        + f"\nfinal: {text}"
    )

    ends = result.of_type("utterance_end")
    assert ends, "no utterance_end on 40 s of speech with pauses"
    assert "".join(e["text"] for e in ends) == text, [e["text"] for e in ends]

    bound = offline_wer(dense) + WER_MARGIN
    live = word_error_rate(dense.reference, text)
    assert live <= bound, f"live WER {live:.3f} > {bound:.3f} (offline + {WER_MARGIN}): {text}"
