"""A window's decoding state, and what the windows of one model call must share (pure: no model).

The adapter (``adapter.py``) runs faster-whisper's loop over many windows at once; this module
holds what that needs and can be tested without a model: how long the encoder input is
(:func:`context_frames`), which windows may share a call (:func:`group_key`) and a prompt length
(:func:`prompt_batches`), and how features are fitted to the encoder length (:func:`fit`).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, TypeVar

import numpy as np

from wirescribe.asr.types import DecodeOptions, Segment

SAMPLE_RATE = 16000
FULL_FRAMES = 3000  # Whisper's 30 s window in 10 ms mel frames
PROMPT_KEEP = 0.5  # no window of a batch keeps less than this share of its previous text


def context_frames(audio_seconds: float, context_seconds: float | None) -> int:
    """Encoder frames for a window: Whisper's full 3000 when ``context_seconds`` is None, else
    at least the audio plus 1 s, in 2 s steps, at most 3000."""
    if context_seconds is None:
        return FULL_FRAMES
    seconds = max(context_seconds, 2 * math.ceil((audio_seconds + 1.0) / 2))
    return min(FULL_FRAMES, int(seconds * 100))


def group_key(options: DecodeOptions, language: str) -> tuple[Any, ...]:
    """What windows must share to go through the model in one call: the tokenizer (language, task),
    the search (beam size, temperatures), the prompt's shape (timestamp tokens) and whether the
    call aligns words, and the hotwords (the prompt's fixed head, so that only the previous text
    is cut to a shared length). Prompt text, context, token budget and passes are each window's own."""
    o = options
    return language, o.task, o.beam_size, o.temperature, o.without_timestamps, o.word_timestamps, o.hotwords


class Window:
    """One window's decoding state: the locals of faster-whisper's ``generate_segments``."""

    def __init__(self, audio: np.ndarray, options: DecodeOptions, features: np.ndarray) -> None:
        self.options = options
        self.duration = len(audio) / SAMPLE_RATE
        self.features = features  # log-mel, mels × frames, of the whole window
        self.content_frames = features.shape[-1] - 1
        self.frames = context_frames(self.duration, options.context_seconds)  # the encoder's input
        self.language = ""  # set before decoding
        self.seek = 0  # first frame of the next pass
        self.all_tokens: list[int] = []
        self.prompt_reset_since = 0
        self.last_speech_timestamp = 0.0
        self.segments: list[Segment] = []

    @property
    def done(self) -> bool:
        return self.seek >= self.content_frames

    def previous_tokens(self, limit: int) -> list[int]:
        """The previous text the prompt holds (``get_prompt`` keeps the last ``limit``)."""
        return self.all_tokens[self.prompt_reset_since :][-limit:]


class Prompted(Protocol):
    def previous_tokens(self, limit: int) -> list[int]: ...


P = TypeVar("P", bound=Prompted)


def prompt_batches(windows: list[P], limit: int) -> list[tuple[list[P], int]]:
    """Split ``windows`` into batches whose previous text can be cut to one length (returned with
    each batch): longest first, taking every window that keeps ``PROMPT_KEEP`` of its own."""
    by_length = sorted(windows, key=lambda w: len(w.previous_tokens(limit)), reverse=True)
    batches: list[tuple[list[P], int]] = []
    while by_length:
        longest = len(by_length[0].previous_tokens(limit))
        batch = [w for w in by_length if _shares(len(w.previous_tokens(limit)), longest)]
        by_length = by_length[len(batch) :]
        batches.append((batch, len(batch[-1].previous_tokens(limit))))
    return batches


def _shares(length: int, longest: int) -> bool:
    if longest == 0:
        return length == 0
    return length > 0 and length >= PROMPT_KEEP * longest


def last(tokens: list[int], keep: int) -> list[int]:
    """The last ``keep`` tokens (none for 0, where ``tokens[-0:]`` would be all of them)."""
    return tokens[len(tokens) - keep :]


def fit(features: np.ndarray, frames: int) -> np.ndarray:
    """``features`` (mels × time) padded with zeros or cut to exactly ``frames``: Whisper's
    ``pad_or_trim``, with the length ours to choose."""
    n = features.shape[-1]
    if n >= frames:
        return features[:, :frames]
    return np.pad(features, ((0, 0), (0, frames - n)))
