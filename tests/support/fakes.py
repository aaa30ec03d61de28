"""Fakes of the model for tests that need no real one: they answer instantly (or after a set
delay) and record what they were asked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np

from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.audio.decode import SAMPLE_RATE

T = TypeVar("T")
FAKE_TEXT = " Hello there, general Kenobi."


def run(main: Callable[[], Awaitable[T]], timeout: float = 20) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


class FakeModel:
    """Echoes the job's tag (the prompt) back as the transcript; records the order of calls."""

    def __init__(self, delay: float = 0.01, fail_on: str | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls: list[str] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.max_running = 0

    def __call__(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        tag = options.prompt or ""
        with self._lock:
            self.calls.append(tag)
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.started.set()
        try:
            self.release.wait(10)
            time.sleep(self.delay)
            if tag == self.fail_on:
                raise RuntimeError(f"model failed on {tag}")
            return Transcript((Segment(0.0, len(audio) / 16000, f" {tag}"),), "en", len(audio) / 16000)
        finally:
            with self._lock:
                self.running -= 1


def job(tag: str, seconds: float = 0.1) -> tuple[np.ndarray, DecodeOptions]:
    return np.zeros(int(seconds * 16000), dtype=np.float32), DecodeOptions(prompt=tag)


class FakeTranscriber:
    """The model's interface without a model: one segment over the window, three words."""

    name, device, compute_type, load_seconds = "fake", "cpu", "int8", 0.5
    supported_languages = ("en", "de")
    default_language = None

    def __init__(self) -> None:
        self.options: list[DecodeOptions] = []

    def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        self.options.append(options)
        end = len(audio) / SAMPLE_RATE
        words = tuple(
            Word(end * i / 3, end * (i + 1) / 3, w, 0.9) for i, w in enumerate(FAKE_TEXT.split(","))
        )
        segment = Segment(
            0.0, end, FAKE_TEXT, words if options.word_timestamps else (), tokens=(1, 2), seek=0
        )
        return Transcript((segment,), "de", end)

    def transcribe_batch(self, items: Sequence[tuple[np.ndarray, DecodeOptions]]) -> list[Transcript]:
        """The scheduler's batch call (``Scheduler.for_transcriber`` hands it over)."""
        return [self.transcribe(audio, options) for audio, options in items]
