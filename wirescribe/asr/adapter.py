"""The only module that knows faster-whisper's and CTranslate2's internals: windows in, transcripts out.

Every decode of the app goes through :meth:`WhisperAdapter.decode`: a live window, the
scheduler's batch of windows, a file chunk (a batch of one is a batch). It runs the loop of
faster-whisper's ``generate_segments`` (30 s windows, seeking on from the last timestamp or
word) and ``generate_with_fallback`` (a window whose text fails the compression-ratio or
log-probability check is decoded again at the next temperature) for every window of the batch
at once, with two things faster-whisper cannot do:

* the encoder length is chosen per call (:func:`context_frames`): the features are padded or
  cut here, before ``encode``, instead of to faster-whisper's fixed 3000 frames;
* one model call serves many windows: one encode, one ``generate`` per temperature, one
  alignment. On a GPU a batch costs little more than one window. On a CPU the encoder's cost
  grows with the batch and only the decoder's steps are shared (on 2 cores four 8 s live
  windows took 0.62 s batched against 0.91 s one by one), and two one-thread workers side by
  side do better still, so the CPU default is workers, not batches (see the scheduler).

What windows of one model call must share:

* the options that shape the call (language, beam size, word timestamps, timestamp tokens,
  temperatures): windows that differ go to separate calls (:func:`group_key`);
* the encoder length: the longest context any window of the call asks for (a short-context
  window batched with a full-context one is decoded with the full 30 s, which Whisper was
  trained on: its text may differ a little from a call of its own, not for the worse);
* the prompt length: CTranslate2 needs ``<|startoftranscript|>`` at the same position in every
  prompt of a batch and has no padding mask, so a batch cuts its windows' previous text to the
  shortest among them (dropping the oldest tokens, as Whisper itself does past 223 tokens).
  Windows that would lose more than half of their previous text go to another batch.

What this relies on, and the versions it was tested with, are listed in ``pins.py``;
``tests/asr/test_adapter_contract.py`` fails when an upgrade moves any of it. The pure parts
live beside it: window state and batch sharing in ``windows.py``, word timing in ``words.py``,
the temperature fallback's rules and decisions in ``fallback.py`` (``DecodeRules`` is still
importable from here).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens, merge_punctuations

from wirescribe.asr import words
from wirescribe.asr.fallback import (
    Decoded,
    DecodeRules,
    is_silence,
    kept_after_fallback,
    mean_logprob,
    needs_fallback,
)
from wirescribe.asr.types import DecodeOptions, Segment, Transcript, Word
from wirescribe.asr.windows import FULL_FRAMES, Window, fit, group_key, last, prompt_batches

__all__ = ["DEFAULT_RULES", "BatchItem", "DecodeRules", "WhisperAdapter"]

log = logging.getLogger(__name__)

BatchItem = tuple[np.ndarray, DecodeOptions]
DEFAULT_RULES = DecodeRules()  # faster-whisper's transcribe() defaults


@dataclass(frozen=True)
class _Prompt:
    """How one batch's prompts are made: the hotwords' tokens (the same for every window of a
    group), then each window's previous text, cut to ``limit`` and then to ``shared`` tokens."""

    hot: list[int]
    limit: int
    shared: int


@dataclass
class _Pass:
    """What one pass of the loop decoded for one window (before word timestamps)."""

    window: Window
    seek: int  # where the pass started, in frames
    size: int  # frames of audio it covered
    segments: list[dict[str, Any]]
    single_timestamp_ending: bool
    decoded: Decoded


