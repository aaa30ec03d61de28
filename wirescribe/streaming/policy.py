"""The streaming policy of one live session: which audio the model sees, and what is committed.

Pure logic in the shape of an online ASR processor — ``insert_audio()``, ``pending_window()``,
``apply()``, ``finish()`` — with no model, thread or socket inside, so it is tested with a fake
transcriber.

* Only the *uncommitted window* is transcribed, with committed text before it as the prompt.
* Words two successive hypotheses agree on are committed (LocalAgreement-2); the rest is the
  tentative tail.
* A pause (voice-activity detection) ends the utterance: its window is transcribed once more and
  committed whole, and the buffer is cut there. Long speech without pauses is cut at committed
  segment ends, so the window (and the cost of an update) stays bounded.
* Silence never reaches the model; words the model puts where there was no speech are dropped.
* Utterances (``turns.py``): voice activity opens one, the window that a pause, ``finalize`` or
  the end of input closes commits it; the policy queues the session's events as they happen
  (:meth:`StreamingPolicy.take_events`). Committed words' times never go backwards.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from wirescribe.asr.model import Segment, Transcript, Word
from wirescribe.audio.buffer import GrowableBuffer
from wirescribe.audio.vad import Scored, VoiceActivity
from wirescribe.streaming.agreement import after_committed, common_prefix, without_unsure_tail
from wirescribe.streaming.events import Event
from wirescribe.streaming.hallucinations import is_hallucination, normalize, phrase
from wirescribe.streaming.turns import CLOSING_REASONS, Turns
from wirescribe.streaming.window import SR, FinalTranscript, Pending, StreamingOptions, Update, Window

DEFAULT_OPTIONS = StreamingOptions()
MIN_EARLY_SILENCE = 0.4  # seconds: the earliest a closing pass starts (see _closing_silence)

__all__ = [  # the vocabulary lives in window.py; importing it from here keeps working
    "SR", "FinalTranscript", "Pending", "StreamingOptions", "StreamingPolicy", "Update", "Window",
]  # fmt: skip
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "my", "yue"})


class StreamingPolicy:
    """Committed vs tentative text for one session. Times are seconds of session audio."""

    def __init__(
        self,
        vad: VoiceActivity,
        options: StreamingOptions = DEFAULT_OPTIONS,
        language: str | None = None,
    ) -> None:
        self._vad = vad
        self._opts = options
        self._spaced = language not in NO_SPACE_LANGUAGES
        self._audio = GrowableBuffer(np.float32)  # the window's audio, by absolute sample index
        self._last_window_end = 0
        self._commit_sample = 0  # absolute sample up to which the audio has been committed
        self._committed: list[Word] = []
        self._committed_text = ""
        self._utterance_starts: set[int] = {0}  # indices into _committed that begin utterances
        self._utterance_over = False  # a pause ended the last utterance: next commit starts one
        self._hypothesis: list[Word] = []  # previous hypothesis, after the committed words
        self._hypothesis_end = 0.0  # end (seconds) of the speech in the window of _hypothesis
        self._tentative: list[Word] = []
        self._turns = Turns(vad)
        self._held: tuple[Window, Transcript] | None = None  # a closing pass awaiting its pause
        self.early_words = 0  # words committed by agreement that a closing pass re-read
        self.early_disagreed = 0  # ... and heard differently (or not at all)

    # -- audio in ---------------------------------------------------------------------------

    @property
    def vad(self) -> VoiceActivity:
        """The session's voice activity, for scoring audio off the event loop (see insert_audio)."""
        return self._vad

    @property
    def _buf_start(self) -> int:
        """Absolute sample index of the first sample kept."""
        return self._audio.start

    @property
    def total_samples(self) -> int:
        return self._audio.end

    @property
    def audio_seconds(self) -> float:
        return self.total_samples / SR

    @property
    def pause(self) -> float:
        """Seconds of silence that end an utterance (the session's endpointing)."""
        return self._opts.pause

    @pause.setter
    def pause(self, seconds: float) -> None:
        self._opts = replace(self._opts, pause=seconds)

    def take_events(self) -> list[Event]:
        """What happened since the last call, in order: speech started, transcript changed,
        utterance ended (see :mod:`wirescribe.streaming.events`)."""
        return self._turns.take()

    @property
    def window_seconds(self) -> float:
        return len(self._audio) / SR

    def insert_audio(self, block: np.ndarray, scored: Scored | None = None) -> None:
        """Append decoded 16 kHz audio to the session.

        ``scored``: the voice activity's scores for this very block, computed in a worker thread
        (``vad.score(vad.frame(block))``) so the model does not run on the event loop; without
        it the block is scored here."""
        self._audio.append(block)
        if scored is None:
            self._vad.push(block)
        else:
            self._vad.accept(scored)
        self._turns.heard(self.total_samples, len(self._committed), len(self._committed_text))

    # -- what to transcribe -----------------------------------------------------------------

    def pending_window(self, *, final: bool = False, reason: str = "eof") -> Window | None:
        """The next window for the model, or None when there is nothing worth transcribing.

        With ``final=True`` (``reason``: "eof" at the end of stream, "finalize" when the client
        asks) all remaining audio is returned, to be committed, and the utterance ends.
        """
        self.poll()
        total = self.total_samples
        no_new_speech = not self._vad.has_speech(self._last_window_end, total, min_speech=0)
        if final and self._held is not None and no_new_speech:
            window, result = self._held  # the closing pass covered all the speech: commit it
            self._held = None
            self._apply_now(window, result, reason)
            self.end_utterance(reason)
            return None
        if final and self._hypothesis and no_new_speech:
            # The last hypothesis already covered all the speech: commit it without a model call.
            self._commit(self._hypothesis)
            self._commit_sample = total
            self._hypothesis, self._tentative = [], []
            self._changed()
            self.end_utterance(reason)
            return None
        if not final and total - self._last_window_end < self._opts.min_new_audio * SR:
            return None
        fresh = max(self._buf_start, self._commit_sample)  # audio not yet committed
        bounds = self._vad.speech_bounds(fresh, total)
        lead_in = int(self._opts.lead_in * SR)
        if bounds is None:
            # No new speech: the model is not called. Committed audio stays as acoustic context
            # for the next utterance, unless the silence after it grows long.
            self._hypothesis = []
            if self._tentative:
                self._tentative = []
                self._changed()
            if total - fresh > self._opts.max_gap * SR:
                self._cut(max(self._buf_start, total - lead_in))
            self._end_quiet_utterance(total, reason if final else "")
            return None
        onset, speech_end = bounds
        if onset - fresh > self._opts.max_gap * SR or fresh <= self._buf_start:
            self._cut(max(self._buf_start, onset - lead_in))  # leading silence is not context
        if final:
            self._held = None  # the window below covers all it did, and what came since
            self._last_window_end = total
            return self._window(total, reason)
        new_speech = not no_new_speech
        if self._held is not None:
            if not new_speech:
                return None  # the closing pass is done; poll() commits it once the pause is
            self._resolve_closing(*self._held)
        silence = total - speech_end
        if silence >= self._closing_silence * SR:  # the utterance is ending
            self._last_window_end = total
            return self._window(min(total, speech_end + int(self._opts.tail_pad * SR)), "pause")
        if not new_speech and self._hypothesis:
            return None  # silence after the last window: its hypothesis holds, nothing to refresh
        self._last_window_end = total
        if total - self._buf_start >= self._opts.max_window * SR:
            return self._window(total, "length")
        return self._window(total, "")

    def poll(self) -> Update | None:
        """Commit a held closing pass once its pause is complete (no model call): the session
        calls it whenever audio arrives; :meth:`pending_window` does too. The update, if the
        text changed."""
        if self._held is None:
            return None
        window, result = self._held
        total = self.total_samples
        resumed = self._vad.has_speech(window.end, total, min_speech=0)
        if not resumed and total - self._speech_end(window) < self._opts.pause * SR:
            return None
        return self._resolve_closing(window, result)

    @property
    def _closing_silence(self) -> float:
        """Seconds of silence after which the closing pass starts: ``early_close`` before the
        pause is complete, but never before 0.4 s of it (the window ends 0.25 s after the
        speech, and must end before the next words however soon they come), nor after it."""
        pause = self._opts.pause
        return max(pause - self._opts.early_close, min(pause, MIN_EARLY_SILENCE))

    def pending(self) -> Pending:
        """What :meth:`pending_window` (not final) would do now, without doing it: read-only."""
        total = self.total_samples
        fresh = max(self._buf_start, self._commit_sample)
        due = total - self._last_window_end >= self._opts.min_new_audio * SR
        new = self._vad.has_speech(self._last_window_end, total, min_speech=0)
        bounds = self._vad.speech_bounds(fresh, total)
        if bounds is None:  # a quiet utterance ends once its speech is a pause behind
            end = self._turns.last_speech_end(total)
            quiet_end = end is not None and total - end >= self._opts.pause * SR
            return Pending(due and quiet_end, None, new)
        closing = total - bounds[1] >= self._closing_silence * SR
        return Pending(due and closing and (self._held is None or new), bounds[0], new)

    def _window(self, end: int, reason: str) -> Window:
        start = self._buf_start
        if reason in CLOSING_REASONS and self._turns.is_open:
            # The closing pass hears its utterance alone, as an offline pass over it would: the
            # audio kept before it as context for the live updates is in the prompt as text.
            # (Whisper decoding without timestamps also tends to stop at the pause between
            # that context and the utterance: a finalize's window then lost all its speech.)
            start = min(max(start, int((self._turns.onset - self._opts.lead_in) * SR)), end - 1)
        audio = self._audio.view(start, end)
        return Window(audio, start, self._prompt(start), final=bool(reason), reason=reason)

    def _end_quiet_utterance(self, total: int, final_reason: str) -> None:
        """With no speech left to transcribe, an open utterance ends at the end of input or
        ``finalize``, or once its speech is ``pause`` seconds behind: its words were all
        committed by agreement already, so no closing window comes."""
        if final_reason:
            self.end_utterance(final_reason)
            return
        end = self._turns.last_speech_end(total)
        if end is not None and total - end >= self._opts.pause * SR:
            self.end_utterance("pause")

    def end_utterance(self, reason: str) -> None:
        """End the open utterance (if any) with what it has committed: after the last window of
        ``finalize`` or the end of input, when there was nothing left to transcribe."""
        self._close(reason, self.total_samples)

    def _close(self, reason: str, at: int) -> None:
        """The open utterance ends: the next words begin a new one (and a new final segment)."""
        if self._turns.is_open:
            self._utterance_over = True
        self._turns.close(reason, at, self._committed_text, self._committed)

    def _prompt(self, start: int) -> str:
        """Committed text that lies before the window (whole words): context for the model."""
        cut = start / SR + 0.05
        words: list[Word] = []
        size = 0
        for w in reversed(self._committed):
            if w.end > cut:
                continue
            size += len(w.text) + 1
            if size > self._opts.prompt_chars:
                break
            words.append(w)
        return self._join(words[::-1]).strip()

    def _cut(self, sample: int) -> None:
        if sample <= self._buf_start:
            return
        self._audio.discard_before(sample)
        self._vad.discard_before(sample)

    # -- results in -------------------------------------------------------------------------

    def apply(self, window: Window, result: Transcript) -> Update | None:
        """Fold the model's result for ``window`` in; an :class:`Update` if the text changed.

        A closing pass that ran before its pause was complete (``early_close``) is settled by
        :meth:`_resolve_closing`: held until the pause is complete, or committed without
        ending the utterance when the speech goes on first."""
        if window.reason == "pause":
            return self._resolve_closing(window, result)
        return self._apply_now(window, result)

    def _resolve_closing(self, window: Window, result: Transcript) -> Update | None:
        """A closing pass, as far as its pause is known now:

        * silence still, the pause not yet complete: held (its words shown as tentative);
        * the pause complete (before any new words): committed, and the utterance ends;
        * the speech went on after a gap shorter than the endpointing: what it heard before
          the gap is over and was decoded the strong way, so it is committed whole (as a window
          grown too long is) and the utterance goes on. (Taken as a mere tentative update
          instead, it left those words uncommitted, and the next windows, which start far back
          in the utterance, were heard from the gap on only: "do for them. He was" was lost.)
        """
        total = self.total_samples
        end = self._speech_end(window)
        resumed = self._vad.speech_bounds(window.end, total, min_speech=0)
        if resumed is None and total - end < self._opts.pause * SR:
            self._held = (window, result)
            return self._show(window, result)
        self._held = None
        if resumed is not None and resumed[0] - end < self._opts.pause * SR:
            return self._apply_now(replace(window, reason="length"), result)
        return self._apply_now(window, result)

    def _show(self, window: Window, result: Transcript) -> Update | None:
        """The held closing pass's words as the tentative text (nothing commits)."""
        before = self._tentative
        heard = self._hypothesis_words(window, result)
        words, _ = after_committed(self._committed[-3:], heard, window.offset)
        self._tentative = words
        if self._tentative == before:
            return None
        self._changed()
        return self.current()

    def _apply_now(self, window: Window, result: Transcript, reason: str = "") -> Update | None:
        """Fold the result in now (a closing window commits whole and ends its utterance, with
        ``reason`` if given: a held pass committed at the end of input)."""
        if reason:
            window = replace(window, reason=reason)
        before = (self._committed_text, self._tentative)
        heard = self._hypothesis_words(window, result)
        if window.closes_utterance:
            self._check_early_commits(window, heard)
        words, anchored = after_committed(self._committed[-3:], heard, window.offset)
        if window.final:
            if not anchored and self._hypothesis:
                # This pass may have skipped words at its start: keep what the last hypothesis
                # heard there, and take from this one only what comes after it.
                words = self._hypothesis + after_committed(self._hypothesis[-3:], words, window.offset)[0]
            self._commit(words)
            self._utterance_over = True
            self._hypothesis, self._tentative = [], []
            self._commit_sample = max(self._commit_sample, window.end)
        else:
            # Words near a window's end are unreliable (cut mid-word, no context after them):
            # commit only those both hypotheses agree on and that had settled in the older one.
            # Nor those at the end of the speech the older window heard: when speech stops, the
            # utterance's last words are left to its closing pass (the stronger decode), not
            # committed by two greedy passes agreeing on the same audio.
            settled = [w for w in self._hypothesis if w.end <= self._hypothesis_end - self._opts.settle]
            # Unanchored hypotheses are trusted again once the window has grown well past its
            # context: better than waiting for a pause that may not come.
            trusted = anchored or window.seconds > self._opts.keep_context + 6
            agreed = common_prefix(settled, words) if trusted else 0
            self._commit(words[:agreed])
            self._hypothesis = self._tentative = words[agreed:]
            self._hypothesis_end = min(window.end, self._speech_end(window)) / SR
            if agreed:
                self._commit_sample = max(self._commit_sample, int(words[agreed - 1].end * SR))
        self._trim()
        changed = (self._committed_text, self._tentative) != before
        if changed:
            self._changed()
        if window.closes_utterance:
            self._close(window.reason, window.end)
        return self.current() if changed else None

    def _changed(self) -> None:
        now = self.current()
        self._turns.changed(now.committed, now.tentative, now.audio_seconds, self._committed)

    def _speech_end(self, window: Window) -> int:
        """The end of the last speech in ``window`` (its end when none is known)."""
        bounds = self._vad.speech_bounds(window.start, window.end, min_speech=0)
        return bounds[1] if bounds is not None else window.end

    def _check_early_commits(self, window: Window, heard: list[Word]) -> None:
        """Count the words of this utterance committed early (by agreement) that the closing
        pass re-read, and how many of them it heard differently: how often committing early
        costs accuracy. They stay committed either way (committed text never changes)."""
        first = self._turns.open_words_from
        if first is None:
            return
        early = [w for w in self._committed[first:] if w.start >= window.offset]
        for w in early:
            key = normalize(w.text)
            same = any(normalize(h.text) == key and abs(h.start - w.start) <= 0.5 for h in heard)
            self.early_words += 1
            self.early_disagreed += not same

    def current(self) -> Update:
        tentative = self._join(self._tentative, after=self._committed_text)
        if not self._committed_text:
            tentative = tentative.lstrip()
        return Update(self._committed_text, tentative, self.audio_seconds)

    def _hypothesis_words(self, window: Window, result: Transcript) -> list[Word]:
        """The hypothesis as absolute-time words, hallucinations and words in silence out."""
        words: list[Word] = []
        previous = ""
        for seg in result.segments:
            text = phrase(seg.text)
            repeated, previous = text == previous, text
            if repeated or is_hallucination(seg) or not self._heard(window, seg):
                continue
            # A live window may end inside a word, which the model then guesses; the closing
            # window ends after the speech, so its last word is kept however unsure.
            for w in seg.words if window.closes_utterance else without_unsure_tail(seg.words):
                a = Word(w.start + window.offset, w.end + window.offset, w.text, w.probability)
                if normalize(a.text) and self._spoken(a):
                    words.append(a)
        return words

    def _heard(self, window: Window, seg: Segment) -> bool:
        """Was there speech where the model put this segment? A sentence placed in a pause is
        the model continuing its prompt."""
        start, end = int((window.offset + seg.start) * SR), int((window.offset + seg.end) * SR)
        share = self._vad.speech_fraction(start, max(end, start + 1))
        return share is None or share >= 0.2 or end - start < 0.3 * SR

    def _spoken(self, word: Word) -> bool:
        """Did voice activity see speech around this word? Words in silence are inventions."""
        pad = 0.3
        return self._vad.has_speech(int((word.start - pad) * SR), int((word.end + pad) * SR))

    def _commit(self, words: list[Word]) -> None:
        if not words:
            return
        self._turns.committed(words[0], len(self._committed), len(self._committed_text))
        words = self._monotonic(words, self._turns.onset)
        if self._utterance_over:
            self._utterance_starts.add(len(self._committed))
            self._utterance_over = False
        self._committed_text += self._join(words, after=self._committed_text)
        self._committed_text = self._committed_text.lstrip()
        self._committed.extend(words)

    def _monotonic(self, words: list[Word], onset: float) -> list[Word]:
        """``words`` with times that follow the committed words', start no earlier than their
        utterance's speech (``onset``) and lie inside the audio: two windows' alignments may
        overlap a word by some milliseconds, and the alignment stretches the first word after a
        silence back into it."""
        last = max(self._committed[-1].end if self._committed else 0.0, onset)
        limit = self.audio_seconds
        out: list[Word] = []
        for w in words:
            end = min(max(w.end, last), limit)
            start = min(max(w.start, last), end)
            out.append(w if (start, end) == (w.start, w.end) else replace(w, start=start, end=end))
            last = end
        return out

    def _trim(self) -> None:
        """Keep at most ``keep_context`` s of committed audio before the uncommitted part: the
        model hears how the speech led up to it, and the window stays short. Cut at the end of
        a committed word, never inside one."""
        limit = self._commit_sample / SR - self._opts.keep_context
        if limit <= self._buf_start / SR:
            return
        cut = None
        for w in reversed(self._committed):
            if w.end < limit:
                break
            cut = w.end
        if cut is not None and cut * SR <= self._commit_sample:
            self._cut(int(cut * SR))

    def _join(self, words: list[Word], after: str = "") -> str:
        """Concatenate words as the model spelt them (its words carry their leading space);
        a space is added only where a word without one follows text in a spaced language."""
        text = ""
        for w in words:
            piece = w.text
            if not text and after and self._spaced and piece[:1].isalnum() and not after[-1:].isspace():
                piece = " " + piece
            text += piece
        return text

    # -- end of stream ----------------------------------------------------------------------

    def finish(self) -> FinalTranscript:
        """Everything committed, grouped into segments with times (after the final window)."""
        segments: list[Segment] = []
        group: list[Word] = []
        for i, w in enumerate(self._committed):
            if group and (i in self._utterance_starts or w.start - group[-1].end > 1.0):
                segments.append(self._segment(group))
                group = []
            group.append(w)
        if group:
            segments.append(self._segment(group))
        return FinalTranscript(self._committed_text, tuple(segments), self.audio_seconds)

    def _segment(self, words: list[Word]) -> Segment:
        return Segment(words[0].start, words[-1].end, self._join(words).strip(), tuple(words))
