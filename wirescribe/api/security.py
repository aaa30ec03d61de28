"""Access checks at the network edge: the access token, allowed origins, token-free logs.

* :func:`check_websocket` — for ``/ws/transcribe``: origin, then token; raises
  :class:`protocol.ProtocolError` ``unauthorized`` (close 1008).
* :func:`require_token` — a FastAPI dependency for any HTTP route other than ``/health``:
  ``router.add_api_route(..., dependencies=[Depends(require_token)])``; 401 without the token.
* :class:`DocsGate` — the same for FastAPI's generated ``/docs``, ``/redoc``, ``/openapi.json``,
  which are plain routes that no dependency reaches.
* :class:`RedactTokens` — keeps ``?token=…`` out of uvicorn's access and connection logs.

Tokens are compared with :func:`hmac.compare_digest`, so the time a wrong guess takes does not
tell how much of it was right.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping

from fastapi import HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from wirescribe.api.protocol import ProtocolError
from wirescribe.settings import ServerConfig

QUERY_PARAM = "token"
_REDACT = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)
_LOGGERS = ("uvicorn.error", "uvicorn.access")


def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token a client presented: ``Authorization: Bearer …`` first, else ``?token=``."""
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get(QUERY_PARAM) or None


def token_matches(expected: str | None, presented: str | None) -> bool:
    """True when no token is configured, or ``presented`` equals it (constant-time compare)."""
    if expected is None:
        return True
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def origin_allowed(allowed: tuple[str, ...], origin: str | None) -> bool:
    """Requests without an ``Origin`` (non-browser clients) pass; browsers' must be listed."""
    if origin is None or "*" in allowed:
        return True
    return origin.strip().rstrip("/").lower() in allowed


def check_websocket(websocket: WebSocket, config: ServerConfig) -> None:
    """Refuse a WebSocket whose origin is not allowed or whose token is missing or wrong."""
    origin = websocket.headers.get("origin")
    if not origin_allowed(config.allowed_origins, origin):
        raise ProtocolError("unauthorized", f"origin {origin!r} is not allowed")
    if not token_matches(config.token, presented_token(websocket.headers, websocket.query_params)):
        raise ProtocolError(
            "unauthorized", "a valid access token is required (?token= or Authorization: Bearer)"
        )


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless the request carries the server's token (if it has one)."""
    config: ServerConfig | None = getattr(request.app.state, "config", None)
    expected = config.token if config is not None else None
    if not token_matches(expected, presented_token(request.headers, request.query_params)):
        raise HTTPException(401, "a valid access token is required", headers={"WWW-Authenticate": "Bearer"})


class DocsGate:
    """ASGI middleware: FastAPI's API docs and schema need the token too (when one is set)."""

    PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.PATHS:
            request = Request(scope)
            try:
                require_token(request)
            except HTTPException as e:
                response = JSONResponse({"detail": e.detail}, e.status_code, headers=e.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def redact(text: str) -> str:
    """``text`` with the value of every ``token=`` query parameter replaced by ``***``."""
    return _REDACT.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    """A logging filter that removes ``?token=…`` values from records (uvicorn logs paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "token=" in record.msg.lower():
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> Callable[[], None]:
    """Add :class:`RedactTokens` to uvicorn's loggers; returns the function that removes it."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    flt = RedactTokens()
    for logger in loggers:
        logger.addFilter(flt)

    def remove() -> None:
        for logger in loggers:
            logger.removeFilter(flt)

    return remove
