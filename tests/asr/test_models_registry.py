"""Models by name (asr/registry.py) and the base model's assembly (asr/base_model.py), with
fakes: routing, worker budgets, the memory check, and a broken or missing part."""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from tests.support.fakes import FakeTranscriber
from wirescribe.asr import base_model
from wirescribe.asr.base_model import BaseModelError, ModelFiles, base_model_dir
from wirescribe.asr.registry import (
    ModelSet,
    ModelSpec,
    UnknownModel,
    check_memory,
    estimate_bytes,
    models_of,
    parse_models,
)
from wirescribe.asr.types import DecodeOptions, Transcript


class Named(FakeTranscriber):
    """A fake model with a name and languages of its own, that can be slow."""

    def __init__(self, name: str, languages: Sequence[str], delay: float = 0.0) -> None:
        super().__init__()
        self.name = name
        self.supported_languages = tuple(languages)  # type: ignore[assignment]
        self.default_language = "en" if tuple(languages) == ("en",) else None  # type: ignore[assignment]
        self.delay = delay
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(self.delay)
        with self._lock:
            self.running -= 1
        return super().transcribe(audio, options)


def model_set(models: dict[str, Named], default: str, budgets: dict[str, int] | None = None) -> ModelSet:
    return ModelSet(models, default, budgets)  # type: ignore[arg-type]  # fakes, not ModelBackend's types


def window(model: str | None = None) -> tuple[np.ndarray, DecodeOptions]:
    return np.zeros(1600, np.float32), DecodeOptions(model=model)


def test_parse_models() -> None:
    assert parse_models("") == ()
    assert parse_models("base:2, tiny.en") == (ModelSpec("base", 2), ModelSpec("tiny.en", 0))
    assert parse_models("/models/my-whisper") == (ModelSpec("/models/my-whisper"),)
    for bad in ("base,base", "base:0", ":2"):
        with pytest.raises(ValueError):
            parse_models(bad)


def test_each_window_goes_to_the_model_its_options_name() -> None:
    english, multi = Named("tiny.en", ["en"]), Named("base", ["en", "fr"])
    models = model_set({"tiny.en": english, "base": multi}, "tiny.en")
    out = models.transcribe_batch([window(), window("base"), window("tiny.en"), window("base")])
    assert len(out) == 4
    assert [o.model for o in english.options] == [None, "tiny.en"]
    assert [o.model for o in multi.options] == ["base", "base"]
    assert models.name == "tiny.en" and models.default_language == "en"
    assert models.names == ("tiny.en", "base")
    with pytest.raises(UnknownModel, match="'large' is not loaded here"):
        models.transcribe_batch([window("large")])
    assert models_of(english).names == ("tiny.en",) and models_of(models) is models  # type: ignore[arg-type]


def test_a_models_budget_bounds_its_calls_at_once() -> None:
    slow = Named("base", ["en", "fr"], delay=0.05)
    models = model_set({"tiny.en": Named("tiny.en", ["en"]), "base": slow}, "tiny.en", {"base": 1})
    threads = [threading.Thread(target=models.transcribe_batch, args=([window("base")],)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slow.most == 1 and len(slow.options) == 4


def test_the_memory_check_refuses_models_that_do_not_fit(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"\0" * (3 << 20))
    assert estimate_bytes(str(tmp_path), 1) == (3 + 150) << 20  # a directory: its file's size
    assert estimate_bytes("base", 2) == (145 + 300) << 20
    check_memory([ModelSpec("tiny.en"), ModelSpec("base")], 1, limit_mb=1000)
    with pytest.raises(ValueError, match=r"the models tiny\.en, base need about 520 MB, more than the 400"):
        check_memory([ModelSpec("tiny.en"), ModelSpec("base")], 1, limit_mb=400)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, ModelFiles]]:
    """Two fake part packages on sys.path (halves of a small model.bin) and what they make."""
    halves = (b"first half " * 100, b"second half " * 100)
    for n, (module, half) in enumerate(zip(base_model.PARTS, halves, strict=True), 1):
        data = tmp_path / "site" / module / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"model.bin.part{n}").write_bytes(half)
        if n == 1:
            for name in base_model.SIDE_FILES:
                (data / name).write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for module in base_model.PARTS:
        sys.modules.pop(module, None)
    whole = b"".join(halves)
    yield tmp_path, ModelFiles(len(whole), hashlib.sha256(whole).hexdigest(), "test")


def test_the_base_model_is_assembled_once_and_checked(parts: tuple[Path, ModelFiles]) -> None:
    tmp, expected = parts
    target = base_model_dir(tmp / "cache", expected)
    assert (target / "model.bin").read_bytes() == b"first half " * 100 + b"second half " * 100
    assert (target / "model.bin.sha256").read_text().strip() == expected.sha256
    assert sorted(p.name for p in target.iterdir()) == sorted(
        ["model.bin", "model.bin.sha256", *base_model.SIDE_FILES]
    )
    stamp = (target / "model.bin").stat().st_mtime_ns
    assert base_model_dir(tmp / "cache", expected) == target  # checked before: not written again
    assert (target / "model.bin").stat().st_mtime_ns == stamp


def test_a_broken_part_is_one_line_and_leaves_no_model(parts: tuple[Path, ModelFiles]) -> None:
    tmp, expected = parts
    wrong = ModelFiles(expected.size, "0" * 64, "test")
    with pytest.raises(BaseModelError) as e:
        base_model_dir(tmp / "cache", wrong)
    assert "SHA-256" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp / "cache" / "whisper-base-test" / "model.bin").exists()
    with pytest.raises(BaseModelError, match=r"hold \d+ bytes, not"):
        base_model_dir(tmp / "cache", ModelFiles(expected.size + 1, expected.sha256, "test"))


def test_a_missing_part_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(base_model, "PARTS", ("no_such_part_package_1", "no_such_part_package_2"))
    with pytest.raises(BaseModelError) as e:
        base_model_dir(tmp_path, ModelFiles(1, "0" * 64, "missing"))
    assert "no-such-part-package-1" in str(e.value) and "pip install" in str(e.value)
