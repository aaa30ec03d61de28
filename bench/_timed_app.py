"""The real server app with one addition for the benchmark: every model call is timed.

``uvicorn --factory _timed_app:create`` (with ``bench/`` as ``--app-dir``) serves exactly
``server.create_app()``: the same lifespan, scheduler, sessions and protocol. The only
difference is the transcriber, a subclass whose ``transcribe`` logs its wall time, the window
length and encoder context at DEBUG on the ``bench.compute`` logger — the server itself does
not report per-call compute (its scheduler counts busy seconds but exposes them nowhere).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from fastapi import FastAPI

from wirescribe.api import app as server
from wirescribe.asr.model import DecodeOptions, Transcriber, Transcript
from wirescribe.settings import Settings

log = logging.getLogger("bench.compute")
_DEFAULT = DecodeOptions()


class TimedTranscriber(Transcriber):
    def transcribe(self, audio: np.ndarray, options: DecodeOptions = _DEFAULT) -> Transcript:
        started = time.time()
        t = time.perf_counter()
        try:
            return super().transcribe(audio, options)
        finally:
            took = time.perf_counter() - t
            log.debug(
                "call start=%.4f took=%.4f audio=%.3f context=%s beam=%d",
                started, took, len(audio) / 16000, options.context_seconds, options.beam_size,
            )  # fmt: skip


def create() -> FastAPI:
    """The app, configured from ``STT_*`` as ``server:app`` is, with the timed transcriber."""
    config = Settings.from_env().resolved()  # the threads and workers the server would pick
    return server.create_app(config, TimedTranscriber.load(config.model))
