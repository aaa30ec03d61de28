"""pyproject.toml: one package, dependencies in step with the requirements files, console scripts
that run; ``stt-server`` serving with JSON logs."""

from __future__ import annotations

import importlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT
from wirescribe.devserver import free_port

tomllib = pytest.importorskip("tomllib")

# The user's design names these files at the top level; each is a thin entry into the package.
ENTRY_FILES = {"server", "cli", "transcriber", "audio_decode", "test_transcription"}


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirements(path: Path) -> list[str]:
    """The requirements a file lists (not its ``-r`` includes), comments stripped."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-r")]


def name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_the_root_holds_only_the_named_entry_files() -> None:
    assert {p.stem for p in ROOT.glob("*.py")} == ENTRY_FILES
    assert "py-modules" not in pyproject()["tool"]["setuptools"]


def test_the_entry_files_are_thin() -> None:
    """Each entry file imports from the package and defines nothing of its own."""
    for stem in ENTRY_FILES - {"test_transcription"}:
        text = (ROOT / f"{stem}.py").read_text()
        assert "from wirescribe." in text, stem
        assert not re.search(r"^(def|class) ", text, re.M), f"{stem}.py defines code: move it to the package"


def test_the_end_to_end_check_runs_without_pytest() -> None:
    """``python test_transcription.py`` after ``pip install -r requirements.txt`` alone: pytest
    (a development tool) made unimportable, the check still starts, speaks and reports "no server"."""
    url = f"ws://127.0.0.1:{free_port()}/ws/transcribe"
    script = (
        "import runpy, sys\n"
        "sys.modules['pytest'] = sys.modules['_pytest'] = None  # import pytest raises ImportError\n"
        f"sys.argv = ['test_transcription.py', '--url', {url!r}, '--fast']\n"
        "runpy.run_path('test_transcription.py', run_name='__main__')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1, out.stderr[-2000:]
    assert out.stdout.startswith(f"FAIL: no server at {url}"), out.stdout + out.stderr[-2000:]


def test_the_end_to_end_check_is_marked_e2e_under_pytest() -> None:
    """Under pytest the check's test carries the ``e2e`` mark (``make test-fast`` leaves it out)."""
    import test_transcription

    marks = getattr(test_transcription.test_transcription_end_to_end, "pytestmark", [])
    assert [m.name for m in marks] == ["e2e"]


def test_dependencies_mirror_the_requirements_files() -> None:
    project = pyproject()["project"]
    assert sorted(project["dependencies"]) == sorted(requirements(ROOT / "requirements.txt"))
    dev = requirements(ROOT / "requirements-dev.txt")
    assert sorted(project["optional-dependencies"]["dev"]) == sorted(dev)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    bench = (ROOT / "bench" / "requirements.txt").read_text().split()
    assert {name(r) for r in bench} <= {name(r) for r in project["optional-dependencies"]["bench"]}


def test_the_model_pins_are_the_range_the_adapter_was_tested_with() -> None:
    from wirescribe.asr.pins import TESTED_VERSIONS

    listed = requirements(ROOT / "requirements.txt")
    for package, (lowest, below) in TESTED_VERSIONS.items():
        assert f"{package}>={lowest},<{below}" in listed, package


def test_the_constraints_pin_every_requirement() -> None:
    """constraints.txt (``make lock``) pins an exact version of everything the files name."""
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            package, _, version = line.partition("==")
            assert version, f"not an exact pin: {line!r}"
            pinned[name(package)] = version
    named = requirements(ROOT / "requirements.txt") + requirements(ROOT / "requirements-dev.txt")
    assert {name(r) for r in named} <= set(pinned), {name(r) for r in named} - set(pinned)


def test_console_scripts_name_callables() -> None:
    scripts = pyproject()["project"]["scripts"]
    assert set(scripts) == {"stt-server", "stt"}
    for target in scripts.values():
        module, _, func = target.partition(":")
        assert callable(getattr(importlib.import_module(module), func))
    out = subprocess.run(
        [sys.executable, "-m", "wirescribe", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "--log-level" in out.stdout and "--port" in out.stdout


def test_a_wheel_holds_the_modules_and_the_entry_points(tmp_path: Path) -> None:
    try:
        import setuptools

        has_bdist_wheel = tuple(map(int, setuptools.__version__.split(".")[:2])) >= (70, 1)
        if not has_bdist_wheel:
            import wheel  # noqa: F401  # older setuptools build wheels with this package
    except ImportError:
        pytest.skip("building a wheel offline needs setuptools >= 70.1 or the wheel package")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(tmp_path),
        str(ROOT),
    ]
    subprocess.run(cmd, check=True, capture_output=True)
    (built,) = tmp_path.glob("wirescribe-*.whl")
    names = zipfile.ZipFile(built).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"wirescribe"}, top  # exactly one top-level package, nothing else in site-packages
    assert {"wirescribe/api/app.py", "wirescribe/cli/main.py", "wirescribe/py.typed"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(built).read(entry_points).decode()
    assert "stt-server = wirescribe.cli.serve:main" in text and "stt = wirescribe.cli.main:main" in text


@pytest.mark.e2e
def test_stt_server_serves_with_json_logs(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "stt-server.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wirescribe", "--port", str(port), "--log-format", "json",
         "--log-level", "info"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)  # polling interval while the server starts
        assert proc.poll() is None, log.read_text()[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert any(r["logger"] == "uvicorn.error" and "Uvicorn running" in r["message"] for r in records)
    assert any(r["logger"] == "wirescribe.asr.model" and "loaded model" in r["message"] for r in records)
    assert any(r["logger"] == "uvicorn.access" and "/health" in r["message"] for r in records)
    assert all({"time", "level", "logger", "session", "message"} <= set(r) for r in records)
