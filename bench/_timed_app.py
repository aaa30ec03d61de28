"""The real server app with one addition for the benchmark: every model call is timed.

``uvicorn --factory _timed_app:create`` (with ``bench/`` as ``--app-dir``) serves exactly
``server.create_app()``: the same lifespan, scheduler, sessions and protocol. The only
difference is the transcriber, a subclass whose ``transcribe`` and ``transcribe_batch`` log
their wall time, the window length and encoder context at DEBUG on the ``bench.compute`` logger
(a batch: one line per window, each with the batch's time and size) — the server itself does
not report per-call compute (its scheduler counts busy seconds but exposes them nowhere).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from fastapi import FastAPI

from wirescribe.api import app as server
from wirescribe.asr.model import BatchItem, DecodeOptions, Transcriber, Transcript
from wirescribe.settings import Settings

log = logging.getLogger("bench.compute")
_DEFAULT = DecodeOptions()


class TimedTranscriber(Transcriber):
    def transcribe(self, audio: np.ndarray, options: DecodeOptions = _DEFAULT) -> Transcript:
        return self.transcribe_batch([(audio, options)])[0]

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[Transcript]:
        started = time.time()
        t = time.perf_counter()
        try:
            return super().transcribe_batch(items)
        finally:
            took = time.perf_counter() - t
            for audio, options in items:
                log.debug(
                    "call start=%.4f took=%.4f audio=%.3f context=%s beam=%d batch=%d",
                    started, took, len(audio) / 16000, options.context_seconds, options.beam_size, len(items),
                )  # fmt: skip


def create() -> FastAPI:
    """The app, configured from ``STT_*`` as ``server:app`` is, with the timed transcriber."""
    config = Settings.from_env().resolved()  # the threads and workers the server would pick
    return server.create_app(config, TimedTranscriber.load(config.model))
