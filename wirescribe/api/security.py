"""Access checks at the network edge: the access token, temporary tokens, allowed origins,
token-free logs.

* :func:`check_websocket` — for ``/ws/transcribe``: origin, then token; raises
  :class:`protocol.ProtocolError` ``unauthorized`` (close 1008). Returns the temporary token's
  :class:`~wirescribe.api.tokens.Grant` when one was used, whose session is counted by
  :func:`spend_websocket` once every other check has passed.
* :func:`authorize` — the same decision for any connection: ``STT_TOKEN`` itself, or a valid
  temporary token (:mod:`wirescribe.api.tokens`); the upload route uses it.
* :func:`token_matches` / :func:`presented_token` — what the HTTP routes' dependency
  (:func:`wirescribe.api.deps.require_token`) and the docs gate check: ``STT_TOKEN`` only (a
  temporary token opens sessions and uploads, nothing else).
* :func:`install_log_redaction` — tokens and control characters out of every log record
  (:mod:`wirescribe.logsafe`).

Tokens are compared with :func:`hmac.compare_digest`, so the time a wrong guess takes does not
tell how much of it was right.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from fastapi import WebSocket

from wirescribe import logsafe
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.tokens import Grant, TemporaryTokens, TokenRefused, is_temporary
from wirescribe.settings import Settings

QUERY_PARAM = "token"
TOKEN_REQUIRED = "a valid access token is required"


class AccessDenied(Exception):
    """No valid token; the message says why, for the client (it never quotes a token)."""


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


def authorize(
    expected: str | None, tokens: TemporaryTokens | None, presented: str | None, origin: str | None
) -> Grant | None:
    """Whether a client presenting ``presented`` (from ``origin``) may open a session or upload:
    None for ``STT_TOKEN`` itself (or when none is set), the grant of a valid temporary token,
    else :class:`AccessDenied`."""
    if expected is None or token_matches(expected, presented):
        return None
    if presented is not None and tokens is not None and is_temporary(presented):
        try:
            return tokens.verify(presented, origin)
        except TokenRefused as e:
            raise AccessDenied(str(e)) from e
    raise AccessDenied(TOKEN_REQUIRED)


def check_websocket(
    websocket: WebSocket, config: Settings, tokens: TemporaryTokens | None = None
) -> Grant | None:
    """Refuse a WebSocket whose origin is not allowed or whose token is missing or wrong; the
    grant of the temporary token it used, if it used one (``tokens``: None accepts none)."""
    origin = websocket.headers.get("origin")
    if not origin_allowed(config.allowed_origins, origin):
        raise ProtocolError("unauthorized", f"origin {origin!r} is not allowed")
    presented = presented_token(websocket.headers, websocket.query_params)
    try:
        return authorize(config.token, tokens, presented, origin)
    except AccessDenied as e:
        reason = str(e)
        if reason == TOKEN_REQUIRED:
            reason += " (?token= or Authorization: Bearer)"
        raise ProtocolError("unauthorized", reason) from None


def spend_websocket(tokens: TemporaryTokens | None, grant: Grant | None) -> None:
    """Count a session opened with a temporary token (its ``max_sessions``); ``unauthorized``
    when it has opened all it may. Called last, so a refused session does not use one up."""
    if tokens is None or grant is None:
        return
    try:
        tokens.use(grant)
    except TokenRefused as e:
        raise ProtocolError("unauthorized", str(e)) from None


def redact(text: str) -> str:
    """``text`` without credentials (``token=`` however spelled, ``Bearer …``, credential
    headers): see :func:`wirescribe.logsafe.redact`."""
    return logsafe.redact(text)


def install_log_redaction() -> Callable[[], None]:
    """Clean every log record of the process (tokens redacted, control characters escaped)
    while the app runs; returns the function that stops it."""
    return logsafe.install()
