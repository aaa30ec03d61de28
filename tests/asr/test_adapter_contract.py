"""What the adapter relies on in faster-whisper and CTranslate2 is still there (fails loudly on an
upgrade that moves it), the adapter is the only module that reaches in, and its pure parts:
context lengths, prompt sharing, feature fitting, language detection's parsing."""

from __future__ import annotations

import ast
import importlib
import inspect
from importlib.metadata import version
from pathlib import Path
from typing import Any

import ctranslate2
import numpy as np
import pytest
from faster_whisper import WhisperModel

from tests.support import ROOT
from wirescribe.asr import pins
from wirescribe.asr.adapter import DecodeRules, WhisperAdapter
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.asr.windows import FULL_FRAMES, Window, context_frames, fit, prompt_batches

# Modules that may import faster_whisper or ctranslate2, and why.
ALLOWED_IMPORTERS = {
    "wirescribe/asr/adapter.py": "the adapter: every decode",
    "wirescribe/asr/model.py": "loading the model (WhisperModel)",
    "wirescribe/asr/config.py": "counting CUDA devices for device auto, imported when called",
    "wirescribe/audio/vad.py": "faster-whisper's bundled Silero VAD model (get_vad_model), not the decoder",
    "wirescribe/asr/turn_model.py": "the log-mel FeatureExtractor for the end-of-turn model",
}


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


@pytest.mark.parametrize("package", sorted(pins.TESTED_VERSIONS))
def test_the_installed_versions_are_the_tested_ones(package: str) -> None:
    lowest, below = pins.TESTED_VERSIONS[package]
    installed = version(package)
    assert _release(lowest) <= _release(installed) < _release(below), (
        f"{package} {installed} is outside the range the adapter was tested with [{lowest}, {below}): "
        "check wirescribe/asr/adapter.py against the new version, then update wirescribe/asr/pins.py"
    )


def _resolve(name: str) -> Any:
    owners = {
        "WhisperModel": WhisperModel,
        "Tokenizer": importlib.import_module("faster_whisper.tokenizer").Tokenizer,
        "FeatureExtractor": importlib.import_module("faster_whisper.feature_extractor").FeatureExtractor,
    }
    owner, _, attribute = name.partition(".")
    if attribute:
        return getattr(owners[owner], attribute)
    return getattr(importlib.import_module("faster_whisper.transcribe"), name)


@pytest.mark.parametrize("name", sorted(pins.RELIES_ON))
def test_faster_whisper_still_has_what_the_adapter_calls(name: str) -> None:
    """Each function exists and takes the parameters the adapter passes, in that order (some are
    passed by position)."""
    parameters = [p for p in inspect.signature(_resolve(name)).parameters if p != "self"]
    expected = list(pins.RELIES_ON[name])
    assert parameters[: len(expected)] == expected, f"faster_whisper {name}{parameters}"


def test_ctranslate2_still_has_what_the_adapter_calls() -> None:
    """CTranslate2's methods are compiled: their signatures are read from the docstrings."""
    for name, keywords in pins.CTRANSLATE2_RELIES_ON.items():
        owner, method = name.split(".")
        doc = getattr(getattr(ctranslate2.models, owner), method).__doc__ or ""
        signature = doc.splitlines()[0]
        missing = [k for k in keywords if f"{k}:" not in signature]
        assert not missing, f"ctranslate2.models.{name} lost {missing}: {signature}"
    for owner, attributes in pins.CTRANSLATE2_ATTRIBUTES.items():
        for attribute in attributes:
            assert hasattr(getattr(ctranslate2.models, owner), attribute), f"{owner}.{attribute}"


def test_a_loaded_model_has_the_attributes_the_adapter_reads() -> None:
    model = Transcriber.load(ModelConfig()).adapter.model
    for attribute in pins.MODEL_ATTRIBUTES:
        assert hasattr(model, attribute), f"WhisperModel.{attribute}"
    for attribute in pins.FEATURE_ATTRIBUTES:
        assert hasattr(model.feature_extractor, attribute), f"FeatureExtractor.{attribute}"
    assert model.feature_extractor.nb_max_frames == FULL_FRAMES
    assert model.max_length == 448 and model.time_precision == 0.02 and model.frames_per_second == 100


