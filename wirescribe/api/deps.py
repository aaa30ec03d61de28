"""FastAPI dependencies: the typed application state, and the access token (routes and docs)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from wirescribe.api import security
from wirescribe.api.state import AppState

STATE_KEY = "wirescribe"  # the one attribute of ``app.state`` the lifespan sets


def state_of_app(app: Any) -> AppState | None:
    """The app's state, or None before the lifespan has built it (still loading)."""
    state = getattr(app.state, STATE_KEY, None)
    return state if isinstance(state, AppState) else None


def state_of(connection: HTTPConnection) -> AppState | None:
    """The state of the app serving ``connection`` (None while it starts)."""
    return state_of_app(connection.app)


def get_state(connection: HTTPConnection) -> AppState:
    """The app's state; 503 while the server is still starting."""
    state = state_of(connection)
    if state is None:
        raise HTTPException(503, "the server is starting")
    return state


def require_token(connection: HTTPConnection) -> None:
    """401 unless the request carries the server's token (when it has one); 503 while the
    server starts (its settings, and so its token, are not known yet: closed, not open)."""
    expected = get_state(connection).settings.token
    if not security.token_matches(
        expected, security.presented_token(connection.headers, connection.query_params)
    ):
        raise HTTPException(401, "a valid access token is required", headers={"WWW-Authenticate": "Bearer"})


State = Annotated[AppState, Depends(get_state)]


class DocsGate:
    """ASGI middleware: FastAPI's generated ``/docs``, ``/redoc`` and ``/openapi.json`` are plain
    routes that no dependency reaches; they need the token too (when one is set)."""

    PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _below_mount(scope) in self.PATHS:
            try:
                require_token(HTTPConnection(scope))
            except HTTPException as e:
                response = JSONResponse({"detail": e.detail}, e.status_code, headers=e.headers)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _below_mount(scope: Scope) -> str:
    """The path below a mount: Starlette keeps the mount's prefix in ``path`` and names it in
    ``root_path`` (mounted at ``/stt``, ``/stt/docs`` is this app's ``/docs``)."""
    path, root = scope["path"], scope.get("root_path", "")
    return (path[len(root) :] or "/") if root and path.startswith(root) else path
