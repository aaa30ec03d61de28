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
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import protocol
from audio_decode import DecoderFailure, open_decoder
from config import ServerConfig
from protocol import ProtocolError
from scheduler import Scheduler, SchedulerClosed
from session import LiveSession
from streaming import FinalTranscript, StreamingPolicy
from transcriber import Transcriber
from vad import VoiceActivity, silero_probability

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The server cannot start (model or configuration); the message is the whole story."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from config import ConfigError
    from transcriber import ModelLoadError

    try:
        config: ServerConfig = getattr(app.state, "config", None) or ServerConfig.from_env()
        transcriber = getattr(app.state, "transcriber", None)
        if transcriber is None:
            transcriber = await asyncio.to_thread(Transcriber.load, config.model)
        probability = await asyncio.to_thread(silero_probability)
    except (ConfigError, ModelLoadError) as e:
        raise StartupError(str(e)) from None
    app.state.config = config
    app.state.transcriber = transcriber
    app.state.vad_probability = probability
    app.state.sessions = {}
    app.state.scheduler = Scheduler(transcriber.transcribe, workers=config.scheduler_workers)
    await app.state.scheduler.start()
    try:
        yield
    finally:
        await app.state.scheduler.stop()


async def health(request: Request) -> JSONResponse:
    """200 with the model's name once it is loaded."""
    state = request.app.state
    transcriber = getattr(state, "transcriber", None)
    if transcriber is None or not hasattr(state, "scheduler"):
        return JSONResponse({"status": "loading"}, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
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
    outbox = _Outbox(websocket)
    try:
        params = protocol.parse_params(
            websocket.query_params, transcriber.supported_languages, transcriber.default_language
        )
        if len(state.sessions) >= config.max_sessions:
            raise ProtocolError("busy", f"the server is at its limit of {config.max_sessions} sessions")
    except ProtocolError as e:
        await outbox.fail(e)
        return
    session_id = uuid.uuid4().hex[:12]
    state.sessions[session_id] = websocket
    session: LiveSession | None = None
    try:
        decoder = await open_decoder(params.format, params.sample_rate)
        vad = VoiceActivity(state.vad_probability)
        policy = StreamingPolicy(vad, language=params.language)
        session = LiveSession(
            decoder, policy, state.scheduler, outbox.send,
            language=params.language, max_seconds=config.max_session_seconds,
            context_seconds=config.encoder_context if config.encoder_context < 30 else None,
            session_id=session_id,
        )  # fmt: skip
        await outbox.send(protocol.ready_message(session_id, transcriber.name, params))
        await _serve(websocket, session, config, outbox)
    except WebSocketDisconnect:
        log.info("session %s: client went away", session_id)
    except ProtocolError as e:
        await outbox.fail(e)
    except (DecoderFailure, SchedulerClosed) as e:
        await outbox.fail(ProtocolError("internal", str(e)))
    finally:
        state.sessions.pop(session_id, None)


async def _serve(websocket: WebSocket, session: LiveSession, config: ServerConfig, outbox: _Outbox) -> None:
    """Run the receive loop beside the session task until one ends; then finish both."""
    receiver = asyncio.create_task(_receive(websocket, session, config, outbox))
    worker = asyncio.create_task(session.run())
    try:
        done, _ = await asyncio.wait({receiver, worker}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done and receiver.result() == "idle":  # result() raises: gone, bad frame
            await outbox.send(protocol.error_message("timeout", f"no audio for {config.idle_timeout:g} s"))
            await session.end_input()
        final: FinalTranscript = await worker
        await outbox.send(protocol.final_message(final))
        await outbox.close(protocol.NORMAL)
    finally:
        for task in (receiver, worker):
            task.cancel()
        for task in (receiver, worker):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _receive(websocket: WebSocket, session: LiveSession, config: ServerConfig, outbox: _Outbox) -> str:
    """Feed binary frames to the session until ``eof`` (or ``idle``); the only socket reader."""
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), config.idle_timeout or None)
        except asyncio.TimeoutError:
            return "idle"
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        if data is not None:
            if len(data) > config.max_frame_bytes:
                raise ProtocolError("too_large", f"frame of {len(data)} bytes is over the limit of {config.max_frame_bytes}")
            await session.feed(data)
            continue
        try:
            protocol.parse_control(message.get("text") or "")
        except ProtocolError as e:
            await outbox.send(e.to_message())
            continue
        await session.end_input()
        return "eof"


class _Outbox:
    """Serialises sends from the receive loop and the session task; never raises on a gone peer."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        self._lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                await self._ws.send_json(message)
            except (WebSocketDisconnect, RuntimeError, OSError) as e:
                self._closed = True
                raise WebSocketDisconnect(1006) from e

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self._ws.close(code, reason)

    async def fail(self, error: ProtocolError) -> None:
        with contextlib.suppress(WebSocketDisconnect):
            await self.send(error.to_message())
        await self.close(error.close or protocol.INTERNAL, error.code)


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
    api.add_api_route("/health", health, methods=["GET"])
    api.add_api_websocket_route("/ws/transcribe", transcribe_ws)
    return api


app = _CleanStartupErrors(create_app())
