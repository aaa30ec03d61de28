"""Server settings, read once from ``STT_*`` environment variables (see the README's table)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from transcriber import ModelConfig


class ConfigError(Exception):
    """An environment variable holds a value that cannot be used."""


def _get(env: dict[str, str], name: str, default: str) -> str:
    return env.get(f"STT_{name}", default)


def _number(env: dict[str, str], name: str, default: float, kind: type = float) -> float:
    raw = _get(env, name, str(default))
    try:
        value = kind(raw)
    except ValueError as e:
        raise ConfigError(f"STT_{name} must be a number, not {raw!r}") from e
    if value < 0:
        raise ConfigError(f"STT_{name} must not be negative, not {raw!r}")
    return value


@dataclass(frozen=True)
class ServerConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    max_frame_bytes: int = 1 << 20  # a larger binary frame closes the session with 1009
    max_session_seconds: float = 7200.0  # audio per session; then final + 1000
    max_sessions: int = 16  # past it: busy + 1013
    idle_timeout: float = 60.0  # no frame for this long: final + 1000 (0: never)
    scheduler_workers: int = 1  # model calls running at once
    encoder_context: float = 12.0  # seconds the encoder sees per live update (30: Whisper's full)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServerConfig:
        env = dict(os.environ) if env is None else env
        try:
            model = ModelConfig.from_env(env)
        except ValueError as e:
            raise ConfigError(f"bad model setting: {e}") from e
        return cls(
            model=model,
            max_frame_bytes=int(_number(env, "MAX_FRAME_BYTES", cls.max_frame_bytes, int)),
            max_session_seconds=_number(env, "MAX_SESSION_SECONDS", cls.max_session_seconds),
            max_sessions=int(_number(env, "MAX_SESSIONS", cls.max_sessions, int)),
            idle_timeout=_number(env, "IDLE_TIMEOUT", cls.idle_timeout),
            scheduler_workers=int(_number(env, "SCHEDULER_WORKERS", cls.scheduler_workers, int)),
            encoder_context=_number(env, "ENCODER_CONTEXT", cls.encoder_context),
        )
