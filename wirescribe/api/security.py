"""Access checks at the network edge: the access token, allowed origins, token-free logs.

* :func:`check_websocket` — for ``/ws/transcribe``: origin, then token; raises
  :class:`protocol.ProtocolError` ``unauthorized`` (close 1008).
* :func:`token_matches` / :func:`presented_token` — what the HTTP routes' dependency
  (:func:`wirescribe.api.deps.require_token`) and the docs gate check.
* :class:`RedactTokens` — keeps ``?token=…`` out of uvicorn's access and connection logs.

Tokens are compared with :func:`hmac.compare_digest`, so the time a wrong guess takes does not
tell how much of it was right.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping

from fastapi import WebSocket

from wirescribe.api.protocol import ProtocolError
from wirescribe.settings import Settings

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


def check_websocket(websocket: WebSocket, config: Settings) -> None:
    """Refuse a WebSocket whose origin is not allowed or whose token is missing or wrong."""
    origin = websocket.headers.get("origin")
    if not origin_allowed(config.allowed_origins, origin):
        raise ProtocolError("unauthorized", f"origin {origin!r} is not allowed")
    if not token_matches(config.token, presented_token(websocket.headers, websocket.query_params)):
        raise ProtocolError(
            "unauthorized", "a valid access token is required (?token= or Authorization: Bearer)"
        )


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
