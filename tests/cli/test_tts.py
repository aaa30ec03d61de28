"""Text-to-speech: the Piper engine, ``cli.py tts`` and its failures, gTTS offline. No STT model.

Speech produced here is checked for what it is without a recogniser (decodable, duration,
sample rate, level); the tts → stt round trips with word error rate live in test_cli.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import ROOT, free_port
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.cli import main as cli
from wirescribe.cli.tts import EngineUnavailable, Speech, TtsOptions, TtsUsageError, synthesize

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def speech() -> Speech:
    return synthesize(SENTENCE)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python cli.py ARGS`` as a user runs it: a separate process, its own stdout and stderr."""
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line a failure must print, and nothing else."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- the engine ---------------------------------------------------------------------------------


def test_piper_speaks_offline(speech: Speech) -> None:
    assert speech.sample_rate == 22050
    assert speech.samples.dtype == np.float32
    assert 1.5 < speech.duration < 6, speech.duration
    assert 0.3 < float(np.max(np.abs(speech.samples))) <= 1.0


def test_at_16k_keeps_the_duration(speech: Speech) -> None:
    audio = speech.at_16k()
    assert audio.dtype == np.float32
    assert abs(len(audio) / SAMPLE_RATE - speech.duration) < 0.01


def test_speed_changes_the_length(speech: Speech) -> None:
    slow = synthesize(SENTENCE, TtsOptions(speed=0.5))
    fast = synthesize(SENTENCE, TtsOptions(speed=2.0))
    # Piper's pauses do not scale with the speed and its synthesis varies a little run to run:
    # over 10 takes slow/normal was 1.70-1.83 and normal/fast 1.52-1.69.
    assert slow.duration > 1.6 * speech.duration
    assert speech.duration > 1.4 * fast.duration


@pytest.mark.parametrize(
    ("text", "options", "words"),
    [
        ("  \n", TtsOptions(), "no text"),
        (SENTENCE, TtsOptions(voice="nobody"), "unknown piper voice"),
        (SENTENCE, TtsOptions(lang="de"), "speaks 'en-us'"),
        (SENTENCE, TtsOptions(engine="espeak"), "unknown engine"),
        (SENTENCE, TtsOptions(speed=0), "speed"),
        (SENTENCE, TtsOptions(engine="gtts", lang="xx-nope"), "does not speak"),
    ],
)
def test_usage_errors(text: str, options: TtsOptions, words: str) -> None:
    with pytest.raises(TtsUsageError, match=words):
        synthesize(text, options)


# --- gTTS without the internet ------------------------------------------------------------------


@pytest.fixture
def silent_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A proxy that accepts connections and never answers: a request through it can only time out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv("HTTPS_PROXY", url)
        monkeypatch.setenv("https_proxy", url)
        yield url


def test_gtts_never_hangs(silent_proxy: str) -> None:
    started = time.monotonic()
    with pytest.raises(EngineUnavailable, match=r"no answer within 1 s.*--engine piper"):
        synthesize("Hello world", TtsOptions(engine="gtts", timeout=1))
    assert time.monotonic() - started < 3


def test_gtts_cli_fails_with_one_line(
    silent_proxy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "speech.mp3"
    assert cli.main(["tts", "Hello world", "--engine", "gtts", "--timeout", "1", "-o", str(out)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "internet" in line and "--engine piper" in line
    assert not out.exists()


def test_gtts_refused_in_a_real_process(tmp_path: Path) -> None:
    """No internet (or, made certain here, a proxy on a closed port): a clear line, fast."""
    closed = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    proc = run_cli("tts", "Hello world", "--engine", "gtts", "-o", str(tmp_path / "g.mp3"),
                   env={"HTTPS_PROXY": closed, "https_proxy": closed})  # fmt: skip
    assert proc.returncode == 1
    assert "--engine piper" in one_error_line(proc.stderr)
    assert time.monotonic() - started < 20  # interpreter start and imports included


# --- cli.py tts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg", "webm", "flac", "m4a"])
def test_every_format_decodes(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"speech.{fmt}"
    assert cli.main(["tts", SENTENCE, "--output", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().err
    audio = decode_file(out)
    assert 1.5 < len(audio) / SAMPLE_RATE < 6.5
    assert float(np.max(np.abs(audio))) > 0.2


def test_stdout_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(SENTENCE))
    assert cli.main(["tts", "-", "-o", "-", "--format", "mp3"]) == 0
    data = capsysbinary.readouterr().out
    assert data[:3] == b"ID3" or data[0] == 0xFF  # an MP3 stream
    (tmp_path / "x.mp3").write_bytes(data)
    assert len(decode_file(tmp_path / "x.mp3")) / SAMPLE_RATE > 1.5


def test_stdout_defaults_to_wav(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert cli.main(["tts", "Hello.", "-o", "-"]) == 0
    assert capsysbinary.readouterr().out[:4] == b"RIFF"


def test_text_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "text.txt").write_text("One sentence.\nAnother sentence.\n", encoding="utf-8")
    out = tmp_path / "x.wav"
    assert cli.main(["tts", "--file", str(tmp_path / "text.txt"), "-o", str(out), "-q"]) == 0
    assert len(decode_file(out)) / SAMPLE_RATE > 1.5


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["tts", ""], 2, "no text"),
        (["tts", "  "], 2, "no text"),
        (["tts"], 2, "no text"),
        (["tts", "hi", "-o", "/no/such/dir/x.mp3"], 2, "cannot write /no/such/dir/x.mp3"),
        (["tts", "hi", "-o", "{tmp}"], 2, "is a directory"),
        (["tts", "hi", "-o", "{tmp}/x.xyz"], 2, "audio format"),
        (["tts", "hi", "-o", "{tmp}/noext"], 2, "no extension"),
        (["tts", "hi", "--file", "{tmp}/t.txt"], 2, "not both"),
        (["tts", "--file", "{tmp}/missing.txt"], 1, "no such file"),
        (["tts", "hi", "-o", "{tmp}/x.wav", "--voice", "{tmp}/none.onnx"], 2, "unknown piper voice"),
        (["tts", "hi", "-o", "{tmp}/x.wav", "--lang", "fr"], 2, "pick another voice"),
    ],
)
def test_bad_requests(
    args: list[str], code: int, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in args]) == code
    assert words in one_error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_usage_errors_exit_2_as_argparse_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["tts", "hi", "--speed", "-1"])
    assert e.value.code == 2
    assert "must be positive" in capsys.readouterr().err


def test_unknown_extension_in_a_real_process(tmp_path: Path) -> None:
    proc = run_cli("tts", "Hello world", "--output", str(tmp_path / "x.xyz"))
    assert proc.returncode == 2
    assert "audio format" in one_error_line(proc.stderr)
    assert proc.stdout == ""
