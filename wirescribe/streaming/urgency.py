"""What makes a live session's turn urgent: the streaming meaning of the scheduler's priority.

The scheduler (``asr/scheduler.py``) orders turns by an opaque :class:`~wirescribe.asr.scheduler.Priority`
(a rank, a ``since``, whether it may be held back) and knows nothing of utterances or speech.
This module says what those values mean for a live session:

* a turn whose window **closes an utterance** (a pause, ``finalize``, the end of input) is
  :data:`~wirescribe.asr.scheduler.URGENT`: its words are committed whole by that one call, and
  the client waits for them;
* otherwise the session that has **waited longest for its words** goes first: ``since`` is when
  the oldest speech it has not committed was heard, or when its previous window was cut if that
  is later (the model has seen those words since), so a session whose words do not settle
  cannot take every call;
* a refresh with **no new speech** since the session's last window can commit little and only
  repeats the tentative tail: it is deferrable, held back while other turns have work.
"""

from __future__ import annotations

from dataclasses import dataclass

from wirescribe.asr.scheduler import NORMAL, URGENT

__all__ = ["Urgency"]


@dataclass(frozen=True)
class Urgency:
    """What a live session's queued turn holds now; a :class:`~wirescribe.asr.scheduler.Priority`."""

    closing: bool = False  # its window ends an utterance (pause, finalize, eof): it goes first
    since: float | None = None  # scheduler clock: since when its session has waited for its words
    new_speech: bool = True  # False: a refresh with nothing new heard, held back under load

    @property
    def rank(self) -> int:
        return URGENT if self.closing else NORMAL

    @property
    def deferrable(self) -> bool:
        return not self.closing and not self.new_speech

    @classmethod
    def of_turn(
        cls,
        *,
        closes: bool,
        new_speech: bool,
        heard_at: float | None,
        last_cut: float | None,
        forced: bool = False,
    ) -> Urgency:
        """A session's turn as the scheduler should see it.

        ``closes``: the next window would end the utterance (a pause); ``new_speech``: speech was
        heard after the last window's end; ``heard_at``: when the oldest uncommitted speech was
        decoded (None: no speech waits); ``last_cut``: when the session's last window was cut;
        ``forced``: a ``finalize`` or the end of input stands behind this turn, so it closes and
        goes first whatever the audio holds (its build is cheap then, often no model call)."""
        since = heard_at
        if since is not None and last_cut is not None:
            since = max(since, last_cut)
        return cls(forced or closes, since, forced or new_speech)
