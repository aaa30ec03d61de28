"""The FastAPI app: its lifespan (settings, model, scheduler, logging) and ``/health``.

``uvicorn server:app`` (the top-level ``server.py``) serves :data:`app`, a plain
:class:`~fastapi.FastAPI` instance: a user may ``include_router`` on it, keep things in
``app.state`` or mount it in an application of their own. The lifespan reads and validates the
settings, loads the model, starts the scheduler and builds the one typed
:class:`~wirescribe.api.state.AppState` that every route gets as a dependency; tests hand in
their own settings and model through :func:`create_app`. The routes live in their own modules:
``/ws/transcribe`` in :mod:`wirescribe.api.ws`, ``/v1/audio/transcriptions`` in
:mod:`wirescribe.api.openai_rest`.

Mounted (``parent.mount("/stt", app)``) the app gets no lifespan events of its own (Starlette
sends them to the outermost app only), so the parent's lifespan enters this one's::

    @asynccontextmanager
    async def lifespan(parent: FastAPI) -> AsyncIterator[None]:
        async with app.router.lifespan_context(app):
            yield
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wirescribe import logs
from wirescribe.api import auth, openai_rest, security, ws
from wirescribe.api.compat import deepgram_flux_ws, dialects
from wirescribe.api.deps import STATE_KEY, DocsGate, State, require_token, state_of, state_of_app
from wirescribe.api.exposure import warn_when_exposed
from wirescribe.api.hosts import HostGate, HostPolicy
from wirescribe.api.lifecycle import ShutdownHook, drain, make_fork_safe
from wirescribe.api.metrics import CONTENT_TYPE, Metrics
from wirescribe.api.state import AppState, FileTurns, default_node
from wirescribe.asr.model import ModelLoadError, load_models
from wirescribe.asr.scheduler import Scheduler
from wirescribe.asr.turn_model import TurnScorer, load_turn_model
from wirescribe.asr.types import ModelBackend
from wirescribe.audio.decode import ffmpeg_version, find_ffmpeg, use_ffmpeg
from wirescribe.audio.vad import silero_probability
from wirescribe.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start (model or settings); the message is the whole story."""


async def _build_state(
    app: FastAPI, settings: Settings | None, transcriber: ModelBackend | None, node: str | None
) -> AppState:
    """Settings (from the environment unless given), logging, the model, VAD and scheduler."""
    try:
        settings = (settings or Settings.from_env()).resolved()
    except SettingsError as e:
        raise StartupError(str(e)) from None
    logs.configure_unless_configured(settings.log.level, settings.log.format)
    use_ffmpeg(settings.ffmpeg_binary)
    ffmpeg = find_ffmpeg()
    log.info("ffmpeg: %s (%s)", ffmpeg, await asyncio.to_thread(ffmpeg_version, ffmpeg))
    try:
        if transcriber is None:
            transcriber = await asyncio.to_thread(
                load_models, settings.model, settings.models, settings.models_memory_mb
            )
    except ModelLoadError as e:
        raise StartupError(str(e)) from None
    probability = await asyncio.to_thread(silero_probability)
    turn_scorer = await asyncio.to_thread(_turn_scorer, settings.turn_model)
    make_fork_safe()  # before any session can spawn ffmpeg beside a model call: see lifecycle.py
    scheduler = Scheduler.for_transcriber(transcriber, settings.scheduler_workers, settings.batch_size)
    metrics = Metrics(lambda: state_of_app(app))
    scheduler.add_listener(metrics.observe)
    return AppState(
        settings=settings,
        transcriber=transcriber,
        scheduler=scheduler,
        vad_probability=probability,
        metrics=metrics,
        file_turns=FileTurns(settings.files.max_jobs),
        turn_scorer=turn_scorer,
        node=node or default_node(),
    )


def _turn_scorer(path: str | None) -> TurnScorer | None:
    """The end-of-turn model, scoring off the loop (None: "off", or not installed: logged)."""
    if path == "off":
        log.info("end-of-turn model off (STT_TURN_MODEL=off): turns end on the transcript and silence")
        return None
    model = load_turn_model(path)
    return TurnScorer(model) if model is not None else None


