"""End to end in other languages: a real server with the multilingual ``base`` model beside
``tiny.en``, real read speech in Spanish, Japanese and Swedish (tests/data/multilingual), WebM
at real-time pace.

The bar for a live stream is the same model's offline pass over the same audio (beam 5, the
whole recording at once): the live text's error rate against the reference may be at most
``LIVE_MARGIN`` above the offline pass's (live windows see less context than a whole file).
``language=auto`` must detect the right language on every stream, say so once in a
``language`` message, and carry it in ``utterance_end`` and ``final``. A live translation must
stay within ``TRANSLATION_DISTANCE`` (word error rate between the two English texts) of the
offline translate pass."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import LiveServer, start_server, stop_server
from tests.support.language_speech import SAMPLES, error_rate, language_sample, metric
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e

# Live error rate at most this much above the offline pass's: live words are committed from
# greedy passes over a short context before the closing pass, and base is weak in Swedish. The
# gaps seen: Swedish +0.15, +0.17; Spanish +0.02, +0.07 and once +0.20 (0.34 against 0.14, in a
# full-suite run: "La sorpresa y la sorpresa, el asombro", a phrase heard twice by greedy passes
# that agreed); Japanese 0. A broken live path (wrong language, lost or doubled utterances) is
# far past this; the gap itself is a known weakness of live base (README, Languages).
LIVE_MARGIN = 0.25
TRANSLATION_DISTANCE = 0.5  # WER of the live translation against the offline one, at most


@pytest.fixture(scope="module")
def multilingual_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("languages"),
        env={"STT_MODELS": "base", "STT_ADMISSION": "fixed", "STT_MAX_SESSIONS_PER_CLIENT": "0"},
        timeout=120,
    )
    yield server
    stop_server(server)


@pytest.fixture(scope="module")
def base() -> Transcriber:
    return Transcriber.load(ModelConfig(model="base"))


@pytest.fixture(scope="module")
def samples() -> dict[str, tuple[np.ndarray, str]]:
    return {language: language_sample(language) for language in SAMPLES}


def live(server: LiveServer, query: str, audio: np.ndarray) -> StreamResult:
    result = asyncio.run(stream(f"{server.ws}?{query}", webm_slices(audio), interval=0.25, timeout=180))
    assert result.close_code == 1000 and result.final is not None, result.errors
    return result


@pytest.mark.parametrize("language", list(SAMPLES))
def test_live_auto_detects_and_transcribes_like_an_offline_pass(
    multilingual_server: LiveServer,
    base: Transcriber,
    samples: dict[str, tuple[np.ndarray, str]],
    language: str,
) -> None:
    audio, reference = samples[language]
    result = live(multilingual_server, "model=base&language=auto&events=true", audio)
    ready = result.messages[0].message
    assert (ready["model"], ready["language"]) == ("base", None)
    told = result.of_type("language")
    assert [m["language"] for m in told] == [language]  # once, and right
    kinds = [m.message["type"] for m in result.messages]
    first_words = next(i for i, m in enumerate(result.messages) if m.message.get("committed"))
    assert kinds.index("language") < first_words  # before the words it was heard in
    ends = result.of_type("utterance_end")
    assert ends and all(e["language"] == language for e in ends)
    assert result.final is not None and result.final["language"] == language
    offline = base.transcribe(audio, DecodeOptions(beam_size=5))
    assert offline.language == language
    live_rate = error_rate(language, reference, result.final["text"])
    offline_rate = error_rate(language, reference, offline.text)
    print(f"{language}: live {metric(language)} {live_rate:.3f}, offline {offline_rate:.3f}")
    assert live_rate <= offline_rate + LIVE_MARGIN, (result.final["text"], offline.text)


def test_live_translation_is_close_to_an_offline_translate_pass(
    multilingual_server: LiveServer, base: Transcriber, samples: dict[str, tuple[np.ndarray, str]]
) -> None:
    audio, _ = samples["es"]
    result = live(multilingual_server, "model=base&language=es&task=translate&events=true", audio)
    assert result.messages[0].message["task"] == "translate"
    assert not result.of_type("language")  # the language was given: nothing to detect
    assert result.final is not None
    offline = base.transcribe(audio, DecodeOptions(beam_size=5, language="es", task="translate")).text
    distance = word_error_rate(offline, result.final["text"])
    print(f"translation: live {result.final['text']!r}, offline {offline!r}, distance {distance:.3f}")
    assert distance <= TRANSLATION_DISTANCE
    spanish = base.transcribe(audio, DecodeOptions(beam_size=5, language="es")).text
    # English, not the Spanish again: nearer the offline translation than the transcript (base
    # sometimes transcribes a window's tail instead of translating it, live and offline alike).
    assert distance < word_error_rate(spanish, result.final["text"])


def test_english_sessions_keep_tiny_en_beside_base(multilingual_server: LiveServer, tmp_path: Path) -> None:
    audio, _ = language_sample("es")
    refused = asyncio.run(stream(f"{multilingual_server.ws}?language=es", webm_slices(audio[:16000])))
    assert refused.errors and "speaks English only" in refused.errors[0]["message"]
    assert refused.close_code == 1008