def test_the_rules_are_faster_whispers_defaults() -> None:
    """``DecodeRules`` and ``DecodeOptions.temperature`` restate faster-whisper's ``transcribe()``
    defaults; a new default upstream shows here."""
    defaults = {n: p.default for n, p in inspect.signature(WhisperModel.transcribe).parameters.items()}
    rules = DecodeRules()
    for field in rules.__dataclass_fields__:
        ours = getattr(rules, field)
        assert (list(ours) if isinstance(ours, tuple) else ours) == defaults[field], field
    assert list(DecodeOptions().temperature) == defaults["temperature"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_adapter_reaches_into_faster_whisper() -> None:
    importers = {
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "wirescribe").rglob("*.py"))
        if _imports(path) & {"faster_whisper", "ctranslate2"}
    }
    assert importers <= set(ALLOWED_IMPORTERS), importers - set(ALLOWED_IMPORTERS)


def test_no_faster_whisper_function_is_replaced() -> None:
    """The encoder length is the adapter's to choose: nothing patches faster-whisper for it."""
    import faster_whisper.audio
    import faster_whisper.transcribe

    assert faster_whisper.transcribe.pad_or_trim is faster_whisper.audio.pad_or_trim
    assert not any(
        (getattr(value, "__module__", None) or "").startswith("wirescribe")
        for module in (faster_whisper.transcribe, faster_whisper.audio)
        for value in vars(module).values()
    )


@pytest.mark.parametrize(
    ("audio", "context", "frames"),
    [
        (6.0, None, 3000),  # Whisper's full 30 s
        (6.0, 12.0, 1200),
        (6.0, 2.0, 800),  # never shorter than the audio and 1 s, in 2 s steps
        (6.5, 2.0, 800),
        (7.0, 2.0, 800),
        (7.1, 2.0, 1000),
        (29.5, 12.0, 3000),  # never longer than 30 s
        (45.0, 12.0, 3000),
    ],
)
def test_context_frames(audio: float, context: float | None, frames: int) -> None:
    assert context_frames(audio, context) == frames


def test_features_are_padded_or_cut_to_the_encoder_length() -> None:
    features = np.ones((80, 500), dtype=np.float32)
    padded = fit(features, 800)
    assert padded.shape == (80, 800) and padded[:, :500].all() and not padded[:, 500:].any()
    assert fit(features, 300).shape == (80, 300)
    assert fit(features, 500).shape == (80, 500)


class _Prompted:
    def __init__(self, n: int) -> None:
        self.n = n

    def previous_tokens(self, limit: int) -> list[int]:
        return list(range(self.n))[-limit:]


def test_prompts_are_cut_to_the_shortest_of_a_batch_but_never_below_half() -> None:
    windows = [_Prompted(n) for n in (40, 0, 22, 35, 19, 0, 9, 45)]
    batches = prompt_batches(windows, 223)
    assert [([w.n for w in b], shared) for b, shared in batches] == [
        ([45, 40, 35], 35),
        ([22, 19], 19),
        ([9], 9),
        ([0, 0], 0),
    ]


def test_a_window_keeps_the_last_tokens_since_its_prompt_reset() -> None:
    w = Window(np.zeros(1600, dtype=np.float32), DecodeOptions(), np.zeros((80, 11), dtype=np.float32))
    w.all_tokens = list(range(300))
    assert w.previous_tokens(223) == list(range(77, 300))
    w.prompt_reset_since = 290
    assert w.previous_tokens(223) == list(range(290, 300))
    assert (w.content_frames, w.frames, w.duration) == (10, 3000, 0.1)


class _MultilingualStub:
    """A multilingual model's language detection, without one (only tiny.en is installed)."""

    def __init__(self) -> None:
        self.encoded: list[tuple[int, ...]] = []
        self.model = self
        self.is_multilingual = True

    def encode(self, features: np.ndarray) -> np.ndarray:
        self.encoded.append(features.shape)
        return features

    def detect_language(self, encoder_output: np.ndarray) -> list[list[tuple[str, float]]]:
        return [[("<|de|>", 0.9), ("<|en|>", 0.05)] for _ in encoder_output]


def test_a_multilingual_model_detects_the_language_of_windows_without_one() -> None:
    """One full-context encode for all the windows that name no language; the others keep theirs."""
    stub = _MultilingualStub()
    adapter = WhisperAdapter(stub)
    features = np.zeros((80, 601), dtype=np.float32)
    audio = np.zeros(96000, dtype=np.float32)
    windows = [Window(audio, DecodeOptions(language=language), features) for language in (None, "fr", None)]
    adapter._set_languages(windows)
    assert [w.language for w in windows] == ["de", "fr", "de"]
    assert stub.encoded == [(2, 80, FULL_FRAMES)]
