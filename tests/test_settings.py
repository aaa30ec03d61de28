"""wirescribe.settings: every STT_* variable of the server and the CLI, read and validated in one place."""

from __future__ import annotations

import re

import pytest

from tests.support import ROOT
from wirescribe.settings import Settings, SettingsError


def test_defaults() -> None:
    c = Settings.from_env({})
    assert c == Settings()
    assert c.token is None and c.allowed_origins == ("*",)
    assert c.max_session_wall_seconds == 3 * 3600
    assert c.max_audio_rate == 4.0 and c.audio_burst_seconds == 30.0


def test_access_and_limits_from_env() -> None:
    c = Settings.from_env(
        {
            "STT_TOKEN": " s3cret ",
            "STT_ALLOWED_ORIGINS": "https://App.example/, http://localhost:3000",
            "STT_MAX_SESSION_WALL_SECONDS": "60",
            "STT_MAX_AUDIO_RATE": "2.5",
            "STT_AUDIO_BURST_SECONDS": "10",
            "STT_SEND_TIMEOUT": "5",
            "STT_DECODE_TIMEOUT": "3",
            "STT_SHUTDOWN_GRACE": "20",
            "STT_IDLE_TIMEOUT": "0",
        }
    )
    assert c.token == "s3cret"
    assert c.allowed_origins == ("https://app.example", "http://localhost:3000")
    assert (c.max_session_wall_seconds, c.max_audio_rate, c.audio_burst_seconds) == (60, 2.5, 10)
    assert (c.send_timeout, c.decode_timeout, c.shutdown_grace, c.idle_timeout) == (5, 3, 20, 0)


def test_empty_token_means_none() -> None:
    assert Settings.from_env({"STT_TOKEN": "  "}).token is None


def test_token_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(Settings.from_env({"STT_TOKEN": "s3cret"}))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STT_MAX_AUDIO_RATE", "fast"),
        ("STT_MAX_AUDIO_RATE", "-1"),
        ("STT_MAX_AUDIO_RATE", "nan"),
        ("STT_SEND_TIMEOUT", "10s"),
        ("STT_MAX_SESSION_WALL_SECONDS", "-5"),
        ("STT_ALLOWED_ORIGINS", " , "),
        ("STT_ALLOWED_ORIGINS", "app.example"),
    ],
)
def test_bad_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_auto_parallelism_on_a_cpu_gives_each_core_a_one_thread_worker() -> None:
    auto = Settings.from_env({"STT_DEVICE": "cpu"})
    assert auto.scheduler_workers == 0 and auto.model.cpu_threads == 0 and auto.model.num_workers == 0
    two = auto.resolved(cores=2)
    assert (two.scheduler_workers, two.model.num_workers, two.model.cpu_threads) == (2, 2, 1)
    many = auto.resolved(cores=16)
    assert (many.scheduler_workers, many.model.num_workers, many.model.cpu_threads) == (4, 4, 4)
    one = auto.resolved(cores=1)
    assert (one.scheduler_workers, one.model.num_workers, one.model.cpu_threads) == (1, 1, 1)
    # the session limit follows the workers: 6 real-time streams each keep a 2.5 s median latency
    assert (one.max_sessions, two.max_sessions, many.max_sessions) == (6, 12, 24)
    assert (
        Settings.from_env({"STT_DEVICE": "cpu", "STT_MAX_SESSIONS": "3"}).resolved(cores=2).max_sessions == 3
    )


def test_explicit_parallelism_settings_are_kept() -> None:
    env = {"STT_DEVICE": "cpu", "STT_SCHEDULER_WORKERS": "3", "STT_CPU_THREADS": "2", "STT_NUM_WORKERS": "5"}
    c = Settings.from_env(env).resolved(cores=2)
    assert (c.scheduler_workers, c.model.num_workers, c.model.cpu_threads) == (3, 5, 2)
    only_workers = Settings.from_env({"STT_DEVICE": "cpu", "STT_SCHEDULER_WORKERS": "1"}).resolved(cores=8)
    assert (
        only_workers.scheduler_workers,
        only_workers.model.num_workers,
        only_workers.model.cpu_threads,
    ) == (1, 1, 8)


NUMBERS = [
    "MAX_FRAME_BYTES", "MAX_SESSION_SECONDS", "MAX_SESSION_WALL_SECONDS", "MAX_SESSIONS", "IDLE_TIMEOUT",
    "MAX_AUDIO_RATE", "AUDIO_BURST_SECONDS", "SEND_TIMEOUT", "DECODE_TIMEOUT", "SHUTDOWN_GRACE",
    "SCHEDULER_WORKERS", "BATCH_SIZE", "ENCODER_CONTEXT", "CPU_THREADS", "NUM_WORKERS", "PORT",
    "MAX_UPLOAD_BYTES", "MAX_FILE_JOBS", "MAX_FILE_QUEUE", "FILE_CHUNK_SECONDS", "FILE_BEAM_SIZE",
    "MAX_FILE_SECONDS", "MAX_FILE_WALL_SECONDS", "MAX_SESSIONS_PER_CLIENT", "MIN_AUDIO_RATE",
    "AUDIO_RATE_WINDOW", "MIN_INPUT_BITRATE",
]  # fmt: skip


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", ["many", "-3", "1e400"])
def test_every_number_setting_refuses_junk_in_one_line(name: str, value: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({f"STT_{name}": value})
    message = str(info.value)
    assert message.startswith(f"STT_{name} must be") and repr(value) in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEVICE", "gpu"), ("LOG_LEVEL", "loud"), ("LOG_FORMAT", "xml"), ("ENCODER_CONTEXT", "31")],
)
def test_choices_and_ranges(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^STT_{name} must be"):
        Settings.from_env({f"STT_{name}": value})


def test_model_log_and_ffmpeg_settings() -> None:
    s = Settings.from_env(
        {"STT_MODEL": "/models/x", "STT_DEVICE": "CPU", "STT_LOG_FORMAT": "json", "FFMPEG_BINARY": "/opt/ff"}
    )
    assert (s.model.model, s.model.device, s.log.format, s.ffmpeg_binary) == (
        "/models/x",
        "cpu",
        "json",
        "/opt/ff",
    )
    assert Settings.from_env({"STT_PORT": "", "STT_MODEL": " "}) == Settings()  # empty is unset


def test_only_the_settings_module_reads_the_environment() -> None:
    """One place reads the environment; everything else is handed its settings."""
    package = ROOT / "wirescribe"
    readers = {
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if re.search(r"os\.environ|os\.getenv|getenv\(", p.read_text())
    }
    # devserver.py and cluster/local.py pass the environment on to the processes they start
    # (a test server; `ray start`), adding to it: neither reads a setting from it
    assert readers <= {"settings.py", "devserver.py", "cluster/local.py"}, readers
