"""``/v2/listen``: Deepgram Flux (:mod:`.deepgram_flux`) as a dialect of the shared WebSocket edge
(:mod:`wirescribe.api.edge`), which owns everything else: caps, limits, the session, shutdown.

As on ``/v1/listen``, a handshake Deepgram would refuse (a bad query, a bad key, a full server)
gets Deepgram's HTTP answer (400, 401, 429 with its JSON body) before the socket is accepted: the
SDK raises ``ApiError`` with that status. Credentials are read as ``/v1/listen`` reads them
(``Authorization: Token …``/``Bearer …``, ``Sec-WebSocket-Protocol: token, …``, ``?token=``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import WebSocket
from fastapi.responses import JSONResponse

from wirescribe.api import edge
from wirescribe.api.compat.deepgram_flux import FluxLive, FluxOptions, parse_options
from wirescribe.api.compat.deepgram_live import DeepgramRefused, refusal
from wirescribe.api.compat.dialects import DeepgramDialect, edge_actions
from wirescribe.api.deps import State
from wirescribe.api.edge import Dialect, Message, SessionSetup
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.security import Grant
from wirescribe.api.state import AppState
from wirescribe.streaming.events import Event, SessionConfig


class FluxDialect(Dialect):
    name = "deepgram-flux"

    def __init__(self) -> None:
        self._flux: FluxLive | None = None

    @property
    def flux(self) -> FluxLive:
        assert self._flux is not None, "setup() first"
        return self._flux

    def render_error(self, error: ProtocolError) -> Message:
        return (self._flux or FluxLive(FluxOptions(), language=None)).error(error)

    def authorize(self, websocket: WebSocket, state: AppState) -> Grant | None:
        return DeepgramDialect().authorize(websocket, state)  # Deepgram's credentials, as /v1/listen

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        self._flux = flux_for(websocket, state)
        fmt, rate = self.flux.decoder_format
        return SessionSetup(fmt, rate, self.flux.config)

    def greeting(self, session_id: str, state: AppState, setup: SessionSetup) -> Sequence[Message]:
        return (self.flux.connected(),)

    def event(self, event: Event) -> Sequence[Message]:
        return self.flux.event(event)

    def binary(self, data: bytes) -> Sequence[edge.Action]:
        return edge_actions(self.flux.client_binary(data))

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[edge.Action]:
        return edge_actions(self.flux.client_text(text))


def flux_for(websocket: WebSocket, state: AppState) -> FluxLive:
    """The translator for a connection; ``bad_request`` for a query Flux would refuse."""
    try:
        options = parse_options(websocket.query_params, websocket.query_params.getlist("keyterm"))
    except DeepgramRefused as e:
        raise ProtocolError("bad_request", e.message) from e
    return FluxLive(options, language=state.transcriber.default_language)


async def listen_v2_ws(websocket: WebSocket, state: State) -> None:
    """``/v2/listen``: Deepgram Flux. A handshake Deepgram would refuse gets its HTTP answer."""
    dialect = FluxDialect()
    try:
        dialect.authorize(websocket, state)
        flux_for(websocket, state)
        if state.draining or state.at_capacity:
            raise ProtocolError("busy", "the server is at its session limit")
    except ProtocolError as e:
        answer = refusal(e.code, e.message)
        await websocket.send_denial_response(JSONResponse(answer.body, answer.status, answer.headers))
        return
    await edge.serve(websocket, state, dialect)


__all__ = ["FluxDialect", "listen_v2_ws"]
