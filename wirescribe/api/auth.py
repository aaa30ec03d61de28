"""``POST /v1/auth/token``: a backend holding ``STT_TOKEN`` mints a temporary token for a browser.

Shaped after Deepgram's ``POST /v1/auth/grant`` (the long-lived key in ``Authorization``, a JSON
body with the lifetime, an ``expires_in`` in the answer) and OpenAI's Realtime client secrets
(an absolute ``expires_at`` in Unix seconds, so a page knows when to ask again), with the two
restrictions a browser token wants here::

    POST /v1/auth/token
    Authorization: Bearer $STT_TOKEN
    {"expires_in": 60, "origin": "https://app.example", "max_sessions": 1}

    200 {"token": "wst1.…", "token_type": "Bearer", "expires_in": 60, "expires_at": 1767225660.0,
         "origin": "https://app.example", "max_sessions": 1}

Every field is optional: ``expires_in`` (seconds to connect, default 60, at most
``STT_TEMP_TOKEN_MAX_TTL``), ``origin`` (the one browser origin that may use it),
``max_sessions`` (sessions and uploads it may open). Only ``STT_TOKEN`` itself, as a Bearer
header, mints: a temporary token cannot (403), and the long-lived token is never taken from a
URL here. Errors come in the same ``{"error": {...}}`` shape as the upload route's.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from wirescribe.api import security
from wirescribe.api.deps import State
from wirescribe.api.openai_format import ApiError
from wirescribe.api.state import AppState
from wirescribe.api.tokens import DEFAULT_TTL, is_temporary

log = logging.getLogger(__name__)

router = APIRouter()

MAX_BODY = 4096  # bytes of JSON: three small fields
MAX_SESSIONS_PER_TOKEN = 1000
FIELDS = ("expires_in", "origin", "max_sessions")


@router.post("/v1/auth/token", summary="Mint a temporary token for a browser (needs STT_TOKEN)")
async def create_token(request: Request, state: State) -> JSONResponse:
    """A signed token that opens sessions (and uploads) for a short time; see the module."""
    try:
        _admit(request, state)
        body = await _read_body(request)
        expires_in, origin, max_sessions = _parse(
            body, state.settings.temp_token_max_ttl, state.settings.allowed_origins
        )
        assert state.tokens is not None  # _admit: STT_TOKEN is set
        token, grant = state.tokens.mint(expires_in, origin, max_sessions)
    except ApiError as e:
        log.info("token refused (%d): %s", e.status, e.message)
        state.metrics.count_error(e.metric)
        return e.response()
    log.info(
        "temporary token issued: %g s, origin %s, sessions %s",
        expires_in, origin or "any", max_sessions or "any",
    )  # fmt: skip
    answer = {
        "token": token,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "expires_at": grant.expires_at,
        "origin": origin,
        "max_sessions": max_sessions,
    }
    return JSONResponse(answer, headers={"Cache-Control": "no-store"})  # a credential: never cached


def _admit(request: Request, state: AppState) -> None:
    origin = request.headers.get("origin")
    if not security.origin_allowed(state.settings.allowed_origins, origin):
        raise ApiError(
            403, f"origin {origin!r} is not allowed", code="origin_not_allowed", metric="unauthorized"
        )
    expected = state.settings.token
    if expected is None or state.tokens is None:
        raise ApiError(
            404,
            "this server has no access token (STT_TOKEN), so it issues no temporary tokens:"
            " connect without one",
            code="no_token_configured",
        )
    scheme, _, presented = request.headers.get("authorization", "").strip().partition(" ")
    presented = presented.strip() if scheme.lower() == "bearer" else ""
    if presented and not security.token_matches(expected, presented) and is_temporary(presented):
        raise ApiError(403, "a temporary token cannot mint tokens", code="forbidden", metric="unauthorized")
    if not security.token_matches(expected, presented or None):
        raise ApiError(
            401,
            "the server's access token is required as Authorization: Bearer (never in the URL)",
            code="invalid_api_key",
            metric="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def _read_body(request: Request) -> dict[str, Any]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes", metric="too_large")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "the request body is not JSON") from e
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(
            400, f"unknown field(s) {', '.join(map(repr, unknown))}: the fields are {', '.join(FIELDS)}"
        )
    return body


def _parse(
    body: dict[str, Any], max_ttl: float, allowed_origins: tuple[str, ...]
) -> tuple[float, str | None, int | None]:
    expires_in = body.get("expires_in", DEFAULT_TTL)
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, (int, float))
        or not math.isfinite(expires_in)
    ):
        raise ApiError(400, "expires_in must be a number of seconds", param="expires_in")
    if not 1 <= expires_in <= max_ttl:
        raise ApiError(400, f"expires_in must be from 1 to {max_ttl:g} seconds", param="expires_in")
    origin = body.get("origin")
    if origin is not None:
        if not isinstance(origin, str) or "://" not in origin or len(origin) > 300:
            raise ApiError(400, "origin must be an origin like https://app.example", param="origin")
        origin = origin.strip().rstrip("/").lower()
        if not security.origin_allowed(allowed_origins, origin):
            raise ApiError(
                400, "origin is not one of STT_ALLOWED_ORIGINS: it could not connect", param="origin"
            )
    max_sessions = body.get("max_sessions")
    if max_sessions is not None and (
        isinstance(max_sessions, bool)
        or not isinstance(max_sessions, int)
        or not 1 <= max_sessions <= MAX_SESSIONS_PER_TOKEN
    ):
        raise ApiError(
            400,
            f"max_sessions must be a whole number from 1 to {MAX_SESSIONS_PER_TOKEN}",
            param="max_sessions",
        )
    return float(expires_in), origin, max_sessions
