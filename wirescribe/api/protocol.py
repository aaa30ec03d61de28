"""Wire protocol of ``/ws/transcribe`` (version 1.2): parameters, messages, errors, close codes.

Pure: builds and checks plain dicts; the server sends them. See ``docs/protocol.md``. The 1.1
additions (events, words, keyterms, prompt, endpointing, ``configure``/``finalize``/
``keepalive``) and the 1.2 ones (``turns`` and the ``eot_*`` settings: turn events) are opt-in:
a client that sends none of them gets exactly the message types of the version it was written for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from wirescribe.api import session_options
from wirescribe.api.session_options import OptionError
from wirescribe.api.turn_options import TURN_SETTINGS, turn_settings
from wirescribe.asr.types import Word
from wirescribe.audio.decode import RAW_FORMATS
from wirescribe.streaming.errors import SessionError
from wirescribe.streaming.events import (
    EagerEndOfTurn,
    SessionConfig,
    SpeechStarted,
    TurnEnded,
    TurnResumed,
    TurnStarted,
    UtteranceEnded,
)
from wirescribe.streaming.policy import FinalTranscript

PROTOCOL_VERSION = 1.2
CONTROL_TYPES = ("eof", "finalize", "keepalive", "configure")
CONFIGURABLE = ("keyterms", "prompt", "language", "endpointing", *TURN_SETTINGS)
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


class ProtocolError(SessionError):
    """An error the client is told about: ``error`` message with ``code``, then a close code
    (``close`` is None for errors after which the session goes on).

    A :class:`~wirescribe.streaming.errors.SessionError` too: the streaming layer raises those
    without knowing the wire, and :meth:`of` gives them their close code here."""

    def __init__(self, code: str, message: str, close: int | None = None) -> None:
        super().__init__(code, message)
        self.close = CLOSE_FOR.get(code, INTERNAL) if close is None and code != "bad_message" else close

    @classmethod
    def of(cls, error: SessionError) -> ProtocolError:
        """``error`` as the protocol's error (itself when it is one already): a session's error
        ends it with the close code of its code (``bad_audio``: 1003, ``internal``: 1011)."""
        if isinstance(error, ProtocolError):
            return error
        return cls(error.code, error.message)

    def to_message(self) -> dict[str, Any]:
        return error_message(self.code, self.message)


@dataclass(frozen=True)
class SessionParams:
    format: str = "auto"
    sample_rate: int = 16000
    language: str | None = None
    events: bool = False  # speech_started / utterance_end
    words: bool = False  # words in transcript and final segments
    config: SessionConfig = field(default_factory=SessionConfig)  # language set from ``language``

    def __post_init__(self) -> None:
        if self.config.language != self.language:
            object.__setattr__(self, "config", replace(self.config, language=self.language))


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
    try:
        if language is not None:
            session_options.language(language, languages)
        events = session_options.flag("events", query.get("events", "false"))
        words = session_options.flag("words", query.get("words", "false"))
        turns = session_options.flag("turns", query.get("turns", "false"))
        config = SessionConfig(
            turns=turns,
            language=language,
            keyterms=session_options.keyterms_from_query(query.get("keyterms", "")),
            prompt=session_options.prompt(query.get("prompt", "")),
            endpointing_ms=session_options.endpointing(
                query.get("endpointing", str(SessionConfig.endpointing_ms))
            ),
        )
        config = _turns(config, {k: v for k, v in query.items() if k in TURN_SETTINGS})
    except OptionError as e:
        raise ProtocolError("bad_request", str(e)) from e
    return SessionParams(fmt, rate, language, events, words, config)


def _turns(config: SessionConfig, values: Mapping[str, object]) -> SessionConfig:
    """The turn settings, for a session that asked for turns (they mean nothing without)."""
    if values and not config.turns:
        raise OptionError(f"{next(iter(values))} needs turns=true")
    return turn_settings(config, values)


def ready_message(session_id: str, model: str, params: SessionParams, node: str = "") -> dict[str, Any]:
    return {
        "type": "ready",
        "protocol": PROTOCOL_VERSION,
        "session_id": session_id,
        "model": model,
        "language": params.language,
        "sample_rate": params.sample_rate,
        "node": node,
    }


class Transcribed(Protocol):
    """What a ``transcript`` message shows: a policy ``Update`` or a ``TranscriptChanged``."""

    @property
    def text(self) -> str: ...
    @property
    def committed(self) -> str: ...
    @property
    def tentative(self) -> str: ...
    @property
    def audio_seconds(self) -> float: ...


def transcript_message(update: Transcribed, words: Sequence[Word] | None = None) -> dict[str, Any]:
    """``words``: the words this message appends to ``committed`` (None: the client did not ask
    for words, and the message has no ``words`` field)."""
    msg: dict[str, Any] = {
        "type": "transcript",
        "text": update.text,
        "committed": update.committed,
        "tentative": update.tentative,
        "audio_seconds": round(update.audio_seconds, 3),
    }
    if words is not None:
        msg["words"] = word_list(words)
    return msg


def word_list(words: Sequence[Word]) -> list[dict[str, Any]]:
    return [
        {
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "text": w.text,
            "confidence": round(w.probability, 3),
        }
        for w in words
    ]


def final_message(final: FinalTranscript, words: bool = False) -> dict[str, Any]:
    segments = []
    for s in final.segments:
        segment: dict[str, Any] = {"start": round(s.start, 2), "end": round(s.end, 2), "text": s.text}
        if words:
            segment["words"] = word_list(s.words)
        segments.append(segment)
    return {
        "type": "final",
        "text": final.text,
        "segments": segments,
        "audio_seconds": round(final.audio_seconds, 3),
    }


def speech_started_message(event: SpeechStarted) -> dict[str, Any]:
    return {"type": "speech_started", "at": event.at}


def utterance_end_message(event: UtteranceEnded) -> dict[str, Any]:
    return {
        "type": "utterance_end",
        "start": event.start,
        "end": event.end,
        "text": event.text,
        "words": word_list(event.words),
    }


def configured_message(config: SessionConfig) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "configured",
        "language": config.language,
        "keyterms": list(config.keyterms),
        "prompt": config.prompt,
        "endpointing": config.endpointing_ms,
    }
    if config.turns:
        msg |= {
            "eot_threshold": config.eot_threshold,
            "eager_eot_threshold": config.eager_eot_threshold,
            "eot_timeout_ms": config.eot_timeout_ms,
        }
    return msg


TurnMessageEvent = TurnStarted | EagerEndOfTurn | TurnResumed | TurnEnded


def turn_message(event: TurnMessageEvent, words: bool = False) -> dict[str, Any]:
    """A turn event of protocol 1.2 (``turns=true``); ``words`` with ``words=true``."""
    if isinstance(event, TurnStarted):
        return {"type": "start_of_turn", "turn": event.turn, "at": round(event.at, 3)}
    if isinstance(event, TurnResumed):
        return {"type": "turn_resumed", "turn": event.turn, "at": round(event.at, 3),
                "confidence": round(event.confidence, 3)}  # fmt: skip
    msg: dict[str, Any] = {
        "type": "end_of_turn" if isinstance(event, TurnEnded) else "eager_end_of_turn",
        "turn": event.turn,
        "text": event.text,
        "confidence": round(event.confidence, 3),
        "start": round(event.start, 3),
        "end": round(event.end, 3),
    }
    if isinstance(event, TurnEnded):
        msg["trigger"] = event.trigger.value
    if words:
        msg["words"] = word_list(event.words)
    return msg


def error_message(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


@dataclass(frozen=True)
class Control:
    """A client's text frame: ``kind`` is one of :data:`CONTROL_TYPES`; ``config`` the settings a
    ``configure`` asks for (the current ones with its changes applied)."""

    kind: str
    config: SessionConfig | None = None


def parse_control(text: str, current: SessionConfig | None = None, languages: Sequence[str] = ()) -> Control:
    """A client text frame; :class:`ProtocolError` ``bad_message`` for anything not understood
    (a bad ``configure`` changes nothing: it is checked whole before it applies)."""
    try:
        msg = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("bad_message", "text frames must be JSON objects") from e
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", 'text frames must be JSON objects with a "type"')
    kind = msg["type"]
    if kind not in CONTROL_TYPES:
        raise ProtocolError("bad_message", f"unknown message type {session_options.shown(kind)}")
    if kind != "configure":
        return Control(kind)
    try:
        return Control(kind, _configure(msg, current or SessionConfig(), languages))
    except OptionError as e:
        raise ProtocolError("bad_message", f"configure: {e}; nothing was changed") from e


def _configure(msg: dict[str, Any], current: SessionConfig, languages: Sequence[str]) -> SessionConfig:
    unknown = [k for k in msg if k != "type" and k not in CONFIGURABLE]
    if unknown:
        raise OptionError(
            f"unknown setting {session_options.shown(str(unknown[0]))} (one of {', '.join(CONFIGURABLE)})"
        )
    config = current
    if "keyterms" in msg:
        terms = msg["keyterms"]
        if not isinstance(terms, list):
            raise OptionError("keyterms must be a JSON list of strings")
        config = replace(config, keyterms=session_options.keyterms(terms))
    if "prompt" in msg:
        config = replace(config, prompt=session_options.prompt(msg["prompt"]))
    if "language" in msg:
        value = msg["language"]
        if value == session_options.AUTO and len(languages) > 1:  # a multilingual model: detect it
            config = replace(config, language=None)
        else:
            config = replace(config, language=session_options.language(value, languages))
    if "endpointing" in msg:
        if isinstance(msg["endpointing"], str):  # JSON has numbers: a string is a client's bug
            raise OptionError("endpointing must be a number of milliseconds")
        config = replace(config, endpointing_ms=session_options.endpointing(msg["endpointing"]))
    turn_values = {k: v for k, v in msg.items() if k in TURN_SETTINGS}
    if any(isinstance(v, str) for v in turn_values.values()):
        raise OptionError("turn settings must be JSON numbers")
    return _turns(config, turn_values)
