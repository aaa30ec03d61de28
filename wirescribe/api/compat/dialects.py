"""``/v1/realtime`` and ``/v1/listen``: the OpenAI Realtime and Deepgram translators as dialects
of the shared WebSocket edge (:mod:`wirescribe.api.edge`), which owns everything else: auth,
caps, limits, the session, shutdown, metrics.

Deepgram's clients expect a refused handshake to be an HTTP status (400 bad query, 401 bad
key, 429 busy) with Deepgram's JSON body, so :func:`listen_ws` checks those before the edge
accepts the socket. OpenAI's clients expect the socket to open and an ``error`` event to follow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from fastapi import WebSocket
from fastapi.responses import JSONResponse

from wirescribe.api import edge, security
from wirescribe.api.compat.actions import Parsed
from wirescribe.api.compat.deepgram_live import DeepgramLive, DeepgramRefused, parse_options, refusal
from wirescribe.api.compat.openai_realtime import AUDIO_FORMATS, RealtimeError, RealtimeTranscription
from wirescribe.api.deps import State
from wirescribe.api.edge import (
    Audio,
    Dialect,
    Message,
    Reply,
    SessionSetup,
)
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.security import Grant
from wirescribe.api.state import AppState
from wirescribe.audio.decode import Resampler, g711_to_float
from wirescribe.streaming.events import Event, SessionConfig
from wirescribe.streaming.policy import FinalTranscript


def _edge_actions(parsed: Parsed) -> list[edge.Action]:
    """The translator's actions, then its replies (sent once the actions are carried out)."""
    return [*parsed.actions, Reply(tuple(parsed.replies))] if parsed.replies else list(parsed.actions)


def _presented(websocket: WebSocket) -> str | None:
    """The token as a Deepgram client presents it: ``Authorization: Token …`` (an API key) or
    ``Bearer …`` (a temporary token), or the browser's ``Sec-WebSocket-Protocol: token, …``;
    else ``?token=``."""
    scheme, _, value = websocket.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(protocols) == 2 and protocols[0].lower() in ("token", "bearer") and protocols[1]:
        return protocols[1]
    return websocket.query_params.get(security.QUERY_PARAM) or None


class _G711To24k:
    """G.711 chosen by ``session.update`` after the session opened as PCM16 at 24 kHz: each
    append is expanded by the G.711 table and brought to 24 kHz, so the session's decoder (fixed
    at connect) reads it."""

    def __init__(self, fmt: str) -> None:
        self._fmt = fmt
        self._up = Resampler(8000, 24000)

    def __call__(self, data: bytes) -> bytes:
        samples = self._up.process(g711_to_float(data, self._fmt))
        return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


class OpenAIRealtimeDialect(Dialect):
    name = "openai-realtime"

    def __init__(self) -> None:
        self._rt: RealtimeTranscription | None = None
        self._convert: _G711To24k | None = None

    @property
    def rt(self) -> RealtimeTranscription:
        assert self._rt is not None, "setup() first"
        return self._rt

    def render_error(self, error: ProtocolError) -> Message:
        if self._rt is None:
            return RealtimeTranscription(
                beta=False, model_name="", languages=(), default_language=None
            ).error_message(error)
        return self._rt.error_message(error)

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        t = state.transcriber
        try:
            self._rt = RealtimeTranscription.connect(
                websocket.query_params, websocket.headers, model_name=t.name,
                languages=t.supported_languages, default_language=t.default_language,
            )  # fmt: skip
        except RealtimeError as e:
            raise ProtocolError("bad_request", e.message) from e
        fmt, rate = self.rt.decoder_format
        return SessionSetup(fmt, rate, self.rt.config)

    def greeting(self, session_id: str, state: AppState, setup: SessionSetup) -> Sequence[Message]:
        return self.rt.opening()

    def event(self, event: Event) -> Sequence[Message]:
        return self.rt.event(event)

    def binary(self, data: bytes) -> Sequence[edge.Action]:
        return _edge_actions(self.rt.client_binary(data))

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[edge.Action]:
        before = self.rt.settings.audio_format
        parsed = self.rt.client_text(text)
        fmt = self.rt.settings.audio_format
        if fmt != before:  # only before any audio (the translator refuses it after)
            self._convert = _G711To24k(AUDIO_FORMATS[fmt][0]) if fmt != "pcm16" else None
        actions = _edge_actions(parsed)
        if self._convert is not None:
            actions = [Audio(self._convert(a.data)) if isinstance(a, Audio) else a for a in actions]
        return actions

    def final(self, final: FinalTranscript) -> Sequence[Message]:
        return self.rt.final()


class DeepgramDialect(Dialect):
    name = "deepgram"

    def __init__(self) -> None:
        self._dg: DeepgramLive | None = None

    @property
    def dg(self) -> DeepgramLive:
        assert self._dg is not None, "setup() first"
        return self._dg

    def render_error(self, error: ProtocolError) -> Message:
        message, _, _ = (self._dg or DeepgramLive(parse_options({}, [], (), None), model_name="")).error(
            error
        )
        return message

    def authorize(self, websocket: WebSocket, state: AppState) -> Grant | None:
        origin = websocket.headers.get("origin")
        if not security.origin_allowed(state.settings.allowed_origins, origin):
            raise ProtocolError("unauthorized", f"origin {origin!r} is not allowed")
        try:
            return security.authorize(state.settings.token, state.tokens, _presented(websocket), origin)
        except security.AccessDenied as e:
            raise ProtocolError("unauthorized", str(e)) from None

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        self._dg = deepgram_for(websocket, state)
        fmt, rate = self.dg.decoder_format
        return SessionSetup(fmt, rate, self.dg.config)

    def event(self, event: Event) -> Sequence[Message]:
        return self.dg.event(event)

    def binary(self, data: bytes) -> Sequence[edge.Action]:
        return _edge_actions(self.dg.client_binary(data))

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[edge.Action]:
        return _edge_actions(self.dg.client_text(text))

    def final(self, final: FinalTranscript) -> Sequence[Message]:
        return self.dg.final(final.audio_seconds)


def deepgram_for(websocket: WebSocket, state: AppState) -> DeepgramLive:
    t = state.transcriber
    try:
        options = parse_options(
            websocket.query_params, websocket.query_params.getlist("keyterm"),
            t.supported_languages, t.default_language,
        )  # fmt: skip
    except DeepgramRefused as e:
        raise ProtocolError("bad_request", e.message) from e
    return DeepgramLive(options, model_name=t.name)


async def realtime_ws(websocket: WebSocket, state: State) -> None:
    """``/v1/realtime``: OpenAI Realtime transcription sessions."""
    await edge.serve(websocket, state, OpenAIRealtimeDialect())


async def listen_ws(websocket: WebSocket, state: State) -> None:
    """``/v1/listen``: Deepgram live transcription. A handshake that Deepgram would refuse gets
    Deepgram's HTTP answer (400, 401, 429) before the socket is accepted."""
    dialect = DeepgramDialect()
    try:
        dialect.authorize(websocket, state)
        deepgram_for(websocket, state)
        if state.draining or state.at_capacity:
            raise ProtocolError("busy", "the server is at its session limit")
    except ProtocolError as e:
        answer = refusal(e.code, e.message)
        await websocket.send_denial_response(JSONResponse(answer.body, answer.status, answer.headers))
        return
    await edge.serve(websocket, state, dialect)


__all__ = ["DeepgramDialect", "OpenAIRealtimeDialect", "listen_ws", "realtime_ws"]
