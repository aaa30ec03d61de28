"""Every setting of the server and the CLI, read from the environment in this one place.

:meth:`Settings.from_env` reads the ``STT_*`` variables (and ``FFMPEG_BINARY``) once, at start-up,
and validates all of them: a bad value is a :class:`SettingsError` whose message is one line
naming the variable (the server stops with that line, the CLI exits 2 with it). Nothing else in
the package reads ``os.environ``; components get the parts they need handed in.

A typed frozen dataclass rather than pydantic-settings: the options and results of this project
are frozen dataclasses already, the validation needed is a handful of ranges and choices, and a
pydantic ``ValidationError`` is a multi-line report where one line naming the variable is the
promise (docs/configuration.md). It also keeps a dependency out of the CLI's start-up path.

Importing this module loads no model code: :class:`~wirescribe.asr.config.ModelConfig` comes
from ``asr/config.py``, not ``asr/model.py`` (which loads faster-whisper); ``tests/test_layers.py``
checks it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from wirescribe.asr.config import ModelConfig, resolve_device
from wirescribe.asr.registry import ModelSpec, parse_models
from wirescribe.logs import FORMATS as LOG_FORMATS
from wirescribe.logs import LEVELS as LOG_LEVELS

N = TypeVar("N", int, float)

MAX_AUTO_WORKERS = 4  # scheduler workers chosen on a CPU at most (STT_SCHEDULER_WORKERS: any)
SESSIONS_PER_CPU_WORKER = 6  # the automatic session limit on a CPU, per model worker (see resolved())
CUDA_SESSIONS = 16  # the automatic session limit on CUDA
DEVICES = ("auto", "cpu", "cuda")


class SettingsError(ValueError):
    """A setting holds a value that cannot be used; the message is one line naming it."""


class _Env:
    """Typed, validated reads of ``STT_*`` variables; empty counts as unset."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def raw(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.raw(f"STT_{name}") or default

    def choice(self, name: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise SettingsError(f"STT_{name} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def number(self, name: str, default: N, lo: float = 0, hi: float = math.inf) -> N:
        raw = self.raw(f"STT_{name}")
        if raw is None:
            return default
        kind = type(default)
        try:
            value = kind(raw)
        except ValueError as e:
            what = "a whole number" if kind is int else "a number"
            raise SettingsError(f"STT_{name} must be {what}, not {raw!r}") from e
        if not (lo <= value <= hi and math.isfinite(value)):  # also refuses NaN and infinity
            upper = "" if hi == math.inf else f" to {hi:g}"
            raise SettingsError(f"STT_{name} must be from {lo:g}{upper}, not {raw!r}")
        return value

    def origins(self) -> tuple[str, ...]:
        raw = self.text("ALLOWED_ORIGINS", "*")
        origins = tuple(o.strip().rstrip("/").lower() for o in raw.split(",") if o.strip())
        if not origins:
            raise SettingsError("STT_ALLOWED_ORIGINS must name at least one origin (or '*' for any)")
        for origin in origins:
            if origin != "*" and "://" not in origin:
                raise SettingsError(
                    f"STT_ALLOWED_ORIGINS: {origin!r} is not an origin like https://example.com"
                )
        return origins

    def hosts(self) -> tuple[str, ...]:
        """``STT_ALLOWED_HOSTS``: names, ``*.suffix`` or ``*``, added to the defaults (api/hosts.py)."""
        raw = self.text("ALLOWED_HOSTS", "")
        hosts = tuple(h.strip().lower().rstrip(".") for h in raw.split(",") if h.strip())
        for host in hosts:
            name = host.removeprefix("*.")
            if host != "*" and (not name or any(c in name for c in "/:@*[] ")):
                raise SettingsError(
                    f"STT_ALLOWED_HOSTS: {host!r} is not a host name like stt.example.com or *.example.com"
                    " (no scheme, no port)"
                )
        return hosts


@dataclass(frozen=True)
class FileSettings:
    """``POST /v1/audio/transcriptions``: ``STT_MAX_UPLOAD_BYTES``, ``STT_MAX_FILE_JOBS``,
    ``STT_MAX_FILE_QUEUE``, ``STT_FILE_CHUNK_SECONDS``, ``STT_FILE_BEAM_SIZE``."""

    max_upload_bytes: int = 100 << 20  # the whole request body; past it: 413
    # Files transcribed at once. One keeps live sessions' updates waiting for at most one file
    # chunk: an upload has one chunk queued or running at a time (the scheduler serves closing
    # windows first, then whoever has waited longest: a chunk counting from when it was queued, a
    # live session from when its oldest uncommitted words were heard).
    max_jobs: int = 1
    max_queue: int = 16  # requests waiting for their turn (their bodies not yet read); past it: 429
    chunk_seconds: float = 30.0  # the longest model call an upload makes (≤ 30: Whisper's window)
    beam_size: int = 5  # as the CLI's stt: the same file gives the same text either way
    # Audio decoded from one file at most (4 h); past it: 400. A header may lie about its sample
    # rate (1 Hz: each byte becomes a second of audio), so the size limit alone bounds nothing.
    max_seconds: float = 14400.0
    max_wall_seconds: float = 1800.0  # wall clock one file may take (0: none); past it: 400


@dataclass(frozen=True)
class LogSettings:
    """``STT_LOG_LEVEL`` and ``STT_LOG_FORMAT`` (text, or json: one object per line)."""

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True)
class ClusterSettings:
    """Ray Serve (``python -m wirescribe.cluster``, ``make cluster``): the ``STT_SERVE_*``
    variables. Read by the single server too, used only by the cluster entry point."""

    ingress_replicas: int = 2  # replicas of the FastAPI app (sessions, ffmpeg, VAD, policy)
    model_replicas: int = 2  # replicas of the model deployment
    ingress_cpus: float = 1.0  # Ray CPUs one ingress replica reserves
    model_cpus: float = 1.0  # Ray CPUs one model replica reserves (also its threads, rounded up)
    model_gpus: float = -1.0  # GPUs one model replica reserves (-1: auto: 1 when STT_DEVICE=cuda)
    batch_size: int = 0  # windows per model call, from every session in the cluster (0: auto)
    batch_wait_ms: float = 5.0  # how long a model call waits for more windows to join it
    windows_in_flight: int = 0  # model slots of one ingress replica's scheduler (0: auto)
    max_replicas_per_node: int = 0  # replicas of one deployment on one node (0: no limit)
    proxy_location: str = "EveryNode"  # Serve's proxies: EveryNode, HeadOnly, Disabled
    graceful_shutdown_s: float = 0.0  # Serve's graceful_shutdown_timeout_s (0: auto)
    call_timeout: float = 60.0  # one window's model call through the handle, retries included
    app_name: str = "wirescribe"  # the Serve application's name


@dataclass(frozen=True)
class Settings:
    """The server's settings (the CLI uses ``model``, ``log`` and ``ffmpeg_binary``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    files: FileSettings = field(default_factory=FileSettings)
    log: LogSettings = field(default_factory=LogSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    ffmpeg_binary: str | None = None  # FFMPEG_BINARY (None: the one found, see audio.decode)
    host: str = "127.0.0.1"  # stt-server's address (uvicorn's --host otherwise)
    port: int = 8000
    max_frame_bytes: int = 1 << 20  # a larger binary frame closes the session with 1009
    max_session_seconds: float = 7200.0  # audio per session; then final + 1000
    max_session_wall_seconds: float = 10800.0  # wall clock per session; then final + 1000 (0: none)
    max_sessions: int = 0  # past it: busy + 1013 (0: auto, see resolved())
    max_sessions_per_client: int = 4  # live sessions from one client address; past it: busy (0: off)
    admission: str = "auto"  # measured (api/admission.py) | fixed: max_sessions alone | auto, see resolved()
    idle_timeout: float = 60.0  # no frame for this long: timeout, final + 1000 (0: never)
    max_audio_rate: float = 4.0  # sustained audio seconds per wall second (0: unlimited)
    audio_burst_seconds: float = 30.0  # audio a session may send at once before the rate applies
    # A session must decode at least this much audio per wall second, with audio_rate_window
    # seconds of slack (a grace at first; a pause of up to a window later, api/limits.AudioFloor):
    # a trickle of bytes that decodes to nothing cannot hold a slot. timeout + final + 1000 (0: off).
    min_audio_rate: float = 0.5
    audio_rate_window: float = 60.0
    # Bits of input per second of decoded audio, at least, over the session (after 10 s): a
    # header that claims a tiny sample rate turns each byte into seconds of audio. A third of
    # Opus's lowest bitrate (6 kbit/s); refuses long pure-silence FLAC. bad_audio + 1003 (0: off).
    min_input_bitrate: float = 2000.0
    send_timeout: float = 30.0  # a reply blocked this long (client not reading): session ends
    decode_timeout: float = 10.0  # ffmpeg not taking input / not finishing this long: internal
    shutdown_grace: float = 10.0  # on SIGTERM/SIGINT: time for live sessions to send their final
    token: str | None = field(default=None, repr=False)  # access token (None: no token needed)
    allowed_origins: tuple[str, ...] = ("*",)  # Origin values allowed to open WebSockets
    allowed_hosts: tuple[str, ...] = ()  # Host names answered besides the defaults (api/hosts.py)
    temp_token_max_ttl: float = 3600.0  # the longest life POST /v1/auth/token may give a token
    scheduler_workers: int = 0  # model calls running at once (0: auto, see resolved())
    batch_size: int = 0  # windows of several sessions per model call (0: auto: 8 on CUDA, 1 on CPU)
    encoder_context: float = 12.0  # seconds the encoder sees per live update (30: Whisper's full)
    models: tuple[ModelSpec, ...] = ()  # STT_MODELS: loaded besides STT_MODEL (asr/registry.py)
    models_memory_mb: int = 0  # STT_MODELS_MEMORY_MB: what all models may take (0: the machine's)
    # STT_TURN_MODEL: the end-of-turn model's ONNX file (None: the one the pipecat-ai wheel
    # ships, asr/turn_model.py); "off": none (turns end on the transcript and silence alone)
    turn_model: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; :class:`SettingsError` names the first bad one."""
        e = _Env(os.environ if env is None else env)
        d = cls
        return cls(
            model=model_from_env(e),
            files=FileSettings(
                max_upload_bytes=e.number("MAX_UPLOAD_BYTES", FileSettings.max_upload_bytes, 1),
                max_jobs=e.number("MAX_FILE_JOBS", FileSettings.max_jobs, 1),
                max_queue=e.number("MAX_FILE_QUEUE", FileSettings.max_queue),
                chunk_seconds=e.number("FILE_CHUNK_SECONDS", FileSettings.chunk_seconds, 5, 30),
                beam_size=e.number("FILE_BEAM_SIZE", FileSettings.beam_size, 1, 20),
                max_seconds=e.number("MAX_FILE_SECONDS", FileSettings.max_seconds, 1),
                max_wall_seconds=e.number("MAX_FILE_WALL_SECONDS", FileSettings.max_wall_seconds),
            ),
            log=LogSettings(
                level=e.choice("LOG_LEVEL", LogSettings.level, LOG_LEVELS),
                format=e.choice("LOG_FORMAT", LogSettings.format, LOG_FORMATS),
            ),
            cluster=cluster_from_env(e),
            ffmpeg_binary=e.raw("FFMPEG_BINARY"),
            host=e.text("HOST", d.host),
            port=e.number("PORT", d.port, 0, 65535),
            max_frame_bytes=e.number("MAX_FRAME_BYTES", d.max_frame_bytes),
            max_session_seconds=e.number("MAX_SESSION_SECONDS", d.max_session_seconds),
            max_session_wall_seconds=e.number("MAX_SESSION_WALL_SECONDS", d.max_session_wall_seconds),
            max_sessions=e.number("MAX_SESSIONS", d.max_sessions),
            max_sessions_per_client=e.number("MAX_SESSIONS_PER_CLIENT", d.max_sessions_per_client),
            admission=e.choice("ADMISSION", d.admission, ("auto", "measured", "fixed")),
            idle_timeout=e.number("IDLE_TIMEOUT", d.idle_timeout),
            max_audio_rate=e.number("MAX_AUDIO_RATE", d.max_audio_rate),
            audio_burst_seconds=e.number("AUDIO_BURST_SECONDS", d.audio_burst_seconds),
            min_audio_rate=e.number("MIN_AUDIO_RATE", d.min_audio_rate, 0, 1),
            audio_rate_window=e.number("AUDIO_RATE_WINDOW", d.audio_rate_window, 1),
            min_input_bitrate=e.number("MIN_INPUT_BITRATE", d.min_input_bitrate),
            send_timeout=e.number("SEND_TIMEOUT", d.send_timeout),
            decode_timeout=e.number("DECODE_TIMEOUT", d.decode_timeout),
            shutdown_grace=e.number("SHUTDOWN_GRACE", d.shutdown_grace),
            token=e.raw("STT_TOKEN"),
            allowed_origins=e.origins(),
            allowed_hosts=e.hosts(),
            temp_token_max_ttl=e.number("TEMP_TOKEN_MAX_TTL", d.temp_token_max_ttl, 1, 86400),
            scheduler_workers=e.number("SCHEDULER_WORKERS", d.scheduler_workers),
            batch_size=e.number("BATCH_SIZE", d.batch_size),
            encoder_context=e.number("ENCODER_CONTEXT", d.encoder_context, 0, 30),
            models=models_from_env(e),
            models_memory_mb=e.number("MODELS_MEMORY_MB", d.models_memory_mb),
            turn_model=e.raw("STT_TURN_MODEL"),
        )

    def resolved(self, cores: int | None = None) -> Settings:
        """The parallelism settings left at 0 (auto), made concrete for this machine.

        On a CPU: one scheduler worker per core, up to 4, each a CTranslate2 worker with the
        cores divided among them. tiny.en's small matrices gain little from a second thread per
        call and much from a second call at once: on 2 cores one 6 s live window costs 0.21 s
        with 2 threads, 0.18 s with 1, and two 1-thread calls at once 0.13 s a window
        (``bench/stream_bench.py``: 8 streams, median commit latency 3.1 s -> 1.9 s). On CUDA:
        one worker, which batches windows instead (see ``batch_size``).

        The session limit: on a CPU, 6 per worker, the most the benchmark of dense speech keeps
        within its targets (``bench/stream_bench.py --dense``, 2 cores: 12 streams 1.93 s median
        committed-word latency, every session's p90 under 3.5 s, WER as one stream's; 16 served:
        2.41 s, one session's p90 6.2 s); on CUDA, not measured, 16.
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
        # auto: an operator's own STT_MAX_SESSIONS is a fixed limit; the automatic one a ceiling
        # under which the limit follows the measured load (api/admission.py).
        admission = self.admission
        if admission == "auto":
            admission = "fixed" if self.max_sessions else "measured"
        return replace(
            self, scheduler_workers=workers, model=model, max_sessions=sessions, admission=admission
        )


PROXY_LOCATIONS = ("everynode", "headonly", "disabled")


def cluster_from_env(e: _Env) -> ClusterSettings:
    """``STT_SERVE_*``: the Ray Serve deployment (see :class:`ClusterSettings`)."""
    d = ClusterSettings
    location = e.choice("SERVE_PROXY_LOCATION", d.proxy_location, PROXY_LOCATIONS)
    return ClusterSettings(
        ingress_replicas=e.number("SERVE_INGRESS_REPLICAS", d.ingress_replicas, 1),
        model_replicas=e.number("SERVE_MODEL_REPLICAS", d.model_replicas, 1),
        ingress_cpus=e.number("SERVE_INGRESS_CPUS", d.ingress_cpus),
        model_cpus=e.number("SERVE_MODEL_CPUS", d.model_cpus),
        model_gpus=e.number("SERVE_MODEL_GPUS", d.model_gpus, -1),
        batch_size=e.number("SERVE_BATCH_SIZE", d.batch_size, 0, 256),
        batch_wait_ms=e.number("SERVE_BATCH_WAIT_MS", d.batch_wait_ms, 0, 1000),
        windows_in_flight=e.number("SERVE_WINDOWS_IN_FLIGHT", d.windows_in_flight),
        max_replicas_per_node=e.number("SERVE_MAX_REPLICAS_PER_NODE", d.max_replicas_per_node, 0, 100),
        proxy_location={"everynode": "EveryNode", "headonly": "HeadOnly", "disabled": "Disabled"}[location],
        graceful_shutdown_s=e.number("SERVE_GRACEFUL_SHUTDOWN_S", d.graceful_shutdown_s),
        call_timeout=e.number("SERVE_CALL_TIMEOUT", d.call_timeout, 1),
        app_name=e.text("SERVE_APP_NAME", d.app_name),
    )


def model_from_env(env: _Env | Mapping[str, str], **overrides: Any) -> ModelConfig:
    """``STT_MODEL``, ``STT_DEVICE``, ``STT_COMPUTE_TYPE``, ``STT_CPU_THREADS``,
    ``STT_NUM_WORKERS``; keyword overrides that are not ``None`` (the CLI's flags) win."""
    e = env if isinstance(env, _Env) else _Env(env)
    d = ModelConfig
    config = ModelConfig(
        model=e.text("MODEL", d.model),
        device=e.choice("DEVICE", d.device, DEVICES),
        compute_type=e.text("COMPUTE_TYPE", d.compute_type),
        cpu_threads=e.number("CPU_THREADS", d.cpu_threads),
        num_workers=e.number("NUM_WORKERS", d.num_workers),
    )
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def models_from_env(e: _Env) -> tuple[ModelSpec, ...]:
    """``STT_MODELS``: more models by name, ``name[:workers]`` separated by commas."""
    try:
        return parse_models(e.text("MODELS", ""))
    except ValueError as error:
        raise SettingsError(f"STT_MODELS: {error}") from None
