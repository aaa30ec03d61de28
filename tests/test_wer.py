"""wer.py: the normaliser and word error rate on known values."""

from __future__ import annotations

import pytest

from wirescribe.wer import normalize_words, word_error_rate


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("  many   spaces\tand\nlines ", ["many", "spaces", "and", "lines"]),
        ("well-known self—made re–entry a/b snake_case",
         "well known self made re entry a b snake case".split()),
        ("Mr. Smith, Mrs. Jones, Dr. Who, St. Paul's, Ms. X",
         "mister smith missus jones doctor who saint paul's miss x".split()),
        ("don't 'quoted' rock'n'roll", ["don't", "quoted", "rock'n'roll"]),
        ("It cost 42 dollars.", ["it", "cost", "42", "dollars"]),
        ("... -- !!!", []),
        ("", []),
    ],
)  # fmt: skip
def test_normalize_words(text: str, words: list[str]) -> None:
    assert normalize_words(text) == words


@pytest.mark.parametrize(
    ("reference", "hypothesis", "wer"),
    [
        ("the cat sat on the mat", "the cat sat on the mat", 0.0),
        ("the cat sat on the mat", "The cat sat on the mat.", 0.0),
        ("the cat sat on the mat", "the cat sit on the mat", 1 / 6),  # one substitution
        ("the cat sat on the mat", "the cat on the mat", 1 / 6),  # one deletion
        ("the cat sat on the mat", "the cat sat on on the mat", 1 / 6),  # one insertion
        ("the cat sat on the mat", "cat sat on the mat the", 2 / 6),  # deletion + insertion
        ("a b c d", "", 1.0),  # everything deleted
        ("a", "a b c", 2.0),  # insertions can push the rate past 1
        ("one two three four", "one too three for", 0.5),
        ("", "", 0.0),
        ("", "something", 1.0),
        ("...", "", 0.0),  # punctuation only: nothing to say
        ("Mr. Dashwood", "mister dashwood", 0.0),
        ("ill-disposed young man", "ill disposed young man", 0.0),
    ],
)
def test_word_error_rate(reference: str, hypothesis: str, wer: float) -> None:
    assert word_error_rate(reference, hypothesis) == pytest.approx(wer)


def test_reversed_words() -> None:
    # four substitutions; keeping b or c aligned with itself costs 2 + 2 edits around it: 4/4
    assert word_error_rate("a b c d", "d c b a") == 1.0
    assert word_error_rate("a b c", "c b a") == pytest.approx(2 / 3)  # b stays, a and c substituted


def test_symmetric_in_edits_not_in_rate() -> None:
    ref, hyp = "one two three four five six", "one two three"
    assert word_error_rate(ref, hyp) == pytest.approx(0.5)
    assert word_error_rate(hyp, ref) == pytest.approx(1.0)


def test_librivox_reference_against_itself(utterances: list) -> None:
    for u in utterances:
        assert word_error_rate(u.text, u.text.upper() + ".") == 0.0
    first = utterances[0].text
    words = first.split()
    assert word_error_rate(first, " ".join(words[1:])) == pytest.approx(1 / len(words))


def test_typographic_apostrophe_is_an_apostrophe() -> None:
    assert word_error_rate("don't stop, it's fine", "Don’t stop, it’s fine.") == 0.0
