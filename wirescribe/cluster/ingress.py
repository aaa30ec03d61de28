"""The ingress deployment: the FastAPI app, unchanged, on a Serve replica; and its drain when
Serve stops the replica.

The app is built on the replica (``__serve_build_asgi_app__``, Serve's late-bound ingress) with
a :class:`~wirescribe.cluster.remote.RemoteTranscriber` for a model and this node as
``ready.node``; Serve runs its lifespan (settings, VAD, scheduler) as uvicorn would.

Why a watcher: when Serve stops a replica (redeploy, downscale, ``serve shutdown``) it first waits
for the replica's ongoing requests to end, up to ``graceful_shutdown_timeout_s``, and only then
runs the app's lifespan shutdown, whose drain would have given every session its ``final``. A
WebSocket session is one long ongoing request, so without help it would run on until the
timeout and then be cut. The watcher sees the replica start its graceful shutdown and drains
the app at once: every live session gets its ``final`` and close 1001, as on SIGTERM under
uvicorn, and new sessions get ``busy``; then Serve finds no request left and stops the replica.

Serve has no public hook for "this replica is stopping", so :func:`stopping_probe` reads the
replica's own flag (``_shutting_down``, set first thing in its graceful shutdown). The test of
a redeploy mid-session (``tests/cluster``) fails if a Ray upgrade moves it; if the flag cannot
be found the watcher logs a warning and the graceful timeout (at least the session wall-clock
limit) still lets every session end on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from ray import serve

from wirescribe.api.app import create_app, drain_app
from wirescribe.cluster.nodes import node_label
from wirescribe.cluster.remote import ModelInfo, RemoteTranscriber
from wirescribe.settings import Settings

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.2  # seconds between looks at the replica's stop flag


def stopping_probe() -> Callable[[], bool] | None:
    """A function that says whether Serve has begun stopping this replica; None when this Ray
    version keeps the flag elsewhere (see the module docstring)."""
    try:
        from ray._private.worker import global_worker

        actor = global_worker.actors.get(global_worker.actor_id)
        replica = getattr(actor, "_replica_impl", None)
    except (ImportError, AttributeError):
        return None
    if replica is None or not isinstance(getattr(replica, "_shutting_down", None), bool):
        return None
    return lambda: bool(replica._shutting_down)


async def drain_when_stopping(app: FastAPI, stopping: Callable[[], bool]) -> None:
    """Wait until the replica is stopping, then let every live session finish with ``final``."""
    while not stopping():
        await asyncio.sleep(WATCH_INTERVAL)
    log.info("Serve is stopping this replica: draining its live sessions")
    drained = await drain_app(app)  # as the app's own shutdown: new sessions get busy
    log.info("drained %d session(s)", drained)


class WirescribeIngress:
    """One ingress replica (wrapped by ``serve.ingress()`` and ``serve.deployment`` in
    :mod:`wirescribe.cluster.serve`)."""

    def __init__(
        self, settings: Settings, model_app: str, model_deployment: str, call_timeout: float
    ) -> None:
        self._settings = settings
        self._model: Any = serve.get_deployment_handle(model_deployment, app_name=model_app)
        self._call_timeout = call_timeout
        self._watch: asyncio.Task[None] | None = None

    async def __serve_build_asgi_app__(self) -> FastAPI:
        info: ModelInfo = await self._model.describe.remote()
        node = node_label()
        transcriber = RemoteTranscriber(self._model, info, node, self._call_timeout)
        app = create_app(self._settings, transcriber=transcriber, node=node)
        stopping = stopping_probe()
        if stopping is None:
            log.warning(
                "cannot see when Serve stops this replica (Ray moved its flag): live sessions will "
                "run until they end or the graceful timeout cuts them"
            )
        else:
            self._watch = asyncio.create_task(drain_when_stopping(app, stopping))
        log.info("ingress replica on %s: model %s on %s", node, info.name, info.device)
        return app

    async def __del__(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch


Ingress = serve.ingress()(WirescribeIngress)
