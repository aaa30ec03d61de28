"""Turns of one live session: when an utterance starts and ends, and what it committed (pure).

The policy (``policy.py``) owns one :class:`Turns` and tells it what happens: audio scored for
voice activity (:meth:`Turns.heard`), words committed (:meth:`Turns.committed`), an utterance
closed by a pause, ``finalize`` or the end of input (:meth:`Turns.close`). It queues the
session's events in the order they happen (:mod:`wirescribe.streaming.events`), and the session
drains them (:meth:`Turns.take`):

* an utterance opens at the first voice activity after the last one closed (``speech_started``),
  or, should words be committed with none seen (a burst too short for the detector), at its
  first word, so every committed word belongs to exactly one utterance;
* it closes once, with exactly the text committed since it opened: the texts of all utterances,
  in order, are the session's committed text.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirescribe.asr.types import Word
from wirescribe.audio.vad import VoiceActivity
from wirescribe.streaming.events import Event, SpeechStarted, TranscriptChanged, UtteranceEnded

SR = 16000
CLOSING_REASONS = ("pause", "finalize", "eof")
ONSET_LOOKBACK = 1.0  # seconds re-scanned for an onset, so a speech run across blocks is whole


@dataclass
class _Open:
    onset: float  # seconds
    text_from: int  # index into the committed text where the utterance's text begins
    words_from: int  # index into the committed words


class Turns:
    """Utterance boundaries and the event queue of one session."""

    def __init__(self, vad: VoiceActivity) -> None:
        self._vad = vad
        self._open: _Open | None = None
        self._scan_from = 0  # absolute sample from which a new onset is looked for
        self._scanned_to = 0  # the audio's end when heard() last ran
        self._events: list[Event] = []
        self._words_reported = 0  # committed words already carried by a TranscriptChanged

    @property
    def is_open(self) -> bool:
        return self._open is not None

    @property
    def onset(self) -> float:
        """Where the open utterance's speech began (seconds; 0.0 when none is open)."""
        return self._open.onset if self._open is not None else 0.0

    @property
    def open_words_from(self) -> int | None:
        """Index of the open utterance's first committed word (None: no utterance open)."""
        return self._open.words_from if self._open is not None else None

    def take(self) -> list[Event]:
        """The events queued since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def heard(self, total: int, committed_words: int, committed_text: int) -> None:
        """Audio up to sample ``total`` is scored: open an utterance at new speech."""
        scanned, self._scanned_to = self._scanned_to, total
        if self._open is not None:
            return
        # From a little before the audio scanned last time: a block may hold many seconds.
        start = max(self._scan_from, scanned - int(ONSET_LOOKBACK * SR), self._vad.frames_start)
        bounds = self._vad.speech_bounds(start, total)
        if bounds is None:
            return
        self._start(bounds[0] / SR, committed_words, committed_text)

    def _start(self, onset: float, committed_words: int, committed_text: int) -> None:
        self._open = _Open(onset, committed_text, committed_words)
        self._events.append(SpeechStarted(round(onset, 3)))

    def committed(self, first: Word, committed_words: int, committed_text: int) -> None:
        """Words are about to be committed (``first`` the first of them, the counts before them)."""
        if self._open is None:
            self._start(first.start, committed_words, committed_text)

    def changed(self, committed: str, tentative: str, audio_seconds: float, words: list[Word]) -> None:
        """The transcript changed: queue it with the words committed since the last change."""
        new = tuple(words[self._words_reported :])
        self._words_reported = len(words)
        self._events.append(TranscriptChanged(committed, tentative, audio_seconds, new))

    def last_speech_end(self, total: int) -> int | None:
        """The end (samples) of the open utterance's last speech so far, if any is known."""
        if self._open is None:
            return None
        bounds = self._vad.speech_bounds(int(self._open.onset * SR), total, min_speech=0)
        return bounds[1] if bounds is not None else None

    def close(self, reason: str, at: int, committed_text: str, words: list[Word]) -> None:
        """The open utterance ends (a pause, ``finalize`` or the end of input); the next one is
        looked for in audio from sample ``at`` on. Nothing happens when none is open."""
        self._scan_from = max(self._scan_from, at)
        opened, self._open = self._open, None
        if opened is None:
            return
        own = tuple(words[opened.words_from :])
        start = own[0].start if own else opened.onset
        end = own[-1].end if own else max(opened.onset, at / SR)
        text = committed_text[opened.text_from :]
        self._events.append(UtteranceEnded(round(start, 3), round(end, 3), text, own, reason))
