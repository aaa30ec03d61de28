"""What a client's frame asks of its live session, whatever the wire protocol: plain values.

Each protocol's dialect turns its client's frames into these (``api/ws.py``, ``api/compat/``);
the shared edge (``api/edge.py``) carries them out. ``kind`` names each for logs and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from wirescribe.streaming.events import SessionConfig

Message = dict[str, Any]


@dataclass(frozen=True)
class Audio:
    """Audio bytes of the session's format, to decode."""

    data: bytes
    kind: ClassVar[str] = "audio"


@dataclass(frozen=True)
class End:
    """No more audio: transcribe the rest, send the final, close."""

    kind: ClassVar[str] = "eof"


@dataclass(frozen=True)
class Finalize:
    """Commit what was heard so far; the session goes on."""

    kind: ClassVar[str] = "finalize"


@dataclass(frozen=True)
class KeepAlive:
    """The client is there (the idle timer restarts, as with any frame)."""

    kind: ClassVar[str] = "keepalive"


@dataclass(frozen=True)
class Configure:
    """The session's settings are now ``config``, from its next model call."""

    config: SessionConfig
    kind: ClassVar[str] = "configure"


@dataclass(frozen=True)
class Reply:
    """Messages to send back at once (an acknowledgement the protocol wants)."""

    messages: tuple[Message, ...]
    kind: ClassVar[str] = "reply"


Action = Audio | End | Finalize | KeepAlive | Configure | Reply
