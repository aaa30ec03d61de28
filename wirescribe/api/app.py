"""The network edge: the FastAPI app, ``/ws/transcribe`` and ``/health``.

Run with ``uvicorn server:app --host 0.0.0.0 --port 8000``. The model is loaded in the lifespan
(tests may put their own ``transcriber`` on ``app.state`` first). Per connection: one receive
loop here, one session task (:class:`session.LiveSession`) that sends results; ``finally``
cancels and awaits both and reaps the decoder.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wirescribe.api import metrics, protocol, security
from wirescribe.api import openai_rest as openai_api
from wirescribe.api.lifecycle import (
    SHUTDOWN,
    WALL_LIMIT,
    LiveConnection,
    ShutdownHook,
    drain,
    make_fork_safe,
    release_free_memory,
)
from wirescribe.api.limits import AudioRate, AudioRateGate
from wirescribe.api.outbox import Outbox
from wirescribe.api.protocol import ProtocolError
from wirescribe.asr.model import Transcriber
from wirescribe.asr.scheduler import Scheduler, SchedulerClosed
from wirescribe.audio.decode import DecoderFailure, StreamDecoder, open_decoder
from wirescribe.audio.vad import VoiceActivity, silero_probability
from wirescribe.settings import ServerConfig
from wirescribe.streaming.policy import FinalTranscript, StreamingPolicy
from wirescribe.streaming.session import LiveSession

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start (model or configuration); the message is the whole story."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from wirescribe.asr.model import ModelLoadError
    from wirescribe.settings import ConfigError

    try:
        config: ServerConfig = (getattr(app.state, "config", None) or ServerConfig.from_env()).resolved()
        transcriber: Transcriber | None = getattr(app.state, "transcriber", None)
        if transcriber is None:
            transcriber = await asyncio.to_thread(Transcriber.load, config.model)
        probability = await asyncio.to_thread(silero_probability)
    except (ConfigError, ModelLoadError) as e:
        raise StartupError(str(e)) from None
    make_fork_safe()  # before any session can spawn ffmpeg beside a model call: see lifecycle.py
    app.state.config = config
    app.state.transcriber = transcriber
    app.state.vad_probability = probability
    app.state.sessions = {}
    app.state.draining = False
    app.state.scheduler = Scheduler.for_transcriber(transcriber, config.scheduler_workers, config.batch_size)
    await app.state.scheduler.start()
    log.info(
        "scheduler: %d worker(s), %d CPU thread(s) each, up to %d window(s) per model call",
        config.scheduler_workers, config.model.cpu_threads, app.state.scheduler.batch_size,
    )  # fmt: skip
    remove_redaction = security.install_log_redaction()
    hook = ShutdownHook(lambda: _drain(app))
    hook.install()
    try:
        yield
    finally:
        hook.uninstall()
        await _drain(app)  # sessions still open here (stopped without a signal) get their final
        await app.state.scheduler.stop()
        remove_redaction()


async def _drain(app: FastAPI) -> None:
    """Refuse new sessions; let every live one finish with ``final`` + 1001 (bounded wait)."""
    app.state.draining = True
    await drain(app.state.sessions.values(), app.state.config.shutdown_grace)


async def health(request: Request) -> JSONResponse:
    """200 with the model's name once it is loaded."""
    state = request.app.state
    transcriber = getattr(state, "transcriber", None)
    if transcriber is None or not hasattr(state, "scheduler"):
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse(
        {
            "status": "shutting_down" if state.draining else "ok",
            "model": transcriber.name,
            "device": transcriber.device,
            "compute_type": transcriber.compute_type,
            "sessions": len(state.sessions),
        }
    )


async def transcribe_ws(websocket: WebSocket) -> None:
    await websocket.accept()
    state = websocket.app.state
    config: ServerConfig = state.config
    transcriber: Transcriber = state.transcriber
    session_id = uuid.uuid4().hex[:12]
    outbox = Outbox(websocket, config.send_timeout, session_id)
    try:
        security.check_websocket(websocket, config)  # before anything else is read or said
        params = protocol.parse_params(
            websocket.query_params, transcriber.supported_languages, transcriber.default_language
        )
        if state.draining:
            raise ProtocolError("busy", "the server is shutting down")
        if len(state.sessions) >= config.max_sessions:
            raise ProtocolError("busy", f"the server is at its limit of {config.max_sessions} sessions")
    except ProtocolError as e:
        await outbox.fail(e)
        return
    connection = LiveConnection(session_id)
    state.sessions[session_id] = connection
    decoder: StreamDecoder | None = None
    try:
        decoder = await open_decoder(params.format, params.sample_rate)
        vad = VoiceActivity(state.vad_probability)
        policy = StreamingPolicy(vad, language=params.language)
        session = LiveSession(
            decoder, policy, state.scheduler, outbox.send,
            language=params.language, max_seconds=config.max_session_seconds,
            context_seconds=config.encoder_context if config.encoder_context < 30 else None,
            decode_timeout=config.decode_timeout, session_id=session_id,
        )  # fmt: skip
        await outbox.send(protocol.ready_message(session_id, transcriber.name, params))
        await _serve(websocket, session, connection, config, outbox)
    except WebSocketDisconnect:
        log.info("session %s: client went away", session_id)
    except ProtocolError as e:
        await outbox.fail(e)
    except (DecoderFailure, SchedulerClosed) as e:
        await outbox.fail(ProtocolError("internal", str(e)))
    finally:
        if decoder is not None:  # the session reaps it too; not if the client left before it ran
            await decoder.aclose()
        state.sessions.pop(session_id, None)
        connection.mark_done()
        if not state.sessions:
            await release_free_memory()


