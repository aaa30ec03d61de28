"""Log lines a client cannot forge and that hold no secret: control characters escaped, tokens
redacted, in every record of the process.

Clients put text into the logs: an upload's file name, the path and query of a request, at debug
level the headers of a WebSocket handshake. A file name holding ``"\\n2024-… INFO forged"``
would otherwise write a second, forged line; a right-to-left override would make a line read
differently from what it holds; ``?token=…``, ``?%74oken=…`` (which Starlette decodes to
``token``) or ``Authorization: Bearer …`` would put a credential on disk.

Why a log-record factory and not a filter on some loggers: a logger's filter sees only records
logged to that very logger (not those propagated from its children), a handler's filter only its
own handler, and under plain ``uvicorn server:app`` the handlers are uvicorn's. A record factory
(:func:`logging.setLogRecordFactory`) is called for every record of every logger, whoever
formats it later, so the guarantee holds for handlers the operator adds too. The factory
cleans the string arguments (uvicorn's access formatter reads them directly), the message built
from them (:meth:`SafeRecord.getMessage`: what ``str()`` of a non-string argument adds) and the
traceback text, whose continuation lines it indents: in the text format, a line that does not
start at column 0 is never a record of its own.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

REDACTED = "***"

# C0 controls, DEL, C1 controls (U+0085 NEL ends a line for str.splitlines and some viewers),
# the Unicode line and paragraph separators, and the bidirectional overrides and isolates
# ("Trojan Source": text that displays in another order than it reads).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Query keys whose values are credentials, compared after percent-decoding and lower-casing:
# ``token`` is the one this server reads; the others are what clients of other services (OAuth,
# API keys) send by habit, and a secret sent by mistake is still a secret.
SECRET_KEYS = frozenset({"token", "access_token", "api_key", "apikey", "key", "secret", "password"})
_QUERY_PAIR = re.compile(r"(?<![\w%.~+-])([\w%.~+-]+)=([^&;\s\"'#]*)")
# Credentials by their scheme, anywhere: "Authorization: Bearer abc", "(b'authorization', b'Bearer abc')".
_SCHEME = re.compile(r"(?i)\b(bearer|basic)(\s+)[\w.~+/=-]+")
# Headers that carry credentials, as "Name: value" (the WebSocket library's debug lines): the
# whole value. Sec-WebSocket-Protocol: where Deepgram's and OpenAI's browser clients put keys.
_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|sec-websocket-protocol|cookie|set-cookie|x-api-key)"
    r"(['\"]?\s*[:,]\s*(?:b?['\"])?)[^'\"\r\n]*"
)


def escape_controls(text: str) -> str:
    """``text`` with every control, line-separator and bidi-override character escaped
    (``\\n``, ``\\x1b``, ``\\u202e``): one log line stays one line and reads as it is."""
    return _CONTROLS.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _is_secret_key(key: str) -> bool:
    for _ in range(3):  # %2574oken decodes to %74oken, then to token: redact what any decoder sees
        decoded = urllib.parse.unquote_plus(key)
        if decoded == key:
            break
        key = decoded
    return key.strip().lower() in SECRET_KEYS


def _redact_pair(match: re.Match[str]) -> str:
    key = match.group(1)
    return f"{key}={REDACTED}" if _is_secret_key(key) and match.group(2) else match.group(0)


def redact(text: str) -> str:
    """``text`` without credentials: the values of ``token=`` (however its key is
    percent-encoded) and the other :data:`SECRET_KEYS`, ``Bearer``/``Basic`` credentials
    and the values of credential headers (``Authorization: Token …`` too) become ``***``."""
    if "=" in text:
        text = _QUERY_PAIR.sub(_redact_pair, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)


def clean(text: str) -> str:
    """What a log line may hold of ``text``: redacted, then control characters escaped."""
    return escape_controls(redact(text))


def _clean_arg(value: Any) -> Any:
    return clean(value) if isinstance(value, str) else value


def clean_record(record: logging.LogRecord) -> None:
    """Clean ``record`` in place: its string arguments, a message without arguments (a format
    string keeps its placeholders: only its control characters are escaped) and its traceback."""
    if isinstance(record.args, tuple):
        record.args = tuple(_clean_arg(a) for a in record.args)
    elif isinstance(record.args, dict):  # logging's single-mapping form: log.info("%(a)s", {...})
        record.args = {k: _clean_arg(v) for k, v in record.args.items()}
    if isinstance(record.msg, str):
        record.msg = escape_controls(record.msg) if record.args else clean(record.msg)
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatters use exc_text when it is set: a client's words in an exception message
        # cannot start a line at column 0, nor carry a token.
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = "\n".join("  " + redact(escape_controls(line)) for line in text.splitlines())


class SafeRecord(logging.LogRecord):
    """A record cleaned by :func:`clean_record`, whose message is cleaned once more after
    formatting (``str()`` of a non-string argument may hold a client's words)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        clean_record(self)

    def getMessage(self) -> str:  # logging's own name
        return clean(super().getMessage())


_lock = threading.Lock()
_installed: list[Callable[..., logging.LogRecord]] = []  # the factory before ours, while installed
_users = 0


def _factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    if previous is logging.LogRecord:
        return SafeRecord

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)  # someone else's factory (a tracing library's) first
        clean_record(record)
        return record

    return make


def install() -> Callable[[], None]:
    """Make every record of the process a :class:`SafeRecord`; returns the function that undoes
    it. Nested installs (two apps in one process) share one factory until the last one leaves."""
    global _users
    with _lock:
        if _users == 0:
            previous = logging.getLogRecordFactory()
            _installed.append(previous)
            logging.setLogRecordFactory(_factory(previous))
        _users += 1
    removed = False

    def remove() -> None:
        global _users
        nonlocal removed
        with _lock:
            if removed:
                return
            removed = True
            _users -= 1
            if _users == 0:
                logging.setLogRecordFactory(_installed.pop())

    return remove


def installed() -> bool:
    """True while :func:`install` is in effect."""
    return _users > 0
