"""Replies to one WebSocket client: serialised, bounded in time, never raising on a gone peer.

The receive loop and the session task both send (errors, transcripts, the final); one lock keeps
their frames whole. A client that stops reading makes the socket's send block once the
transport's buffers are full; a send still blocked after ``send_timeout`` seconds ends the
session (:class:`SlowClient`) instead of letting the session queue replies without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from wirescribe.api import protocol
from wirescribe.api.protocol import ProtocolError

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0  # seconds a close frame may wait for room in the socket's buffer


class SlowClient(WebSocketDisconnect):
    """A send blocked for longer than the send timeout: the client is not reading."""


class Outbox:
    """Serialises sends from the receive loop and the session task; never raises on a gone peer
    (it raises :class:`WebSocketDisconnect`, which the server treats as the client leaving)."""

    def __init__(
        self,
        websocket: WebSocket,
        send_timeout: float = 0.0,
        session_id: str = "-",
        on_error: Callable[[str], None] | None = None,
        render_error: Callable[[ProtocolError], dict[str, Any]] | None = None,
    ) -> None:
        """``on_error(code)`` is called for every error sent (the metrics' count);
        ``render_error`` shapes an error for the client's protocol (default: the native one)."""
        self._ws = websocket
        self._on_error = on_error
        self._render_error = render_error or ProtocolError.to_message
        self._timeout = send_timeout or None
        self._lock = asyncio.Lock()
        self._closed = False
        self.session_id = session_id

    async def report(self, error: ProtocolError) -> None:
        """Send ``error`` in the client's protocol; the session goes on (see :meth:`fail`)."""
        if self._on_error is not None:
            self._on_error(error.code)
        await self._send_timed(self._render_error(error))

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "error" and self._on_error is not None:
            self._on_error(str(message.get("code")))
        await self._send_timed(message)

    async def _send_timed(self, message: dict[str, Any]) -> None:
        try:
            await asyncio.wait_for(self._send(message), self._timeout)
        except asyncio.TimeoutError as e:
            self._closed = True
            log.warning("session %s: a reply waited %g s for the client to read; ending the session",
                        self.session_id, self._timeout)  # fmt: skip
            abort_connection(self._ws)
            raise SlowClient(1008, "client not reading") from e

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._lock:
            if self._closed:
                return
            try:
                await self._ws.send_json(message)
            except (WebSocketDisconnect, RuntimeError, OSError) as e:
                self._closed = True
                raise WebSocketDisconnect(1006) from e

    async def close(self, code: int, reason: str = "") -> None:
        """Send a close frame (bounded wait: a stalled client is cut off instead)."""
        try:
            await asyncio.wait_for(self._close(code, reason), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            abort_connection(self._ws)

    async def _close(self, code: int, reason: str) -> None:
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
                await self._ws.close(code, reason)

    async def fail(self, error: ProtocolError) -> None:
        """Tell the client what went wrong, then close with the error's code."""
        with contextlib.suppress(WebSocketDisconnect):
            await self.report(error)
        await self.close(error.close or protocol.INTERNAL, error.code)


def abort_connection(websocket: WebSocket) -> None:
    """Drop the TCP connection at once (best effort, uvicorn only).

    ASGI has no "abort": after a close the server waits for its write buffer to drain, which a
    client that never reads never lets happen, so the socket would stay open for as long as the
    peer keeps it. uvicorn's ``receive`` is a method of its protocol object, which owns the
    transport; under another server this does nothing and the connection ends when the peer goes.
    """
    owner = getattr(websocket._receive, "__self__", None)  # private on purpose: see the docstring
    transport = getattr(owner, "transport", None)
    abort = getattr(transport, "abort", None)
    if callable(abort):
        abort()
