"""Shared helpers of the tests: the project's LibriVox copy, real servers on free ports, fakes.

The names most tests need are gathered here (``from tests.support import start_server``); the
WebSocket exchanges, decoder helpers and the policy's scripted world have modules of their own.
"""

from tests.support.servers import (
    LiveServer,
    free_port,
    loopback_http,
    parse_metrics,
    run_isolated,
    start_server,
    stop_server,
)
from tests.support.speech import DATA, ROOT, Utterance, join_utterances, librivox_utterances

__all__ = [
    "DATA",
    "ROOT",
    "LiveServer",
    "Utterance",
    "free_port",
    "join_utterances",
    "librivox_utterances",
    "loopback_http",
    "parse_metrics",
    "run_isolated",
    "start_server",
    "stop_server",
]
