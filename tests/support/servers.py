"""A real server on a free port (``uvicorn server:app``, as a user runs it), /metrics parsing, and
child interpreters for tests that could hang."""

from __future__ import annotations

import contextlib
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.speech import ROOT
from wirescribe.devserver import RunningServer, free_port, stop_server
from wirescribe.devserver import start_server as _start

__all__ = [
    "LiveServer", "free_port", "loopback_http", "parse_metrics", "run_isolated",
    "start_server", "stop_server",
]  # fmt: skip

LiveServer = RunningServer


def start_server(
    tmp: Path, env: dict[str, str] | None = None, timeout: float = 60, uvicorn_args: list[str] | None = None
) -> LiveServer:
    """Start ``uvicorn server:app`` on a free port (``uvicorn_args`` after its own, so a later
    ``--host`` wins); returns once /health answers 200."""
    log = tmp / f"server-{time.monotonic_ns()}.log"
    return _start(log, env=env, timeout=timeout, uvicorn_args=uvicorn_args)


def parse_metrics(text: str) -> dict[str, float]:
    """A /metrics page parsed by prometheus_client: ``name{label="value",…}`` → value, every sample."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def run_isolated(script: str, hang: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``script`` in a child interpreter started in the project's folder, so a hang fails the
    test by ``timeout`` (with the message ``hang``) instead of hanging pytest."""
    try:
        return subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        pytest.fail(hang)


@contextlib.contextmanager
def loopback_http(handler: Callable[..., Any]) -> Iterator[str]:
    """A plain HTTP server on a free loopback port, in a thread; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
