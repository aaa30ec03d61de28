"""Windows of several sessions in one model call: one batched encode, generate and word alignment.

On a GPU a batch of windows costs little more than one, so the scheduler can serve many sessions
per model call. On a CPU the encoder's cost grows with the batch and only the decoder's steps are
shared: on 2 cores four 8 s live windows take 0.62 s batched against 0.91 s one by one (2 threads),
but two one-thread workers side by side do better still and answer each window sooner, so the
CPU default is workers, not batches (batch size 1; see ``ServerConfig.resolved``).

:func:`transcribe_batch` decodes each window the way :meth:`Transcriber.transcribe` would —
faster-whisper's ``generate_segments`` loop, whose pieces (``get_prompt``,
``_split_segments_by_timestamps``, ``find_alignment``, ``add_word_timestamps``) are reused, not
copied — but runs every model step for all windows at once. Two things a batch must share:

* the encoder length: the longest context any window of the batch asks for (a short-context
  window batched with a full-context one is decoded with the full 30 s, which Whisper was
  trained on: its text may differ a little from a serial call's, not for the worse);
* the prompt length: CTranslate2 needs ``<|startoftranscript|>`` at the same position in every
  prompt of a batch and has no padding mask, so a batch cuts its windows' previous text to the
  shortest among them (dropping the oldest tokens, as Whisper itself does past 223 tokens).
  Windows that would lose more than half of their previous text go to another batch.

Options a batch cannot share (a temperature fallback, sampling, VAD, extra faster-whisper
arguments, language detection) send a window through the ordinary serial call.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wirescribe.asr.model import DecodeOptions, Segment, Transcriber, Transcript, Word, context_frames

log = logging.getLogger(__name__)

BatchItem = tuple[np.ndarray, DecodeOptions]
BatchFn = Callable[[list[BatchItem]], list[Transcript]]

SAMPLE_RATE = 16000
CUDA_BATCH_SIZE = 8
PROMPT_KEEP = 0.5  # no window of a batch keeps less than this share of its previous text


def default_batch_size(device: str) -> int:
    """Windows per model call when the setting is 0 (auto): a GPU batches, a CPU runs workers."""
    return CUDA_BATCH_SIZE if device == "cuda" else 1


def transcribe_batch(transcriber: Transcriber, items: list[BatchItem]) -> list[Transcript]:
    """Blocking: transcribe every ``(audio, options)`` window; results in the order of ``items``.

    Windows whose options agree (language, beam size, word timestamps, a single temperature of
    0) are decoded together; a window alone in its kind, or with options only the serial path
    supports, gets :meth:`Transcriber.transcribe`. An error in any window raises for the whole
    call (the scheduler then retries its windows one by one).
    """
    results: list[Transcript | None] = [None] * len(items)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, options) in enumerate(items):
        key = _batch_key(transcriber, options)
        if key is None:
            results[i] = transcriber.transcribe(*items[i])
        else:
            groups.setdefault(key, []).append(i)
    for (language, *_), indices in groups.items():
        if len(indices) == 1:
            results[indices[0]] = transcriber.transcribe(*items[indices[0]])
            continue
        decoded = _decode_together(transcriber, language, [items[i] for i in indices])
        for i, transcript in zip(indices, decoded, strict=True):
            results[i] = transcript
    return [r for r in results if r is not None]


def _batch_key(transcriber: Transcriber, options: DecodeOptions) -> tuple[Any, ...] | None:
    """What windows must share to be decoded together; ``None``: only the serial path will do."""
    if options.vad_filter or options.extra or options.temperature != (0.0,):
        return None
    # English-only models always decode English; multilingual ones need the language given.
    language = transcriber.default_language or options.language
    if language is None:
        return None
    return language, options.beam_size, options.word_timestamps, options.without_timestamps


@functools.cache
def _defaults() -> dict[str, Any]:
    """faster-whisper's own defaults for the options ``DecodeOptions`` leaves at their default."""
    from faster_whisper import WhisperModel

    return {n: p.default for n, p in inspect.signature(WhisperModel.transcribe).parameters.items()}


