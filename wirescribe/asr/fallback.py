"""The temperature fallback's decisions, without a model (pure): what faster-whisper's
``generate_with_fallback`` decides about a window's result once the model has produced it.

The adapter (``adapter.py``) runs the model and hands each result here as a :class:`Decoded`:
whether it is silence (:func:`is_silence`), whether it must be decoded again at the next
temperature (:func:`needs_fallback`), which result a window keeps when every temperature failed
(:func:`kept_after_fallback`), and the mean log probability of a result cut to its own token
budget (:func:`mean_logprob`). The rules themselves are :class:`DecodeRules`: faster-whisper's
``transcribe()`` defaults, which ``tests/asr/test_adapter_contract.py`` holds equal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class DecodeRules:
    """What :class:`~wirescribe.asr.types.DecodeOptions` does not expose: faster-whisper's
    ``transcribe()`` defaults (the contract test holds them equal). Tests lower the thresholds
    to force a fallback."""

    best_of: int = 5  # candidates sampled at a temperature above 0
    patience: float = 1.0
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    compression_ratio_threshold: float | None = 2.4  # above: too repetitive, try hotter
    log_prob_threshold: float | None = -1.0  # below: too improbable, try hotter
    no_speech_threshold: float | None = 0.6  # above, with a low log probability: silence
    prompt_reset_on_temperature: float = 0.5  # a hotter result is not previous text for the next
    suppress_blank: bool = True
    suppress_tokens: tuple[int, ...] = (-1,)  # -1: Whisper's non-speech symbols
    max_initial_timestamp: float = 1.0
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class Decoded:
    """One window's result at one temperature (``generate_with_fallback``'s tuple)."""

    tokens: list[int]
    avg_logprob: float
    temperature: float
    compression_ratio: float
    no_speech_prob: float


def mean_logprob(
    tokens: list[int], score: float, budget: int, length_penalty: float
) -> tuple[list[int], float]:
    """``tokens`` cut to ``budget`` and their mean log probability, from CTranslate2's ``score``
    (the sum divided by ``len(tokens) ** length_penalty``). A window that a batch let run past its
    own budget is cut there, its mean taken from the longer run."""
    cum_logprob = score * len(tokens) ** length_penalty
    if len(tokens) > budget:
        cum_logprob *= budget / len(tokens)
        tokens = tokens[:budget]
    return tokens, cum_logprob / (len(tokens) + 1)


def is_silence(d: Decoded, rules: DecodeRules) -> bool:
    """The model thinks there is no speech and its text is improbable: the pass is skipped."""
    if rules.no_speech_threshold is None or d.no_speech_prob <= rules.no_speech_threshold:
        return False
    return rules.log_prob_threshold is None or not d.avg_logprob > rules.log_prob_threshold


def needs_fallback(d: Decoded, rules: DecodeRules) -> bool:
    """Too repetitive or too improbable, and not silence: decode again at the next temperature."""
    ratio = rules.compression_ratio_threshold
    too_repetitive = ratio is not None and d.compression_ratio > ratio
    improbable = rules.log_prob_threshold is not None and d.avg_logprob < rules.log_prob_threshold
    silent = (
        rules.no_speech_threshold is not None and d.no_speech_prob > rules.no_speech_threshold and improbable
    )
    return (too_repetitive or improbable) and not silent


def kept_after_fallback(tried: list[Decoded], rules: DecodeRules, last_temperature: float) -> Decoded:
    """A window that failed at every temperature keeps its most probable result among the not
    too repetitive ones (all of them if none is), marked with the last temperature so that
    ``prompt_reset_on_temperature`` applies as in faster-whisper."""
    threshold = rules.compression_ratio_threshold
    fine = [d for d in tried if threshold is None or d.compression_ratio <= threshold]
    best = max(fine or tried, key=lambda d: d.avg_logprob)
    return replace(best, temperature=last_temperature)
