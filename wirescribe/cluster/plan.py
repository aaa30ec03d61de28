"""The numbers of a Ray Serve deployment, derived from the settings in one place (no ray here).

Every automatic value (``0`` in a ``STT_SERVE_*`` variable) is made concrete here, so the entry
point, the deployments, the tests and ``docs/scaling.md`` agree on one arithmetic:

* a model replica batches up to ``batch_size`` windows per call (4 on a CPU, 8 on a GPU);
* each ingress replica runs ``windows_in_flight`` model calls at once: its share of the cluster's
  model slots (``batch_size`` x model replicas / ingress replicas), so the windows in flight fill
  the model's batches without queueing behind them, and the ingress scheduler keeps cutting each
  window when a slot frees (fresh audio, one in flight per session);
* ``STT_MAX_SESSIONS`` is per ingress replica; automatic: the single server's figure for the
  model capacity behind it (6 streams per CPU thread, 16 per GPU), shared among the ingress
  replicas;
* Serve's own limits sit above the app's, so the app answers ``busy`` first; the graceful
  timeout is at least the session wall-clock limit, so Serve never cuts a session a drain did
  not end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from wirescribe.asr.model import ModelConfig
from wirescribe.settings import CUDA_SESSIONS, SESSIONS_PER_CPU_WORKER, Settings

CPU_BATCH = 4
GPU_BATCH = 8
NO_WALL_LIMIT_GRACE = 86400.0  # graceful timeout when sessions have no wall-clock limit
REQUEST_HEADROOM = 16  # ingress requests past sessions and uploads: /health, /metrics, tokens


@dataclass(frozen=True)
class ClusterPlan:
    """What each deployment gets; see the module docstring for how it is derived."""

    ingress_replicas: int
    model_replicas: int
    ingress_cpus: float
    model_cpus: float
    model_gpus: float
    model_threads: int  # CTranslate2 threads of one model replica
    batch_size: int
    batch_wait_s: float
    windows_in_flight: int
    sessions_per_ingress: int
    ingress_max_ongoing: int  # Serve's max_ongoing_requests: above every limit of the app's
    model_max_ongoing: int
    max_replicas_per_node: int | None
    graceful_shutdown_s: float
    call_timeout: float
    app_name: str
    model_app_name: str
    ingress_settings: Settings  # the FastAPI app's settings on an ingress replica
    model_config: ModelConfig  # the model a model replica loads

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterPlan:
        c = settings.cluster
        gpus = c.model_gpus if c.model_gpus >= 0 else (1.0 if settings.model.device == "cuda" else 0.0)
        threads = settings.model.cpu_threads or max(1, math.ceil(c.model_cpus))
        batch = c.batch_size or (GPU_BATCH if gpus > 0 else CPU_BATCH)
        in_flight = c.windows_in_flight or max(1, round(batch * c.model_replicas / c.ingress_replicas))
        per_model = math.ceil(CUDA_SESSIONS * gpus) if gpus > 0 else SESSIONS_PER_CPU_WORKER * threads
        sessions = settings.max_sessions or max(
            1, round(per_model * c.model_replicas / c.ingress_replicas)
        )  # fmt: skip
        files = settings.files
        wall = settings.max_session_wall_seconds
        graceful = c.graceful_shutdown_s or (
            (wall if wall > 0 else NO_WALL_LIMIT_GRACE) + settings.shutdown_grace
        )  # fmt: skip
        ingress_settings = replace(
            settings, scheduler_workers=in_flight, batch_size=1, max_sessions=sessions
        )  # one window per call: the model deployment batches across the whole cluster
        model_config = replace(settings.model, cpu_threads=threads, num_workers=1)
        if gpus > 0 and model_config.device == "auto":
            model_config = replace(model_config, device="cuda")
        return cls(
            ingress_replicas=c.ingress_replicas,
            model_replicas=c.model_replicas,
            ingress_cpus=c.ingress_cpus,
            model_cpus=c.model_cpus,
            model_gpus=gpus,
            model_threads=threads,
            batch_size=batch,
            batch_wait_s=c.batch_wait_ms / 1000,
            windows_in_flight=in_flight,
            sessions_per_ingress=sessions,
            ingress_max_ongoing=sessions + files.max_jobs + files.max_queue + REQUEST_HEADROOM,
            model_max_ongoing=max(2 * batch, in_flight * c.ingress_replicas),
            max_replicas_per_node=c.max_replicas_per_node or None,
            graceful_shutdown_s=graceful,
            call_timeout=c.call_timeout,
            app_name=c.app_name,
            model_app_name=f"{c.app_name}-model",
            ingress_settings=ingress_settings,
            model_config=model_config,
        )
