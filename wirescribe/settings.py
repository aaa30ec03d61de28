"""Server settings, read once from ``STT_*`` environment variables (table: docs/configuration.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from wirescribe.asr.model import ModelConfig, resolve_device


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
    if not value >= 0:  # also refuses NaN
        raise ConfigError(f"STT_{name} must not be negative, not {raw!r}")
    return value


def _origins(env: dict[str, str]) -> tuple[str, ...]:
    raw = _get(env, "ALLOWED_ORIGINS", "*")
    origins = tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())
    if not origins:
        raise ConfigError("STT_ALLOWED_ORIGINS must name at least one origin (or '*' for any)")
    for origin in origins:
        if origin != "*" and "://" not in origin:
            raise ConfigError(f"STT_ALLOWED_ORIGINS: {origin!r} is not an origin like https://example.com")
    return origins


MAX_AUTO_WORKERS = 4  # scheduler workers chosen on a CPU at most (STT_SCHEDULER_WORKERS: any)
SESSIONS_PER_CPU_WORKER = 6  # the automatic session limit on a CPU, per model worker
CUDA_SESSIONS = 16  # the automatic session limit on CUDA


@dataclass(frozen=True)
class ServerConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    max_frame_bytes: int = 1 << 20  # a larger binary frame closes the session with 1009
    max_session_seconds: float = 7200.0  # audio per session; then final + 1000
    max_session_wall_seconds: float = 10800.0  # wall clock per session; then final + 1000 (0: none)
    max_sessions: int = 0  # past it: busy + 1013 (0: auto, see resolved())
    idle_timeout: float = 60.0  # no frame for this long: timeout, final + 1000 (0: never)
    max_audio_rate: float = 4.0  # sustained audio seconds per wall second (0: unlimited)
    audio_burst_seconds: float = 30.0  # audio a session may send at once before the rate applies
    send_timeout: float = 30.0  # a reply blocked this long (client not reading): session ends
    decode_timeout: float = 10.0  # ffmpeg not taking input / not finishing this long: internal
    shutdown_grace: float = 10.0  # on SIGTERM/SIGINT: time for live sessions to send their final
    token: str | None = field(default=None, repr=False)  # access token (None: no token needed)
    allowed_origins: tuple[str, ...] = ("*",)  # Origin values allowed to open WebSockets
    scheduler_workers: int = 0  # model calls running at once (0: auto, see resolved())
    batch_size: int = 0  # windows of several sessions per model call (0: auto: 8 on CUDA, 1 on CPU)
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
            max_session_wall_seconds=_number(env, "MAX_SESSION_WALL_SECONDS", cls.max_session_wall_seconds),
            max_sessions=int(_number(env, "MAX_SESSIONS", cls.max_sessions, int)),
            idle_timeout=_number(env, "IDLE_TIMEOUT", cls.idle_timeout),
            max_audio_rate=_number(env, "MAX_AUDIO_RATE", cls.max_audio_rate),
            audio_burst_seconds=_number(env, "AUDIO_BURST_SECONDS", cls.audio_burst_seconds),
            send_timeout=_number(env, "SEND_TIMEOUT", cls.send_timeout),
            decode_timeout=_number(env, "DECODE_TIMEOUT", cls.decode_timeout),
            shutdown_grace=_number(env, "SHUTDOWN_GRACE", cls.shutdown_grace),
            token=_get(env, "TOKEN", "").strip() or None,
            allowed_origins=_origins(env),
            scheduler_workers=int(_number(env, "SCHEDULER_WORKERS", cls.scheduler_workers, int)),
            batch_size=int(_number(env, "BATCH_SIZE", cls.batch_size, int)),
            encoder_context=_number(env, "ENCODER_CONTEXT", cls.encoder_context),
        )

    def resolved(self, cores: int | None = None) -> ServerConfig:
        """The parallelism settings left at 0 (auto), made concrete for this machine.

        On a CPU: one scheduler worker per core, up to 4, each a CTranslate2 worker with the
        cores divided among them. tiny.en's small matrices gain little from a second thread per
        call and much from a second call at once: on 2 cores one 6 s live window costs 0.21 s
        with 2 threads, 0.18 s with 1, and two 1-thread calls at once 0.13 s a window
        (``bench/stream_bench.py``: 8 streams, median commit latency 3.1 s -> 1.9 s). On CUDA:
        one worker, which batches windows instead (see ``batch_size``).

        The session limit: on a CPU, 6 per worker, what keeps the median committed-word latency
        at 2.5 s (2 cores: 12 streams 2.5 s, 16 streams 3.3 s); on CUDA, not measured, 16.
        """
        cores = cores or os.cpu_count() or 1
        cuda = resolve_device(self.model.device) == "cuda"
        if cuda:
            workers = self.scheduler_workers or 1
            threads = self.model.cpu_threads or cores
        else:
            workers = self.scheduler_workers or min(cores, MAX_AUTO_WORKERS)
            threads = self.model.cpu_threads or max(1, cores // workers)
        model = replace(self.model, cpu_threads=threads, num_workers=self.model.num_workers or workers)
        sessions = self.max_sessions or (CUDA_SESSIONS if cuda else SESSIONS_PER_CPU_WORKER * workers)
        return replace(self, scheduler_workers=workers, model=model, max_sessions=sessions)
