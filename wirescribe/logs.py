"""Log lines that say which session they belong to; level and format from the command line or
``STT_LOG_LEVEL`` / ``STT_LOG_FORMAT`` (read by :mod:`wirescribe.settings`).

The session id travels in a :class:`contextvars.ContextVar`: the code that starts a session
(or a request) sets :data:`session_id` once, and every line logged from that task — and from the
tasks it creates, which copy its context — carries it, whatever module logs it. Lines from
outside any session (startup, the scheduler's workers, uvicorn's access log) show ``-``.

Nothing is configured at import: :func:`configure` (or :func:`uvicorn_log_config`, for uvicorn's
own loggers too) is called by the entry point, :func:`configure_unless_configured` by the
app's lifespan.
"""

from __future__ import annotations

import json
import logging
import logging.config
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

session_id: ContextVar[str] = ContextVar("session_id", default="-")

LEVELS = ("critical", "error", "warning", "info", "debug")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [session=%(session_id)s] %(message)s"
_MARK = "_stt_handler"  # set on the handler configure() adds, so a second call replaces it


class SessionIdFilter(logging.Filter):
    """Puts the current :data:`session_id` on every record (``record.session_id``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, session, message (and the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "session": getattr(record, "session_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    if level.lower() not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    return logging.getLevelName(level.upper())


def configure(level: str | int = "info", fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) with the session id on each line.

    Calling it again replaces the handler it added before instead of adding a second one.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_formatter(fmt))
    handler.addFilter(SessionIdFilter())
    setattr(handler, _MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level))
    return handler


def configure_unless_configured(level: str = "info", fmt: str = "text") -> logging.Handler | None:
    """For the app's lifespan under a plain ``uvicorn server:app``, whose own log config leaves
    the root logger without handlers (the app's lines would be lost): configure it with the
    ``STT_LOG_*`` settings, unless it has handlers already (``stt-server`` configured it, or a
    test harness did). Returns the handler added, if any."""
    if logging.getLogger().handlers:
        return None
    return configure(level, fmt)


def uvicorn_log_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run(log_config=...)``: uvicorn's loggers
    and the application's share one handler, one format, and the session id."""
    _formatter(fmt)  # validates
    _level(level)
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"session": {"()": f"{__name__}.SessionIdFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["session"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own handlers are replaced by the root's (propagate), so one format rules
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
