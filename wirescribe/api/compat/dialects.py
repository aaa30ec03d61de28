"""``/v1/realtime`` and ``/v1/listen``: the OpenAI Realtime and Deepgram translators as dialects
of the shared WebSocket edge (:mod:`wirescribe.api.edge`), which owns everything else: auth,
caps, limits, the session, shutdown, metrics.

Deepgram's clients expect a refused handshake to be an HTTP status (400 bad query, 401 bad
key, 429 busy) with Deepgram's JSON body, so :func:`listen_ws` checks those before the edge
accepts the socket. OpenAI's clients expect the socket to open and an ``error`` event to follow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from wirescribe.api import edge, security, subprotocols
from wirescribe.api.compat.actions import Parsed
from wirescribe.api.compat.deepgram_live import DeepgramLive, DeepgramRefused, parse_options, refusal
from wirescribe.api.compat.openai_realtime import AUDIO_FORMATS, RealtimeError, RealtimeTranscription
from wirescribe.api.deps import State
from wirescribe.api.edge import (
    Audio,
    Dialect,
    Finalize,
    Message,
    Reply,
    SessionSetup,
)
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.security import Grant
from wirescribe.api.state import AppState
from wirescribe.audio.raw import RawConverter
from wirescribe.audio.types import SAMPLE_RATE
from wirescribe.audio.vad import VadOptions
from wirescribe.streaming.events import Event, SessionConfig
from wirescribe.streaming.policy import FinalTranscript


def edge_actions(parsed: Parsed) -> list[edge.Action]:
    """The translator's actions, then its replies (sent once the actions are carried out)."""
    return [*parsed.actions, Reply(tuple(parsed.replies))] if parsed.replies else list(parsed.actions)


def _presented(websocket: WebSocket) -> str | None:
    """The token as a Deepgram client presents it: ``Authorization: Token …`` (an API key) or
    ``Bearer …`` (a temporary token), or the browser's ``Sec-WebSocket-Protocol: token, …`` /
    ``bearer, …`` (:mod:`~wirescribe.api.subprotocols`); else ``?token=``."""
    scheme, _, value = websocket.headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    offered = subprotocols.credential(DeepgramDialect.name, websocket.scope)
    return offered or websocket.query_params.get(security.QUERY_PARAM) or None


def _authorize(websocket: WebSocket, state: AppState, presented: str | None) -> Grant | None:
    """Origin, then the token ``presented`` as the dialect's clients present it."""
    origin = websocket.headers.get("origin")
    if not security.origin_allowed(state.settings.allowed_origins, origin):
        raise ProtocolError("unauthorized", f"origin {origin!r} is not allowed")
    try:
        return security.authorize(state.settings.token, state.tokens, presented, origin)
    except security.AccessDenied as e:
        raise ProtocolError("unauthorized", str(e)) from None


class _OpenAIAudio:
    """The client's audio in the session's format as it stands — PCM16 at 24 kHz, or G.711 at
    8 kHz once ``session.update`` says so (only before any audio: the translator refuses a
    change after) — brought to float32 at 16 kHz here, for a session whose decoder is opened as
    ``f32`` at 16 kHz. So 8 kHz µ-law is one table lookup and one band-limited resampling to
    16 kHz, whatever format the connection opened with."""

    def __init__(self, name: str) -> None:
        self.name = name
        fmt, rate, _ = AUDIO_FORMATS[name]
        self._converter = RawConverter(fmt, rate)

    def __call__(self, data: bytes) -> bytes:
        return self._converter.convert(data).astype("<f4", copy=False).tobytes()

    def held(self) -> bytes:
        """What the resampler holds back, now (a commit must hear it); the stream goes on."""
        return self._converter.drain().astype("<f4", copy=False).tobytes()

    def tail(self) -> bytes:
        return self._converter.flush().astype("<f4", copy=False).tobytes()


class OpenAIRealtimeDialect(Dialect):
    name = "openai-realtime"

    def __init__(self) -> None:
        self._rt: RealtimeTranscription | None = None
        self._audio = _OpenAIAudio("pcm16")

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

    def authorize(self, websocket: WebSocket, state: AppState) -> Grant | None:
        """``Authorization: Bearer``, a browser's ``openai-insecure-api-key.KEY`` subprotocol
        (:mod:`~wirescribe.api.subprotocols`), or ``?token=``."""
        presented = security.presented_token(websocket.headers, {}) or subprotocols.credential(
            self.name, websocket.scope
        )
        return _authorize(websocket, state, presented or websocket.query_params.get(security.QUERY_PARAM))

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        t = state.transcriber
        headers: Mapping[str, str] = websocket.headers
        if subprotocols.openai_beta(websocket.scope):  # a browser's OpenAI-Beta: realtime=v1
            headers = {"openai-beta": "realtime=v1"}
        try:
            self._rt = RealtimeTranscription.connect(
                websocket.query_params, headers, model_name=t.name,
                languages=t.supported_languages, default_language=t.default_language, models=t,
            )  # fmt: skip
        except RealtimeError as e:
            raise ProtocolError("bad_request", e.message) from e
        self._audio = _OpenAIAudio(self.rt.settings.audio_format)
        return SessionSetup("f32", SAMPLE_RATE, self.rt.config, self.vad_options())

    def greeting(self, session_id: str, state: AppState, setup: SessionSetup) -> Sequence[Message]:
        return self.rt.opening()

    def event(self, event: Event) -> Sequence[Message]:
        return self.rt.event(event)

    def binary(self, data: bytes) -> Sequence[edge.Action]:
        return edge_actions(self.rt.client_binary(data))

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[edge.Action]:
        parsed = self.rt.client_text(text)
        if self.rt.settings.audio_format != self._audio.name:  # only before any audio
            self._audio = _OpenAIAudio(self.rt.settings.audio_format)
        actions: list[edge.Action] = []
        for action in edge_actions(parsed):
            data = b""  # a short append may be held back whole, for the resampler's next block
            if isinstance(action, Audio):
                data = self._audio(action.data)
            elif isinstance(action, Finalize):  # a commit hears it all: the held-back block first
                data = self._audio.held()
            if data:
                actions.append(Audio(data))
            if not isinstance(action, Audio):
                actions.append(action)
        return actions

    def held_audio(self) -> bytes:
        return self._audio.tail()

    def vad_options(self) -> VadOptions:
        return self.rt.vad_options if self._rt is not None else VadOptions()

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
        return _authorize(websocket, state, _presented(websocket))

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        self._dg = deepgram_for(websocket, state)
        fmt, rate = self.dg.decoder_format
        return SessionSetup(fmt, rate, self.dg.config)

    def event(self, event: Event) -> Sequence[Message]:
        return self.dg.event(event)

    def binary(self, data: bytes) -> Sequence[edge.Action]:
        return edge_actions(self.dg.client_binary(data))

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[edge.Action]:
        return edge_actions(self.dg.client_text(text))

    def final(self, final: FinalTranscript) -> Sequence[Message]:
        return self.dg.final(final.audio_seconds)


def deepgram_for(websocket: WebSocket, state: AppState) -> DeepgramLive:
    t = state.transcriber
    try:
        options = parse_options(
            websocket.query_params, websocket.query_params.getlist("keyterm"),
            t.supported_languages, t.default_language, t,
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