async def _serve(
    websocket: WebSocket,
    session: LiveSession,
    connection: LiveConnection,
    config: ServerConfig,
    outbox: Outbox,
) -> None:
    """Run the receive loop beside the session task until one ends (or the server stops the
    session: shutdown, wall-clock limit); then finish both and send the final."""
    stopping = asyncio.Event()  # the receiver's own stop check: wait_for (3.11) may swallow a cancel
    receiver = asyncio.create_task(_receive(websocket, session, config, outbox, stopping))
    worker = asyncio.create_task(session.run())
    stopper = asyncio.create_task(connection.stop_requested())
    tasks = (receiver, worker, stopper)
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=config.max_session_wall_seconds or None, return_when=asyncio.FIRST_COMPLETED
        )
        close_code = protocol.NORMAL
        if worker in done:  # after eof or at the audio limit (the receiver still watches the socket)
            pass
        elif receiver in done:
            if receiver.result() == "idle":  # result() raises: gone, bad frame
                await outbox.send(
                    protocol.error_message("timeout", f"no audio for {config.idle_timeout:g} s")
                )
        else:  # stopped by the server (shutdown, wall clock): audio already received still counts
            reason = stopper.result() if stopper in done else WALL_LIMIT
            log.info("session %s: ending (%s)", connection.session_id, reason)
            close_code = protocol.GOING_AWAY if reason == SHUTDOWN else protocol.NORMAL
            stopping.set()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        await session.end_input()
        final: FinalTranscript = await worker
        await outbox.send(protocol.final_message(final))
        await outbox.close(close_code)
    finally:
        stopping.set()
        await _cancel_all(tasks)


async def _cancel_all(tasks: tuple[asyncio.Task[object], ...]) -> None:
    """Cancel ``tasks`` and wait for them. Cancels again while one runs on: Python 3.11's
    ``wait_for`` drops a cancellation that arrives as its awaitable completes."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the session's outcome was handled already


async def _receive(
    websocket: WebSocket, session: LiveSession, config: ServerConfig, outbox: Outbox, stopping: asyncio.Event
) -> str:
    """Feed binary frames to the session until ``eof``; the only socket reader. Returns "idle"
    when no frame came for the idle timeout. After ``eof`` it only watches for the client going
    away (raising :class:`WebSocketDisconnect`), so a vanished client's final is not computed.

    Audio beyond the rate limit is not refused but waited for: while the gate says so, nothing
    is read from the socket, so the client's sends block (TCP backpressure)."""
    loop = asyncio.get_running_loop()
    gate = AudioRateGate(AudioRate(config.max_audio_rate, config.audio_burst_seconds), loop.time())
    ended = False
    while not stopping.is_set():
        try:
            message = await asyncio.wait_for(
                websocket.receive(), None if ended else config.idle_timeout or None
            )
        except asyncio.TimeoutError:
            return "idle"
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if ended:
            continue  # frames after eof are ignored
        data = message.get("bytes")
        if data is not None:
            if len(data) > config.max_frame_bytes:
                raise ProtocolError(
                    "too_large", f"frame of {len(data)} bytes is over the limit of {config.max_frame_bytes}"
                )
            await session.feed(data)
            pause = gate.delay(session.audio_seconds, loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
            continue
        try:
            protocol.parse_control(message.get("text") or "")
        except ProtocolError as e:
            await outbox.send(e.to_message())
            continue
        await session.end_input()
        ended = True
    return "stopped"


class _CleanStartupErrors:
    """Turn a :class:`StartupError` in the lifespan into one line instead of a traceback."""

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


def create_app(config: ServerConfig | None = None, transcriber: Transcriber | None = None) -> FastAPI:
    """A fresh app; ``config`` and ``transcriber`` default to the environment and a loaded model."""
    api = FastAPI(title="Real-time speech-to-text", lifespan=lifespan)
    if config is not None:
        api.state.config = config
    if transcriber is not None:
        api.state.transcriber = transcriber
    api.add_middleware(security.DocsGate)  # /docs and /openapi.json need the token too
    api.add_api_route("/health", health, methods=["GET"])
    api.add_api_websocket_route("/ws/transcribe", transcribe_ws)
    api.include_router(openai_api.router)
    metrics.install(api)
    return api


app = _CleanStartupErrors(create_app())
