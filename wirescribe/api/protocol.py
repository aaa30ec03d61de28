"""Wire protocol version 1 of ``/ws/transcribe``: parameters, messages, errors and close codes.

Pure: builds and checks plain dicts; the server sends them. See ``docs/protocol.md``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wirescribe.audio.decode import RAW_FORMATS
from wirescribe.streaming.policy import FinalTranscript, Update

PROTOCOL_VERSION = 1
FORMATS = ("auto", *RAW_FORMATS)
MIN_RATE, MAX_RATE = 8000, 48000

# Close codes (RFC 6455 and the protocol's table).
NORMAL = 1000
GOING_AWAY = 1001
UNSUPPORTED = 1003
POLICY = 1008
TOO_BIG = 1009
INTERNAL = 1011
TRY_AGAIN = 1013

CLOSE_FOR = {
    "bad_request": POLICY,
    "unauthorized": POLICY,
    "bad_audio": UNSUPPORTED,
    "too_large": TOO_BIG,
    "busy": TRY_AGAIN,
    "timeout": NORMAL,
    "internal": INTERNAL,
}


class ProtocolError(Exception):
    """An error the client is told about: ``error`` message with ``code``, then a close code
    (``close`` is None for errors after which the session goes on)."""

    def __init__(self, code: str, message: str, close: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = CLOSE_FOR.get(code, INTERNAL) if close is None and code != "bad_message" else close

    def to_message(self) -> dict[str, Any]:
        return error_message(self.code, self.message)


@dataclass(frozen=True)
class SessionParams:
    format: str = "auto"
    sample_rate: int = 16000
    language: str | None = None


def parse_params(
    query: Mapping[str, str],
    languages: Sequence[str],
    default_language: str | None,
) -> SessionParams:
    """Validate the connection's query parameters; :class:`ProtocolError` (1008) if any is bad."""
    fmt = query.get("format", "auto")
    if fmt not in FORMATS:
        raise ProtocolError("bad_request", f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    raw_rate = query.get("sample_rate", "16000")
    try:
        rate = int(raw_rate)
    except ValueError as e:
        raise ProtocolError("bad_request", f"sample_rate must be an integer, not {raw_rate!r}") from e
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ProtocolError("bad_request", f"sample_rate must be {MIN_RATE}-{MAX_RATE}, not {rate}")
    language = query.get("language") or default_language
    if language is not None and language not in languages:
        shown = ", ".join(list(languages)[:12]) + (", …" if len(languages) > 12 else "")
        raise ProtocolError("bad_request", f"language {language!r} is not supported by this model ({shown})")
    return SessionParams(fmt, rate, language)


def ready_message(session_id: str, model: str, params: SessionParams) -> dict[str, Any]:
    return {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "session_id": session_id,
        "model": model,
        "language": params.language,
        "sample_rate": params.sample_rate,
    }


def transcript_message(update: Update) -> dict[str, Any]:
    return {
        "type": "transcript",
        "text": update.text,
        "committed": update.committed,
        "tentative": update.tentative,
        "audio_seconds": round(update.audio_seconds, 3),
    }


def final_message(final: FinalTranscript) -> dict[str, Any]:
    return {
        "type": "final",
        "text": final.text,
        "segments": [
            {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text} for s in final.segments
        ],
        "audio_seconds": round(final.audio_seconds, 3),
    }


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def parse_control(text: str) -> str:
    """The ``type`` of a client text frame; :class:`ProtocolError` ``bad_message`` otherwise."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("bad_message", "text frames must be JSON objects") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", 'text frames must be JSON objects with a "type"')
    if msg["type"] != "eof":
        shown = msg["type"] if len(msg["type"]) <= 40 else msg["type"][:40] + "…"  # no echo of big input
        raise ProtocolError("bad_message", f"unknown message type {shown!r}")
    return "eof"
