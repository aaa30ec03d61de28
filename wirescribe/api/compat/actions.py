"""What a client's message asks of the session, whatever the protocol: plain frozen values."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from wirescribe.streaming.events import SessionConfig

ActionKind = Literal["audio", "eof", "finalize", "keepalive", "configure"]


@dataclass(frozen=True)
class Action:
    """``audio``: ``data`` to feed; ``eof``: no more audio (final, then close); ``finalize``:
    commit what was heard now and go on; ``keepalive``: the client is there; ``configure``: the
    session's settings are now ``config``."""

    kind: ActionKind
    data: bytes = b""
    config: SessionConfig | None = None


@dataclass(frozen=True)
class Parsed:
    """What one client message comes to: actions for the session, then replies to send."""

    actions: tuple[Action, ...] = ()
    replies: tuple[dict[str, Any], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Refusal:
    """A connection refused before the WebSocket is accepted (a protocol whose clients expect an
    HTTP status, as Deepgram's do): ``status`` and the JSON ``body`` of the response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def new_id(prefix: str, length: int = 20) -> str:
    """A random id in the vendors' style (``event_…``, ``item_…``, ``sess_…``)."""
    return f"{prefix}{uuid.uuid4().hex[:length]}"
