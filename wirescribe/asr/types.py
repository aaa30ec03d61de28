"""What a decode is asked and what it answers: plain frozen data, no model, no faster-whisper.

Kept apart from ``model.py`` (loading) and ``adapter.py`` (faster-whisper's internals) so both,
and every caller, share one vocabulary without importing each other. ``model.py`` re-exports
these names, but importing it loads faster-whisper: the streaming layer, the scheduler and
anything else that only needs the vocabulary import it from here (``pyproject.toml``'s import
contracts hold them to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # as the model spells it, usually with its leading space
    probability: float = 1.0


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0
    temperature: float = 0.0  # the decoding temperature that produced it (> 0: a fallback)
    tokens: tuple[int, ...] = ()
    seek: int = 0  # start of the 30 s window it was decoded in, in 10 ms frames


@dataclass(frozen=True)
class Transcript:
    segments: tuple[Segment, ...]
    language: str
    duration: float

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments).strip()


@dataclass(frozen=True)
class DecodeOptions:
    """Per-call decoding options; the defaults suit live updates on a CPU.

    No voice-activity filter here: live windows and file chunks are cut around speech by Silero
    VAD before they get here (``audio/vad.py``, ``streaming/files.py``); what silence is left,
    Whisper's no-speech probability skips, as in faster-whisper.
    """

    language: str | None = None  # None: English for *.en models, else detected per window
    # "transcribe", or "translate": Whisper's task token, English text from speech in any
    # language (a multilingual model only; an English-only model always transcribes).
    task: str = "transcribe"
    # Which loaded model decodes the window (None: the default; see ``asr/registry.py``).
    model: str | None = None
    prompt: str | None = None
    # Text the model sees before the previous text of *every* pass (faster-whisper's ``hotwords``):
    # names and terms to favour. The previous text is cut to leave room for it, never it.
    hotwords: str | None = None
    beam_size: int = 1
    word_timestamps: bool = True
    # Tried in turn: a window whose text is too repetitive (gzip compression ratio) or too
    # improbable (mean log probability) is decoded again at the next temperature, as Whisper does.
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    condition_on_previous_text: bool = True
    # Encoder context in seconds (None: Whisper's full 30 s). The encoder's cost is mostly fixed
    # by this, not by the audio: a 10 s context runs several times faster than 30 s.
    context_seconds: float | None = None
    max_new_tokens: int | None = None  # bounds a repetition loop's cost
    # Text only, no timestamp tokens (word times still come from the alignment).
    without_timestamps: bool = False
    # Decode the audio's first window once and stop. With word timestamps Whisper's loop goes on
    # from the last aligned word and decodes the short tail after it again: a second encode and
    # decode per live update (~30 % of its cost) that mostly yields an invented word. Only with
    # ``without_timestamps``, where one pass gives exactly one segment.
    single_pass: bool = False

    def __post_init__(self) -> None:
        if self.single_pass and not self.without_timestamps:
            raise ValueError("single_pass needs without_timestamps")
        if not self.temperature:
            raise ValueError("temperature needs at least one value")
        if self.task not in ("transcribe", "translate"):
            raise ValueError(f"task must be transcribe or translate, not {self.task!r}")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, not {self.beam_size}")


BatchItem = tuple[np.ndarray, DecodeOptions]
"""One window of a batched model call: 16 kHz mono float32 audio and its options."""


class ModelBackend(Protocol):
    """What the app needs of a model: the loaded :class:`~wirescribe.asr.model.Transcriber`, or
    a stand-in that decodes elsewhere (the cluster's ``RemoteTranscriber``, tests' fakes)."""

    @property
    def name(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def compute_type(self) -> str: ...
    @property
    def supported_languages(self) -> list[str]: ...
    @property
    def default_language(self) -> str | None: ...
    @property
    def load_seconds(self) -> float | None:
        """How long loading the model took here (None: nothing was loaded here)."""
        ...

    def transcribe(self, audio: np.ndarray, options: DecodeOptions = ...) -> Transcript:
        """Blocking: one window (16 kHz mono float32)."""
        ...

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[Transcript]:
        """Blocking: several windows in one model call, results in their order."""
        ...
