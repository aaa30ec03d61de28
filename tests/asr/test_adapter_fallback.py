"""The temperature fallback's decisions (``wirescribe/asr/fallback.py``) without a model: the
same rules as faster-whisper's ``generate_with_fallback`` (the adapter's end-to-end fallback test
is in test_adapter.py)."""

from __future__ import annotations

import pytest

from wirescribe.asr.adapter import DecodeRules as FromAdapter
from wirescribe.asr.fallback import (
    Decoded,
    DecodeRules,
    is_silence,
    kept_after_fallback,
    mean_logprob,
    needs_fallback,
)

RULES = DecodeRules()


def result(avg_logprob: float = -0.3, ratio: float = 1.5, no_speech: float = 0.1, t: float = 0.0) -> Decoded:
    return Decoded([1, 2, 3], avg_logprob, t, ratio, no_speech)


def test_the_rules_are_still_importable_from_the_adapter() -> None:
    assert FromAdapter is DecodeRules


def test_a_probable_unrepetitive_result_is_kept() -> None:
    assert not needs_fallback(result(), RULES)
    assert not is_silence(result(), RULES)


@pytest.mark.parametrize(
    ("decoded", "hotter"),
    [
        (result(ratio=2.5), True),  # too repetitive
        (result(avg_logprob=-1.2), True),  # too improbable
        (result(avg_logprob=-1.2, no_speech=0.7), False),  # improbable because silent: no retry
        (result(ratio=2.5, no_speech=0.7), True),  # silent but probable: the repetition counts
    ],
)
def test_what_is_decoded_again_hotter(decoded: Decoded, hotter: bool) -> None:
    assert needs_fallback(decoded, RULES) is hotter


def test_silence_needs_both_no_speech_and_an_improbable_text() -> None:
    assert is_silence(result(avg_logprob=-1.2, no_speech=0.7), RULES)
    assert not is_silence(result(avg_logprob=-0.5, no_speech=0.7), RULES)
    assert not is_silence(result(avg_logprob=-1.2, no_speech=0.5), RULES)
    assert not is_silence(result(avg_logprob=-1.2, no_speech=0.7), DecodeRules(no_speech_threshold=None))


def test_thresholds_set_to_none_never_ask_for_a_retry() -> None:
    off = DecodeRules(compression_ratio_threshold=None, log_prob_threshold=None)
    assert not needs_fallback(result(avg_logprob=-5.0, ratio=9.0), off)


def test_after_every_temperature_failed_the_most_probable_unrepetitive_result_is_kept() -> None:
    tried = [result(-1.5, 1.2, t=0.0), result(-1.1, 3.0, t=0.2), result(-1.3, 2.0, t=0.4)]
    kept = kept_after_fallback(tried, RULES, 1.0)
    assert (kept.avg_logprob, kept.compression_ratio, kept.temperature) == (-1.3, 2.0, 1.0)
    all_repetitive = [result(-1.5, 3.0), result(-1.1, 4.0)]
    assert kept_after_fallback(all_repetitive, RULES, 1.0).avg_logprob == -1.1


def test_the_mean_log_probability_of_a_result_cut_to_its_budget() -> None:
    # CTranslate2's score is the sum over len ** length_penalty; the mean divides by len + 1.
    tokens, mean = mean_logprob([5, 6, 7, 8], -0.5, budget=10, length_penalty=1.0)
    assert tokens == [5, 6, 7, 8] and mean == pytest.approx(-2.0 / 5)
    tokens, mean = mean_logprob([5, 6, 7, 8], -0.5, budget=2, length_penalty=1.0)
    assert tokens == [5, 6] and mean == pytest.approx(-2.0 * 2 / 4 / 3)
