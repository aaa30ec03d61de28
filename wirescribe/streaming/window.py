"""The streaming policy's vocabulary: its options, the window it asks the model for, what it
answers (an update, the final transcript) and what its next turn holds (pure data).

Kept apart from ``policy.py`` (the logic) so that the session, the scheduler and the tests share
it; ``policy.py`` re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from wirescribe.asr.types import Segment, Word
from wirescribe.streaming.events import CloseReason

SR = 16000


@dataclass(frozen=True)
class StreamingOptions:
    min_new_audio: float = 0.25  # seconds of new audio that make another update worthwhile
    pause: float = 0.8  # trailing silence that ends an utterance and commits it
    lead_in: float = 0.4  # audio kept before detected speech onset
    tail_pad: float = 0.25  # audio kept after the last speech when an utterance is cut
    max_window: float = 24.0  # never let the window grow past this (Whisper sees 30 s)
    prompt_chars: int = 200  # committed text handed to the model as context
    keep_context: float = 4.0  # committed audio kept before the uncommitted part, as context
    max_gap: float = 3.0  # silence longer than this drops committed audio kept as context
    settle: float = 0.3  # a word commits only once it ended this long before its window's end
    # The closing pass starts this long before the pause is complete; its words are held, and
    # commit (and the utterance ends) the moment the pause is: its decode time is hidden.
    # (0.45 s: at 0.8 s endpointing it starts at 0.35 s of silence, and its beam search, ~0.3 s,
    # is done when the pause is complete; starting at 0.5 s, utterance_end waited for it.)
    early_close: float = 0.45


class WindowKind(Enum):
    REFRESH = "refresh"  # a live update: tentative text, commits by agreement
    CUT = "cut"  # the window grew too long: committed whole, the utterance goes on
    CLOSE = "close"  # the closing pass: the utterance's speech, committed whole


@dataclass(frozen=True)
class Window:
    """Audio for one model call."""

    audio: np.ndarray
    start: int  # absolute sample index of audio[0]
    prompt: str
    kind: WindowKind = WindowKind.REFRESH
    reason: CloseReason | None = None  # CLOSE: why the utterance closes
    retry: bool = False  # a second closing pass over speech the first one did not cover

    @property
    def final(self) -> bool:
        """Everything it yields is committed (a closing pass, or a window grown too long)."""
        return self.kind is not WindowKind.REFRESH

    @property
    def closes_utterance(self) -> bool:
        """The window ends an utterance (not only a window grown too long): the one pass whose
        words are committed whole, worth the stronger decode."""
        return self.kind is WindowKind.CLOSE

    @property
    def end(self) -> int:
        return self.start + len(self.audio)

    @property
    def offset(self) -> float:
        return self.start / SR

    @property
    def seconds(self) -> float:
        return len(self.audio) / SR


@dataclass(frozen=True)
class Update:
    committed: str
    tentative: str
    audio_seconds: float
    # the tentative text's words (their probabilities tell the turn-taking how sure the model is
    # of the last word heard); not part of what a client sees, so not of equality
    tentative_words: tuple[Word, ...] = field(default=(), compare=False)

    @property
    def text(self) -> str:
        return self.committed + self.tentative


@dataclass(frozen=True)
class FinalTranscript:
    text: str
    segments: tuple[Segment, ...]
    audio_seconds: float
