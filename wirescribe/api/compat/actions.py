"""What a compat translator answers a client's message with: the session's actions (the shared
vocabulary of :mod:`wirescribe.api.actions`) and the replies its protocol wants."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from wirescribe.api.actions import Action


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
