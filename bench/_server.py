"""Start a real server for a benchmark: uvicorn in a subprocess on a free port, ready when
``/health`` answers 200 (as ``tests/conftest.py`` does), with a log the benchmark parses.

The log (``server.log`` in the given folder) has one line per record,
``<unix time> <logger> <level> <message>``, with the ``session`` logger at DEBUG (one line per
model update, with the window it covered) and, for the timed app, ``bench.compute`` at DEBUG
(one line per model call, with its compute time).
"""

from __future__ import annotations

import json
import re
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from _common import ROOT  # noqa: F401  (puts the project on sys.path)

from wirescribe.devserver import RunningServer, start_server, stop_server

BENCH = Path(__file__).resolve().parent


BenchServer = RunningServer


def _log_config(folder: Path) -> tuple[Path, Path]:
    log = folder / "server.log"
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(created).4f %(name)s %(levelname)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log), "formatter": "plain"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "loggers": {"wirescribe.streaming.session": {"level": "DEBUG"}, "bench.compute": {"level": "DEBUG"},
                    "wirescribe.streaming.live_turns": {"level": "DEBUG"}},  # each pause's verdict
    }
    path = folder / "log_config.json"
    path.write_text(json.dumps(config))
    return path, log


def start(
    folder: Path, *, timed: bool = True, env: dict[str, str] | None = None, timeout: float = 120
) -> BenchServer:
    """``uvicorn server:app`` (or, ``timed``, the same app with timed model calls)."""
    folder.mkdir(parents=True, exist_ok=True)
    config, log = _log_config(folder)
    app = ["--app-dir", str(BENCH), "--factory", "_timed_app:create"] if timed else ["server:app"]
    server = start_server(folder / "server.out", app=app, uvicorn_args=["--log-config", str(config)],
                          env={"STT_MAX_SESSIONS_PER_CLIENT": "0", **(env or {})},  # all from 127.0.0.1
                          timeout=timeout)  # fmt: skip
    server.log = log  # the benchmark parses the log-config's file, not stdout
    return server


stop = stop_server


def scrape(server: BenchServer) -> dict[str, float]:
    """The server's /metrics: ``name{labels}`` -> value (histogram buckets and all)."""
    from tests.support.servers import parse_metrics

    with urllib.request.urlopen(f"{server.http}/metrics", timeout=10) as reply:
        return parse_metrics(reply.read().decode())


# -- the log ---------------------------------------------------------------------------------

_UPDATE = re.compile(r"^session (\w+): window ([\d.]+)-([\d.]+)( final)? heard")
_CALL = re.compile(r"^call start=([\d.]+) took=([\d.]+) audio=([\d.]+) context=(\S+) beam=(\d+)")


@dataclass(frozen=True)
class LoggedUpdate:
    at: float  # unix time the update was applied (after its model call returned)
    session: str
    start: float  # window, seconds of session audio
    end: float
    final: bool


@dataclass(frozen=True)
class LoggedCall:
    started: float  # unix time
    took: float
    audio: float  # window seconds
    context: float | None
    beam: int = 1  # > 1: a window that closes an utterance (the strong decode); 1: a tentative refresh

    @property
    def closing(self) -> bool:
        return self.beam > 1


def read_log(log: Path) -> tuple[list[LoggedUpdate], list[LoggedCall]]:
    """The per-update and per-call lines of a server log."""
    updates: list[LoggedUpdate] = []
    calls: list[LoggedCall] = []
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        created, name, _, message = parts
        if name == "wirescribe.streaming.session" and (m := _UPDATE.match(message)):
            updates.append(LoggedUpdate(float(created), m[1], float(m[2]), float(m[3]), bool(m[4])))
        elif name == "bench.compute" and (m := _CALL.match(message)):
            ctx = None if m[4] == "None" else float(m[4])
            calls.append(LoggedCall(float(m[1]), float(m[2]), float(m[3]), ctx, int(m[5])))
    return updates, calls
