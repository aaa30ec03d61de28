"""config.py: STT_* variables of the server, including the access and limit settings."""

from __future__ import annotations

import pytest

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
        Settings.from_env({"STT_DEVICE": "cpu", "STT_MAX_SESSIONS": "3"}).resolved(cores=2).max_sessions
        == 3
    )


def test_explicit_parallelism_settings_are_kept() -> None:
    env = {"STT_DEVICE": "cpu", "STT_SCHEDULER_WORKERS": "3", "STT_CPU_THREADS": "2", "STT_NUM_WORKERS": "5"}
    c = Settings.from_env(env).resolved(cores=2)
    assert (c.scheduler_workers, c.model.num_workers, c.model.cpu_threads) == (3, 5, 2)
    only_workers = Settings.from_env({"STT_DEVICE": "cpu", "STT_SCHEDULER_WORKERS": "1"}).resolved(
        cores=8
    )
    assert (
        only_workers.scheduler_workers,
        only_workers.model.num_workers,
        only_workers.model.cpu_threads,
    ) == (1, 1, 8)
