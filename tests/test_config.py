"""config.py: STT_* variables of the server, including the access and limit settings."""

from __future__ import annotations

import pytest

from config import ConfigError, ServerConfig


def test_defaults() -> None:
    c = ServerConfig.from_env({})
    assert c == ServerConfig()
    assert c.token is None and c.allowed_origins == ("*",)
    assert c.max_session_wall_seconds == 3 * 3600
    assert c.max_audio_rate == 4.0 and c.audio_burst_seconds == 30.0


def test_access_and_limits_from_env() -> None:
    c = ServerConfig.from_env(
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
    assert ServerConfig.from_env({"STT_TOKEN": "  "}).token is None


def test_token_is_not_in_the_repr() -> None:
    assert "s3cret" not in repr(ServerConfig.from_env({"STT_TOKEN": "s3cret"}))


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
    with pytest.raises(ConfigError, match=name):
        ServerConfig.from_env({name: value})
