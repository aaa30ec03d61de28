"""The languages a loaded model offers are those its tokenizer can be told: tiny.en only English;
base the 99 of its config, not the 100 faster-whisper lists for any multilingual model (a session
asked for ``yue`` on base decoded Spanish as "The The The…")."""

from __future__ import annotations

from wirescribe.asr.base_model import base_model_dir
from wirescribe.asr.config import ModelConfig
from wirescribe.asr.model import Transcriber


def test_tiny_en_speaks_english_only() -> None:
    assert Transcriber.load(ModelConfig()).supported_languages == ["en"]


def test_base_offers_only_the_languages_its_tokenizer_has() -> None:
    base = Transcriber.load(ModelConfig(model=str(base_model_dir())))
    languages = base.supported_languages
    assert len(languages) == 99 and "yue" not in languages
    assert {"en", "es", "fr", "de", "ja", "sv", "zh"} <= set(languages)
