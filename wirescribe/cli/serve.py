"""``stt-server``: run the server under uvicorn with the project's logging.

    stt-server --host 0.0.0.0 --port 8000 --log-level debug --log-format json

The same as ``uvicorn server:app`` plus log lines that carry the session id (uvicorn's own lines
included). Every other setting is an ``STT_*`` environment variable (docs/configuration.md,
read by :mod:`wirescribe.settings`); a bad one is one line and exit code 2, before anything starts.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wirescribe import logs
from wirescribe.settings import Settings, SettingsError


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stt-server", description="Real-time speech-to-text server.")
    parser.add_argument(
        "--host",
        default=settings.host,
        help="address to listen on (STT_HOST; default %(default)s; 0.0.0.0 for all)",
    )
    parser.add_argument(
        "--port", type=int, default=settings.port, help="port (STT_PORT; default %(default)s)"
    )
    parser.add_argument(
        "--log-level",
        choices=logs.LEVELS,
        default=settings.log.level,
        help="STT_LOG_LEVEL (default %(default)s)",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=settings.log.format,
        help="text, or json: one object per line (STT_LOG_FORMAT; default %(default)s)",
    )
    parser.add_argument("--no-access-log", action="store_true", help="leave out one line per HTTP request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; returns the exit code."""
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    import uvicorn

    uvicorn.run(
        "wirescribe.api.app:app",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=logs.uvicorn_log_config(args.log_level, args.log_format),
        access_log=not args.no_access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
