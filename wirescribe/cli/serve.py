"""``stt-server``: run the server under uvicorn with the project's logging.

    stt-server --host 0.0.0.0 --port 8000 --log-level debug --log-format json

The same as ``uvicorn server:app`` plus log lines that carry the session id (uvicorn's own lines
included). Every other setting is an ``STT_*`` environment variable (see config.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from wirescribe import logs as logging_setup


def build_parser(env: dict[str, str] | None = None) -> argparse.ArgumentParser:
    env = dict(os.environ) if env is None else env
    level, fmt = logging_setup.from_env(env)
    parser = argparse.ArgumentParser(prog="stt-server", description="Real-time speech-to-text server.")
    parser.add_argument(
        "--host",
        default=env.get("STT_HOST", "127.0.0.1"),
        help="address to listen on (STT_HOST; default %(default)s; 0.0.0.0 for all)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("STT_PORT", "8000")),
        help="port (STT_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--log-level", choices=logging_setup.LEVELS, default=level, help="STT_LOG_LEVEL (default %(default)s)"
    )
    parser.add_argument(
        "--log-format",
        choices=logging_setup.FORMATS,
        default=fmt,
        help="text, or json: one object per line (STT_LOG_FORMAT; default %(default)s)",
    )
    parser.add_argument("--no-access-log", action="store_true", help="leave out one line per HTTP request")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except ValueError as e:  # a bad STT_PORT
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.log_level not in logging_setup.LEVELS or args.log_format not in logging_setup.FORMATS:
        print(
            f"error: bad STT_LOG_LEVEL/STT_LOG_FORMAT ({args.log_level!r}, {args.log_format!r})",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    uvicorn.run(
        "wirescribe.api.app:app",
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        log_config=logging_setup.uvicorn_log_config(args.log_level, args.log_format),
        access_log=not args.no_access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
