"""The cluster entry point: two Serve applications built from the settings, deployed or deleted.

* ``wirescribe-model``: the model deployment (:class:`~wirescribe.cluster.model.WhisperModel`),
  no HTTP route; reached through its handle.
* ``wirescribe``: the ingress deployment (the FastAPI app) at ``/``.

Two applications rather than one so that each can be redeployed alone, and so that a full stop
can delete the ingress first: its sessions drain (each ``final`` needs a last model call) while
the model is still there, and only then the model goes. Everything is configured by the
``STT_*`` variables (``STT_SERVE_*`` for the cluster's own numbers, see
:mod:`wirescribe.cluster.plan`); in a Serve config file they go in the application's
``runtime_env.env_vars``, and ``import_path`` names :func:`ingress_app` / :func:`model_app`.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from wirescribe.cluster.ingress import Ingress
from wirescribe.cluster.model import WhisperModel
from wirescribe.cluster.plan import ClusterPlan
from wirescribe.settings import Settings

MODEL_DEPLOYMENT = "WhisperModel"
INGRESS_DEPLOYMENT = "Ingress"
MODEL_WAIT_LOOP_S = 2.0  # a model replica's requests are single windows: short
INGRESS_WAIT_LOOP_S = 1.0  # how often a stopping ingress replica looks for sessions left


def plan_from_env() -> ClusterPlan:
    return ClusterPlan.from_settings(Settings.from_env())


def model_application(plan: ClusterPlan) -> Application:
    deployment = serve.deployment(WhisperModel).options(  # type: ignore[attr-defined]
        name=MODEL_DEPLOYMENT,
        num_replicas=plan.model_replicas,
        max_ongoing_requests=plan.model_max_ongoing,
        ray_actor_options={"num_cpus": plan.model_cpus, "num_gpus": plan.model_gpus},
        max_replicas_per_node=plan.max_replicas_per_node,
        graceful_shutdown_wait_loop_s=MODEL_WAIT_LOOP_S,
        logging_config={"enable_access_log": False},  # a line per window: Serve's metrics count them
    )
    return deployment.bind(plan.model_config, plan.batch_size, plan.batch_wait_s, plan.ingress_settings.log)


def ingress_application(plan: ClusterPlan) -> Application:
    deployment = serve.deployment(Ingress).options(  # type: ignore[attr-defined]
        name=INGRESS_DEPLOYMENT,
        num_replicas=plan.ingress_replicas,
        max_ongoing_requests=plan.ingress_max_ongoing,  # above the app's own limits: busy comes first
        ray_actor_options={"num_cpus": plan.ingress_cpus},
        max_replicas_per_node=plan.max_replicas_per_node,
        graceful_shutdown_timeout_s=plan.graceful_shutdown_s,
        graceful_shutdown_wait_loop_s=INGRESS_WAIT_LOOP_S,
    )
    return deployment.bind(plan.ingress_settings, plan.model_app_name, MODEL_DEPLOYMENT, plan.call_timeout)


def _no_args(args: dict[str, Any] | None) -> None:
    if args:
        raise ValueError(
            "wirescribe takes its settings from STT_* variables (runtime_env.env_vars), "
            f"not args: {sorted(args)}"
        )


def model_app(args: dict[str, Any] | None = None) -> Application:
    """Builder for a Serve config's ``import_path`` (``wirescribe.cluster.serve:model_app``)."""
    _no_args(args)
    return model_application(plan_from_env())


def ingress_app(args: dict[str, Any] | None = None) -> Application:
    """Builder for a Serve config's ``import_path`` (``wirescribe.cluster.serve:ingress_app``)."""
    _no_args(args)
    return ingress_application(plan_from_env())


def deploy(settings: Settings | None = None) -> ClusterPlan:
    """Start Serve on the connected cluster (proxies on ``STT_HOST``:``STT_PORT``, no request
    timeout) and deploy the model, then the ingress; returns once both are running."""
    settings = settings or Settings.from_env()
    plan = ClusterPlan.from_settings(settings)
    serve.start(
        proxy_location=settings.cluster.proxy_location,
        http_options={"host": settings.host, "port": settings.port, "request_timeout_s": None},
    )
    serve.run(model_application(plan), name=plan.model_app_name, route_prefix=None)
    serve.run(ingress_application(plan), name=plan.app_name, route_prefix="/")
    return plan


def undeploy(plan: ClusterPlan) -> None:
    """Delete the ingress (its sessions get their ``final`` while the model still answers),
    then the model."""
    serve.delete(plan.app_name)
    serve.delete(plan.model_app_name)


def model_ledgers(app: str, replicas: int) -> list[dict[str, Any]]:
    """The ledgers (windows, calls by batch size, batches mixing nodes) of the model deployment's
    running replicas in Serve application ``app``: a handle call reaches one replica at a time,
    so it asks until it has heard from ``replicas`` of them (at most 60 calls)."""
    handle = serve.get_deployment_handle(MODEL_DEPLOYMENT, app_name=app)
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(60):
        ledger = handle.ledger.remote().result(timeout_s=10)
        seen[ledger["replica"]] = ledger
        if len(seen) >= replicas:
            break
    return list(seen.values())