def _lifespan(
    settings: Settings | None, transcriber: ModelBackend | None, node: str | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        remove_redaction = security.install_log_redaction()  # first: every line after it is clean
        try:
            state = await _build_state(app, settings, transcriber, node)
        except BaseException:
            remove_redaction()
            raise
        await state.scheduler.start()
        setattr(app.state, STATE_KEY, state)
        log.info(
            "scheduler: %d worker(s), %d CPU thread(s) each, up to %d window(s) per model call",
            state.settings.scheduler_workers, state.settings.model.cpu_threads, state.scheduler.batch_size,
        )  # fmt: skip
        exposure = asyncio.create_task(warn_when_exposed(state.settings.token is not None))
        hook = ShutdownHook(lambda: _drain(state))
        hook.install()
        try:
            yield
        finally:
            exposure.cancel()
            hook.uninstall()
            await _drain(state)  # sessions still open here (stopped without a signal) get their final
            await state.scheduler.stop()
            if isinstance(state.turn_scorer, TurnScorer):
                state.turn_scorer.close(timeout=1.0)
            remove_redaction()

    return lifespan


async def _drain(state: AppState) -> None:
    """Refuse new sessions; let every live one finish with ``final`` + 1001 (bounded wait)."""
    state.draining = True
    await drain(state.sessions.values(), state.settings.shutdown_grace)


async def drain_app(app: FastAPI) -> int:
    """What shutdown does first, for a host that stops the app its own way (a Serve replica):
    refuse new sessions and let every live one finish with ``final`` + 1001. Returns how many
    sessions were live (0 before the app has started)."""
    state = state_of_app(app)
    if state is None:
        return 0
    live = len(state.sessions)
    await _drain(state)
    return live


async def health(request: Request) -> JSONResponse:
    """200 with the model's name once it is loaded; 503 while starting."""
    state = state_of(request)
    if state is None:
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse(
        {
            "status": "shutting_down" if state.draining else "ok",
            "model": state.transcriber.name,
            "device": state.transcriber.device,
            "compute_type": state.transcriber.compute_type,
            "sessions": len(state.sessions),
            "admission": state.admission_state().as_dict(),  # api/admission.py: admitted now, and why
        }
    )


async def serve_metrics(state: State) -> Response:
    """The Prometheus text exposition of this app's registry."""
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)


class _CleanStartupErrors:
    """ASGI middleware: a :class:`StartupError` in the lifespan becomes one line instead of a
    traceback. A middleware rather than a wrapper around the app, so that :data:`app` stays the
    FastAPI instance (Starlette passes the lifespan scope through its middleware stack)."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.inner(scope, receive, send)
            return

        async def tidy_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                last = str(message.get("message", "")).strip().splitlines()[-1:] or [""]
                prefix = f"{__name__}.StartupError: "
                if last[0].startswith(prefix):
                    message = {**message, "message": last[0][len(prefix) :]}
            await send(message)

        with contextlib.suppress(StartupError):
            await self.inner(scope, receive, tidy_send)


def create_app(
    settings: Settings | None = None, transcriber: ModelBackend | None = None, node: str | None = None
) -> FastAPI:
    """A fresh app; ``settings`` and ``transcriber`` default to the environment and a loaded
    model (both are taken at start-up, in the lifespan, never at import). ``node`` is what
    ``ready.node`` names (default: host name and process id; a cluster passes its node)."""
    api = FastAPI(title="Real-time speech-to-text", lifespan=_lifespan(settings, transcriber, node))
    api.add_middleware(DocsGate)  # /docs and /openapi.json need the token too
    api.add_middleware(HostGate, policy=lambda: _host_policy(api))  # before any route or gate
    api.add_middleware(_CleanStartupErrors)  # the lifespan scope only
    api.add_api_route("/health", health, methods=["GET"])
    api.add_api_route(
        "/metrics", serve_metrics, methods=["GET"], include_in_schema=False,
        dependencies=[Depends(require_token)],
    )  # fmt: skip
    api.add_api_websocket_route("/ws/transcribe", ws.transcribe_ws)
    api.add_api_websocket_route("/v1/realtime", dialects.realtime_ws)  # OpenAI Realtime transcription
    api.add_api_websocket_route("/v1/listen", dialects.listen_ws)  # Deepgram live
    api.add_api_websocket_route("/v2/listen", deepgram_flux_ws.listen_v2_ws)  # Deepgram Flux (turns)
    api.include_router(openai_rest.router)
    api.include_router(auth.router)
    return api


def _host_policy(api: FastAPI) -> HostPolicy | None:
    state = state_of_app(api)
    return state.hosts if state is not None else None


app = create_app()
