"""``stt``'s file transcription: a file cut into chunks the way the server cuts an upload
(:mod:`wirescribe.streaming.files`), with a progress bar on stderr for long files."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wirescribe.asr.model import DecodeOptions, Transcriber, Transcript
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.audio.vad import FRAME, ProbabilityFn
from wirescribe.streaming.files import ChunkOptions, transcribe_blocks

PROGRESS_MIN_SECONDS = 30.0  # shorter files finish before a bar would tell anything


@dataclass(frozen=True)
class FileJob:
    """How ``stt`` cuts files into model calls: the speech detector and the chunk sizes."""

    probability: ProbabilityFn
    chunking: ChunkOptions


def always_speech(audio: np.ndarray) -> np.ndarray:
    """``--no-vad``'s speech detector: every frame is speech, so nothing is skipped and every
    chunk is as long as the settings allow (Silero's contract: one value per frame given)."""
    return np.ones(len(audio) // FRAME, dtype=np.float32)


@contextlib.contextmanager
def progress(name: str, duration: float, show: bool) -> Iterator[Callable[[float], None]]:
    """A bar on stderr advanced by seconds of audio; yields the function that advances it."""
    if not show:
        yield lambda seconds: None
        return
    from tqdm import tqdm  # a dependency of faster-whisper

    fmt = "{desc} {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"
    with tqdm(
        total=round(duration, 1), desc=name, bar_format=fmt, file=sys.stderr, leave=False, mininterval=0
    ) as bar:
        yield lambda seconds: bar.update(max(0.0, min(seconds, bar.total - bar.n)))


def transcribe_file(
    transcriber: Transcriber, path: Path, options: DecodeOptions, files: FileJob, quiet: bool
) -> Transcript:
    """One file the way the server transcribes an upload (``streaming/files.py``): chunks of at
    most ``STT_FILE_CHUNK_SECONDS`` cut in pauses, silence skipped, each chunk one model call.
    The bar advances as the chunker takes the audio in (it runs at most one chunk ahead)."""
    audio = decode_file(path)
    duration = len(audio) / SAMPLE_RATE
    show = not quiet and sys.stderr.isatty() and duration > PROGRESS_MIN_SECONDS

    async def transcribe(chunk: np.ndarray, chunk_options: DecodeOptions) -> Transcript:
        return transcriber.transcribe(chunk, chunk_options)  # nothing else runs: no thread needed

    with progress(path.name, duration, show) as advance:

        async def blocks() -> AsyncIterator[np.ndarray]:
            for start in range(0, len(audio), SAMPLE_RATE):
                yield audio[start : start + SAMPLE_RATE]
                advance(1.0)  # taken in: the chunker decodes each full chunk before asking for more

        return asyncio.run(
            transcribe_blocks(blocks(), transcribe, options, files.probability, files.chunking)
        )
