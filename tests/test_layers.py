"""The layers hold by themselves: the import contracts of ``pyproject.toml`` ([tool.importlinter])
pass under ``lint-imports``, and the light modules import without loading faster-whisper or
CTranslate2 (checked in a fresh interpreter: the contracts read the code, this reads what
Python actually loads)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

HEAVY = ("faster_whisper", "ctranslate2")

# Modules that must import without HEAVY: the settings, the model's configuration and vocabulary,
# the scheduler, the VAD (it loads its model when called), and the streaming core. A name whose
# file does not exist yet is skipped, saying so.
LIGHT = (
    "wirescribe.settings",
    "wirescribe.asr.config",
    "wirescribe.asr.types",
    "wirescribe.asr.scheduler",
    "wirescribe.audio.vad",
    "wirescribe.streaming.policy",
    "wirescribe.streaming.planner",
    "wirescribe.streaming.ledger",
    "wirescribe.streaming.agreement",
    "wirescribe.streaming.endpointer",
    "wirescribe.streaming.urgency",
    "wirescribe.streaming.turn_taking",
    "wirescribe.streaming.live_turns",
    "wirescribe.asr.turn_model",
)


def lint_imports() -> str:
    """The venv's ``lint-imports`` (beside the interpreter running the tests)."""
    beside = Path(sys.executable).parent / "lint-imports"
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is missing: pip install -r requirements-dev.txt (import-linter)"
    return found


def test_the_import_contracts_are_kept() -> None:
    out = subprocess.run(
        [lint_imports(), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def module_file(name: str) -> Path:
    base = ROOT.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


@pytest.mark.parametrize("module", LIGHT)
def test_a_light_module_imports_without_the_model_libraries(module: str) -> None:
    if not module_file(module).exists():
        pytest.skip(f"{module} does not exist yet ({module_file(module).relative_to(ROOT)})")
    probe = f"import sys, {module}\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout.strip()
    assert not loaded, f"importing {module} loaded {loaded}"