class WhisperAdapter:
    """Decodes batches of windows with one loaded ``faster_whisper.WhisperModel``.

    Thread-safe: the model calls are CTranslate2's (which takes concurrent calls); the only
    shared state is the per-language tokenizer cache.
    """

    def __init__(self, model: WhisperModel, rules: DecodeRules = DEFAULT_RULES) -> None:
        self.model = model
        self.rules = rules
        self._tokenizers: dict[tuple[str, str], tuple[Tokenizer, list[int]]] = {}
        self._lock = threading.Lock()

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def supported_languages(self) -> list[str]:
        """The languages the model's tokenizer has a token for: faster-whisper lists all 100 of
        Whisper's for any multilingual model, but base (99 in its config) has no ``<|yue|>``, and
        a session asked for it decoded Spanish as "The The The…"."""
        tokenizer = self.model.hf_tokenizer
        return [c for c in self.model.supported_languages if tokenizer.token_to_id(f"<|{c}|>") is not None]

    def decode(self, items: Sequence[BatchItem]) -> list[Transcript]:
        """Blocking: transcribe every ``(audio, options)`` window (16 kHz mono float32); results
        in the order of ``items``. An error in any window raises for the whole call."""
        windows = [Window(audio, options, self.model.feature_extractor(audio)) for audio, options in items]
        self._set_languages(windows)
        groups: dict[tuple[Any, ...], list[Window]] = {}
        for w in windows:
            groups.setdefault(group_key(w.options, w.language), []).append(w)
        for group in groups.values():
            self._decode_group(group)
        return [Transcript(tuple(w.segments), w.language, w.duration) for w in windows]

    def _set_languages(self, windows: list[Window]) -> None:
        """English for an English-only model; the asked language; else the language Whisper hears
        in the window's first 30 s (one batched full-context encode for all that need it)."""
        unknown: list[Window] = []
        for w in windows:
            if not self.multilingual:
                w.language = "en"
            elif w.options.language:
                w.language = w.options.language
            else:
                unknown.append(w)
        if unknown:
            features = np.stack([fit(w.features[:, :FULL_FRAMES], FULL_FRAMES) for w in unknown])
            results = self.model.model.detect_language(self.model.encode(features))
            for w, ranked in zip(unknown, results, strict=True):
                w.language = ranked[0][0][2:-2]  # "<|de|>" -> "de"
                log.debug("detected language %s (p=%.2f)", w.language, ranked[0][1])

    def _tokenizer(self, language: str, task: str = "transcribe") -> tuple[Tokenizer, list[int]]:
        """The tokenizer for ``language`` and ``task`` (``transcribe`` or ``translate``: the task
        token of the prompt) and the tokens it suppresses (built once per pair)."""
        task = task if self.multilingual else "transcribe"  # an English-only model has no task token
        with self._lock:
            if (language, task) not in self._tokenizers:
                tokenizer = Tokenizer(self.model.hf_tokenizer, self.multilingual, task, language)
                suppressed = get_suppressed_tokens(tokenizer, list(self.rules.suppress_tokens))
                self._tokenizers[language, task] = (tokenizer, list(suppressed or ()))
            return self._tokenizers[language, task]

    def _decode_group(self, windows: list[Window]) -> None:
        """``generate_segments``'s loop for windows of one group. A window under 30 s usually
        takes one pass; one whose last segment is unfinished goes on from its last timestamp or
        word, as in faster-whisper, in a later (smaller) batch."""
        tokenizer, suppressed = self._tokenizer(windows[0].language, windows[0].options.task)
        hot = self._hot_tokens(tokenizer, windows[0].options.hotwords)  # the group shares them
        limit = self._prompt_limit - len(hot)  # previous text makes room for the hotwords
        for w in windows:
            if w.options.prompt:
                w.all_tokens = tokenizer.encode(" " + w.options.prompt.strip())
        while active := [w for w in windows if not w.done]:
            seeks = [w.seek for w in active]
            for batch, shared in prompt_batches(active, limit):
                self._step(tokenizer, suppressed, batch, _Prompt(hot, limit, shared))
            for w, seek in zip(active, seeks, strict=True):
                if w.seek <= seek:  # a pass that did not move on would decode the same audio forever
                    w.seek = w.content_frames

    @property
    def _prompt_limit(self) -> int:
        """Tokens of hotwords and previous text a prompt holds (``get_prompt``'s own cut)."""
        return int(self.model.max_length) // 2 - 1

    def _hot_tokens(self, tokenizer: Tokenizer, hotwords: str | None) -> list[int]:
        """The hotwords' tokens, at most half of the prompt (the rest is previous text)."""
        if not hotwords or not hotwords.strip():
            return []
        return tokenizer.encode(" " + hotwords.strip())[: self._prompt_limit // 2]

    def _step(
        self, tokenizer: Tokenizer, suppressed: list[int], windows: list[Window], prompt: _Prompt
    ) -> None:
        """One pass of ``generate_segments``'s loop body for every window of the batch."""
        model = self.model
        sizes = [min(FULL_FRAMES, w.content_frames - w.seek) for w in windows]
        width = max(w.frames for w in windows)
        features = np.stack(
            [fit(w.features[:, w.seek : w.seek + n], width) for w, n in zip(windows, sizes, strict=True)]
        )
        encoder_output = model.encode(features)
        log.debug(
            "%d windows: %d encoder frames, previous text cut to %d", len(windows), width, prompt.shared
        )
        decoded = self._generate(tokenizer, suppressed, windows, prompt, features, encoder_output)
        time_per_frame = model.feature_extractor.time_per_frame
        passes: list[_Pass] = []
        for w, size, d in zip(windows, sizes, decoded, strict=True):
            if is_silence(d, self.rules):
                w.seek += size  # fast-forward, as faster-whisper does
                continue
            seek = w.seek
            segments, w.seek, single_timestamp_ending = model._split_segments_by_timestamps(
                tokenizer=tokenizer,
                tokens=d.tokens,
                time_offset=seek * time_per_frame,
                segment_size=size,
                segment_duration=size * time_per_frame,
                seek=seek,
            )
            passes.append(_Pass(w, seek, size, segments, single_timestamp_ending, d))
        if passes and windows[0].options.word_timestamps:
            self._add_words(tokenizer, windows, sizes, passes, encoder_output)
        for p in passes:
            self._keep(tokenizer, p)
        for w in windows:
            if w.options.single_pass:
                w.seek = w.content_frames

    def _generate(
        self,
        tokenizer: Tokenizer,
        suppressed: list[int],
        windows: list[Window],
        prompt: _Prompt,
        features: np.ndarray,
        encoder_output: Any,
    ) -> list[Decoded]:
        """Each window's result: decoded at the first temperature, then the windows that fail
        the checks again at the next one, and so on; a window that fails them all keeps its most
        probable result (among the not too repetitive ones), as in faster-whisper."""
        model, r = self.model, self.rules
        budgets = [self._token_budget(tokenizer, w, prompt) for w in windows]
        prompts = [
            model.get_prompt(tokenizer, prompt.hot + last(w.previous_tokens(prompt.limit), prompt.shared),
                             without_timestamps=w.options.without_timestamps)
            for w in windows
        ]  # fmt: skip
        # The smallest max_length that lets every window generate its own budget.
        max_length = max(max(2 * b, b + len(prompts[0]) - 1) for b in budgets)
        tried: list[list[Decoded]] = [[] for _ in windows]
        final: list[Decoded | None] = [None] * len(windows)
        pending = list(range(len(windows)))
        temperatures = windows[0].options.temperature
        for temperature in temperatures:
            if len(pending) < len(windows):  # the encoder output of just the windows left
                encoder_output = model.encode(features[pending])
            kwargs: dict[str, Any] = {"beam_size": windows[0].options.beam_size, "patience": r.patience}
            if temperature > 0:  # sampling: the best of several candidates
                kwargs = {"beam_size": 1, "num_hypotheses": r.best_of, "sampling_topk": 0,
                          "sampling_temperature": temperature}  # fmt: skip
            results = model.model.generate(
                encoder_output,
                [prompts[i] for i in pending],
                length_penalty=r.length_penalty,
                repetition_penalty=r.repetition_penalty,
                no_repeat_ngram_size=r.no_repeat_ngram_size,
                max_length=max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=r.suppress_blank,
                suppress_tokens=suppressed,
                max_initial_timestamp_index=round(r.max_initial_timestamp / model.time_precision),
                **kwargs,
            )
            still: list[int] = []
            for i, result in zip(pending, results, strict=True):
                d = self._score(tokenizer, result, budgets[i], temperature)
                tried[i].append(d)
                if needs_fallback(d, r):
                    still.append(i)
                else:
                    final[i] = d
            pending = still
            if not pending:
                break
        for i in pending:  # failed at every temperature
            final[i] = kept_after_fallback(tried[i], r, temperatures[-1])
        assert all(d is not None for d in final), "every window ends with a result"
        return [d for d in final if d is not None]

    def _token_budget(self, tokenizer: Tokenizer, w: Window, prompt: _Prompt) -> int:
        """Tokens the window may generate with its own (uncut) prompt: CTranslate2 generates at
        most ``max_length - prompt + 1`` and at most half of ``max_length``."""
        own = self.model.get_prompt(
            tokenizer,
            prompt.hot + w.previous_tokens(prompt.limit),
            without_timestamps=w.options.without_timestamps,
        )
        new_tokens = w.options.max_new_tokens
        max_length = len(own) + new_tokens if new_tokens is not None else self.model.max_length
        if max_length > self.model.max_length:
            raise ValueError(
                f"a prompt of {len(own)} tokens and max_new_tokens {new_tokens} exceed the model's "
                f"{self.model.max_length} tokens"
            )
        return min(max_length // 2, max_length - len(own) + 1)

    def _score(self, tokenizer: Tokenizer, result: Any, budget: int, temperature: float) -> Decoded:
        tokens, avg_logprob = mean_logprob(
            list(result.sequences_ids[0]), result.scores[0], budget, self.rules.length_penalty
        )
        ratio = get_compression_ratio(tokenizer.decode(tokens).strip())
        return Decoded(tokens, float(avg_logprob), temperature, float(ratio), float(result.no_speech_prob))

    def _add_words(
        self,
        tokenizer: Tokenizer,
        windows: list[Window],
        sizes: list[int],
        passes: list[_Pass],
        encoder_output: Any,
    ) -> None:
        """Word timestamps for every pass from one batched alignment, then faster-whisper's
        per-window rules (``words.py``) and its seek to the last word."""
        by_window = {id(p.window): p for p in passes}
        # The alignment runs on the whole batch's encoder output; a window skipped as silence
        # (rare) is aligned with no text.
        texts = [
            [t for s in by_window[id(w)].segments for t in s["tokens"] if t < tokenizer.eot]
            if id(w) in by_window else []
            for w in windows
        ]  # fmt: skip
        alignments = self.model.find_alignment(tokenizer, texts, encoder_output, sizes)
        for w, alignment in zip(windows, alignments, strict=True):
            p = by_window.get(id(w))
            if p is None:
                continue
            words.time_words(
                p.segments,
                alignment,
                eot=tokenizer.eot,
                frames_per_second=self.model.frames_per_second,
                merge_punctuations=merge_punctuations,
                prepend_punctuations=self.rules.prepend_punctuations,
                append_punctuations=self.rules.append_punctuations,
                last_speech_timestamp=w.last_speech_timestamp,
            )
            end = words.last_word_end(p.segments)
            if not p.single_timestamp_ending and end is not None and end > p.seek * self._time_per_frame:
                w.seek = round(end * self.model.frames_per_second)
            if end is not None:
                w.last_speech_timestamp = end

    @property
    def _time_per_frame(self) -> float:
        return float(self.model.feature_extractor.time_per_frame)

    def _keep(self, tokenizer: Tokenizer, p: _Pass) -> None:
        """The pass's segments as :class:`Segment`, skipping empty ones, as faster-whisper yields
        them; then the prompt reset for the next pass."""
        w, d = p.window, p.decoded
        for s in p.segments:
            text = tokenizer.decode(s["tokens"])
            if s["start"] == s["end"] or not text.strip():
                continue
            w.all_tokens.extend(s["tokens"])
            w.segments.append(
                Segment(
                    start=float(s["start"]),
                    end=float(s["end"]),
                    text=text,
                    words=tuple(
                        Word(float(x["start"]), float(x["end"]), x["word"], float(x["probability"]))
                        for x in s.get("words") or ()
                    ),
                    avg_logprob=d.avg_logprob,
                    no_speech_prob=d.no_speech_prob,
                    compression_ratio=d.compression_ratio,
                    temperature=d.temperature,
                    tokens=tuple(s["tokens"]),
                    seek=p.seek,
                )
            )
        if not w.options.condition_on_previous_text or d.temperature > self.rules.prompt_reset_on_temperature:
            w.prompt_reset_since = len(w.all_tokens)