class _Window:
    """One window's decoding state: the locals of faster-whisper's ``generate_segments``."""

    def __init__(self, model: Any, tokenizer: Any, audio: np.ndarray, options: DecodeOptions) -> None:
        self.options = options
        self.duration = len(audio) / SAMPLE_RATE
        self.features = model.feature_extractor(audio)
        self.content_frames = self.features.shape[-1] - 1
        full = model.feature_extractor.nb_max_frames
        self.frames = context_frames(self.duration, options.context_seconds) or full
        self.seek = 0
        self.all_tokens: list[int] = tokenizer.encode(" " + options.prompt.strip()) if options.prompt else []
        self.prompt_reset_since = 0
        self.last_speech_timestamp = 0.0
        self.segments: list[Segment] = []

    @property
    def done(self) -> bool:
        return self.seek >= self.content_frames

    def previous_tokens(self, model: Any) -> list[int]:
        """The previous text the prompt holds (``get_prompt`` keeps the last 223 tokens)."""
        return self.all_tokens[self.prompt_reset_since :][-(model.max_length // 2 - 1) :]


def _decode_together(transcriber: Transcriber, language: str, items: list[BatchItem]) -> list[Transcript]:
    from faster_whisper.tokenizer import Tokenizer

    model = transcriber._model  # the shared faster_whisper.WhisperModel
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
    )
    windows = [_Window(model, tokenizer, audio, options) for audio, options in items]
    # A window under 30 s usually takes one step; one whose last segment is unfinished goes on
    # from its last word, as in faster-whisper, in a later (smaller) batch.
    while active := [w for w in windows if not w.done]:
        seeks = [w.seek for w in active]
        for batch, shared in _prompt_batches(model, active):
            _step(model, tokenizer, batch, shared)
        for w, seek in zip(active, seeks, strict=True):
            if w.seek <= seek:  # a pass that did not move on would decode the same audio forever
                w.seek = w.content_frames
    return [Transcript(tuple(w.segments), language, w.duration) for w in windows]


def _prompt_batches(model: Any, windows: list[_Window]) -> list[tuple[list[_Window], int]]:
    """Split ``windows`` into batches whose previous text can be cut to one length (returned with
    each batch): longest first, taking every window that keeps ``PROMPT_KEEP`` of its own."""
    by_length = sorted(windows, key=lambda w: len(w.previous_tokens(model)), reverse=True)
    batches: list[tuple[list[_Window], int]] = []
    while by_length:
        longest = len(by_length[0].previous_tokens(model))
        batch = [w for w in by_length if _shares(len(w.previous_tokens(model)), longest)]
        by_length = by_length[len(batch) :]
        batches.append((batch, len(batch[-1].previous_tokens(model))))
    return batches


def _shares(length: int, longest: int) -> bool:
    if longest == 0:
        return length == 0
    return length > 0 and length >= PROMPT_KEEP * longest


def _shared_prompts(model: Any, tokenizer: Any, windows: list[_Window], shared: int) -> list[list[int]]:
    """Each window's prompt, its previous text cut to the batch's ``shared`` length."""
    prompts = []
    for w in windows:
        previous = w.previous_tokens(model)
        prompts.append(
            model.get_prompt(tokenizer, previous[len(previous) - shared :], w.options.without_timestamps)
        )
    return prompts


def _token_budget(max_length: int, prompt_length: int) -> int:
    """Tokens CTranslate2 generates at most for ``max_length`` (it also caps them at half)."""
    return min(max_length // 2, max_length - prompt_length + 1)


@dataclass
class _Pass:
    """What one pass of the loop decoded for one window (before word timestamps)."""

    window: _Window
    seek: int  # where the pass started, in frames
    size: int  # frames of audio it covered
    segments: list[dict[str, Any]]
    single_timestamp_ending: bool
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


def _step(model: Any, tokenizer: Any, windows: list[_Window], shared: int) -> None:
    """One pass of ``generate_segments``'s loop body for every window of the batch, batched."""
    from faster_whisper.audio import pad_or_trim

    sizes = [min(model.feature_extractor.nb_max_frames, w.content_frames - w.seek) for w in windows]
    width = max(w.frames for w in windows)
    features = np.stack(
        [pad_or_trim(w.features[:, w.seek : w.seek + n], width) for w, n in zip(windows, sizes, strict=True)]
    )
    encoder_output = model.encode(features)
    log.debug(
        "batch of %d windows: %d encoder frames, previous text cut to %d tokens", len(windows), width, shared
    )
    passes = _generate(model, tokenizer, windows, sizes, shared, encoder_output)
    if passes and windows[0].options.word_timestamps:
        _add_words(model, tokenizer, windows, sizes, passes, encoder_output)
    for p in passes:
        _keep_segments(tokenizer, p)
    for w in windows:
        if w.options.single_pass:
            w.seek = w.content_frames


def _generate(
    model: Any, tokenizer: Any, windows: list[_Window], sizes: list[int], shared: int, encoder_output: Any
) -> list[_Pass]:
    """The batched ``generate_with_fallback`` (one temperature) and segment split; windows the
    model hears as silence move on without a pass."""
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    d = _defaults()
    budgets = []
    for w in windows:
        previous = w.previous_tokens(model)
        own = model.get_prompt(tokenizer, previous, w.options.without_timestamps)  # as a serial call
        new_tokens = w.options.max_new_tokens
        max_length = len(own) + new_tokens if new_tokens is not None else model.max_length
        if max_length > model.max_length:
            raise ValueError(
                f"a prompt of {len(own)} tokens and max_new_tokens {new_tokens} exceed the model's "
                f"{model.max_length} tokens"
            )
        budgets.append(_token_budget(max_length, len(own)))
    prompts = _shared_prompts(model, tokenizer, windows, shared)
    # The smallest max_length that lets every window generate its own budget.
    max_length = max(max(2 * b, b + len(prompts[0]) - 1) for b in budgets)
    results = model.model.generate(
        encoder_output,
        prompts,
        beam_size=windows[0].options.beam_size,
        patience=d["patience"],
        length_penalty=d["length_penalty"],
        repetition_penalty=d["repetition_penalty"],
        no_repeat_ngram_size=d["no_repeat_ngram_size"],
        max_length=max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=d["suppress_blank"],
        suppress_tokens=list(get_suppressed_tokens(tokenizer, d["suppress_tokens"])),
        max_initial_timestamp_index=round(d["max_initial_timestamp"] / model.time_precision),
    )
    time_per_frame = model.feature_extractor.time_per_frame
    passes: list[_Pass] = []
    for w, size, budget, result in zip(windows, sizes, budgets, results, strict=True):
        tokens = result.sequences_ids[0]
        # scores[0] is the mean log probability per token (length penalty 1); a window the batch
        # let run past its own budget is cut there, its mean taken from the longer run.
        cum_logprob = result.scores[0] * len(tokens) ** d["length_penalty"]
        if len(tokens) > budget:
            cum_logprob *= budget / len(tokens)
            tokens = tokens[:budget]
        avg_logprob = cum_logprob / (len(tokens) + 1)
        if result.no_speech_prob > d["no_speech_threshold"] and not avg_logprob > d["log_prob_threshold"]:
            w.seek += size  # silence: skipped, as faster-whisper does
            continue
        seek = w.seek
        segments, w.seek, single_timestamp_ending = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=tokens,
            time_offset=seek * time_per_frame,
            segment_size=size,
            segment_duration=size * time_per_frame,
            seek=seek,
        )
        compression_ratio = get_compression_ratio(tokenizer.decode(tokens).strip())
        passes.append(
            _Pass(w, seek, size, segments, single_timestamp_ending, avg_logprob, compression_ratio,
                  result.no_speech_prob)
        )  # fmt: skip
    return passes


def _add_words(
    model: Any,
    tokenizer: Any,
    windows: list[_Window],
    sizes: list[int],
    passes: list[_Pass],
    encoder_output: Any,
) -> None:
    """Word timestamps for every pass from one batched alignment, then faster-whisper's own
    per-window rules (``add_word_timestamps``) and its seek to the last word."""
    from faster_whisper import WhisperModel
    from faster_whisper.utils import get_end

    d = _defaults()
    by_window = {id(p.window): p for p in passes}
    # The alignment runs on the whole batch's encoder output; a window skipped as silence
    # (rare) is aligned with no text.
    texts = [_text_tokens(tokenizer, by_window[id(w)]) if id(w) in by_window else [] for w in windows]
    alignments = model.find_alignment(tokenizer, texts, encoder_output, sizes)
    for w, alignment in zip(windows, alignments, strict=True):
        p = by_window.get(id(w))
        if p is None:
            continue
        WhisperModel.add_word_timestamps(
            _Aligned(model, alignment),
            [p.segments],
            tokenizer,
            None,
            p.size,
            d["prepend_punctuations"],
            d["append_punctuations"],
            last_speech_timestamp=w.last_speech_timestamp,
        )
        if not p.single_timestamp_ending:
            last_word_end = get_end(p.segments)
            if last_word_end is not None and last_word_end > p.seek * model.feature_extractor.time_per_frame:
                w.seek = round(last_word_end * model.frames_per_second)
        last_word_end = get_end(p.segments)
        if last_word_end is not None:
            w.last_speech_timestamp = last_word_end


def _text_tokens(tokenizer: Any, p: _Pass) -> list[int]:
    return [t for s in p.segments for t in s["tokens"] if t < tokenizer.eot]


def _keep_segments(tokenizer: Any, p: _Pass) -> None:
    """The pass's segments as :class:`Segment`, skipping empty ones, as faster-whisper yields them."""
    w = p.window
    for s in p.segments:
        text = tokenizer.decode(s["tokens"])
        if s["start"] == s["end"] or not text.strip():
            continue
        w.all_tokens.extend(s["tokens"])
        words = s.get("words") or ()
        w.segments.append(
            Segment(
                start=float(s["start"]),
                end=float(s["end"]),
                text=text,
                words=tuple(
                    Word(float(x["start"]), float(x["end"]), x["word"], float(x["probability"]))
                    for x in words
                ),
                avg_logprob=float(p.avg_logprob),
                no_speech_prob=float(p.no_speech_prob),
                compression_ratio=float(p.compression_ratio),
                temperature=0.0,
                tokens=tuple(s["tokens"]),
                seek=p.seek,
            )
        )
    if not w.options.condition_on_previous_text:
        w.prompt_reset_since = len(w.all_tokens)


class _Aligned:
    """Stands in for the model in ``WhisperModel.add_word_timestamps``: hands it one window's
    alignment from the batched ``find_alignment`` call, so each window keeps its own
    ``last_speech_timestamp`` (faster-whisper's batched pipeline carries it across windows)."""

    def __init__(self, model: Any, alignment: list[dict[str, Any]]) -> None:
        self.frames_per_second = model.frames_per_second
        self._alignment = alignment

    def find_alignment(self, *args: Any, **kwargs: Any) -> list[list[dict[str, Any]]]:
        return [self._alignment]
