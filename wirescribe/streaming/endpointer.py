"""Endpointing: voice activity in; where speech started, where it last ended, and whether it
resumed out (pure, over a session's :class:`~wirescribe.audio.vad.VoiceActivity`).

The policy asks it three questions, always in absolute samples of the session's audio:

* :meth:`Endpointer.onset` — new speech since the last utterance closed (opens the next one);
* :meth:`Endpointer.speech_end` — the end of the last speech in a stretch (a pause is counted
  from there);
* :meth:`Endpointer.resumed` — the onset of speech after a point (a held closing pass's window
  end), however short.
"""

from __future__ import annotations

from wirescribe.audio.vad import VoiceActivity


class Endpointer:
    """Speech boundaries of one session."""

    def __init__(self, vad: VoiceActivity) -> None:
        self._vad = vad
        self._scan_from = 0  # absolute sample from which the next utterance's onset is looked for

    @property
    def vad(self) -> VoiceActivity:
        return self._vad

    def onset(self, total: int) -> int | None:
        """The onset of speech (at least the detector's minimum length) heard since the last
        utterance closed, or None. Looked for from where it closed, so a block of many seconds
        (or a closing pass that took long under load) still starts the next utterance where its
        speech starts."""
        start = max(self._scan_from, self._vad.frames_start)
        bounds = self._vad.speech_bounds(start, total)
        return bounds[0] if bounds is not None else None

    def closed_at(self, sample: int) -> None:
        """An utterance closed with its audio ending at ``sample``: the next one's onset is
        looked for from there on."""
        self._scan_from = max(self._scan_from, sample)

    def speech(self, start: int, end: int) -> tuple[int, int] | None:
        """(onset, end) of the speech in ``[start, end)`` (bursts too short for the detector
        ignored), or None."""
        return self._vad.speech_bounds(start, end)

    def speech_end(self, start: int, end: int) -> int | None:
        """The end of the last speech (any length) in ``[start, end)``, or None."""
        bounds = self._vad.speech_bounds(start, end, min_speech=0)
        return bounds[1] if bounds is not None else None

    def resumed(self, after: int, total: int) -> int | None:
        """The onset of any speech in ``[after, total)``, or None."""
        bounds = self._vad.speech_bounds(after, total, min_speech=0)
        return bounds[0] if bounds is not None else None

    def forget_before(self, sample: int) -> None:
        """Audio before ``sample`` is gone from the session: forget its flags too."""
        self._vad.discard_before(sample)
