"""wer.py: the normaliser and word error rate on known values."""

from __future__ import annotations

import pytest

from wirescribe.wer import lost_utterances, match_utterances, normalize_words, word_error_rate


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


# -- the loss detector -------------------------------------------------------------------------

UTTERANCES = [
    "thank you for calling super awesome support",
    "how can I help you today",
    "my order never arrived and I would like a refund",
    "let me look that up for you",
]


def test_nothing_lost_through_punctuation_case_and_a_few_errors() -> None:
    hypothesis = (
        "Thank you for calling Super Awesome support. How can I help you today? My order never "
        "arrived, and I'd like a refund. Let me look that up for you."
    )
    matches = match_utterances(UTTERANCES, hypothesis)
    assert [m.index for m in matches] == [0, 1, 2, 3]
    assert [m.words for m in matches] == [7, 6, 10, 7]
    assert [m.found for m in matches] == [7, 6, 8, 7]  # "I'd like" for "I would like": 2 missing
    assert all(m.missing_tail == 0 for m in matches)
    assert lost_utterances(UTTERANCES, hypothesis) == ()


def test_final_segments_are_joined() -> None:
    segments = [" Thank you for calling super awesome support.", " How can I help you today?"]
    assert [m.recall for m in match_utterances(UTTERANCES[:2], segments)] == [1.0, 1.0]


def test_one_utterance_dropped() -> None:
    hypothesis = " ".join(UTTERANCES[i] for i in (0, 1, 3))
    lost = lost_utterances(UTTERANCES, hypothesis)
    assert [m.index for m in lost] == [2]
    assert lost[0].found == 0 and lost[0].missing_tail == 10
    assert lost[0].heard == "" and lost[0].between == ""


def test_an_utterance_replaced_by_a_repeat_of_the_one_before() -> None:
    """The shape seen live: in one utterance's place, a few words of the utterance before."""
    hypothesis = " ".join(
        [UTTERANCES[0], UTTERANCES[1], "thank you for calling super awesome", UTTERANCES[3]]
    )
    lost = lost_utterances(UTTERANCES, hypothesis)
    assert [m.index for m in lost] == [2]
    assert lost[0].found == 0
    assert lost[0].between == "thank you for calling super awesome"  # the evidence: what came instead
    assert [m.found for m in match_utterances(UTTERANCES, hypothesis)] == [7, 6, 0, 7]


def test_a_lost_tail() -> None:
    """A tail under half the utterance is reported (``missing_tail``) but not counted as lost;
    more than half is."""
    short_tail = " ".join([*UTTERANCES[:2], "my order never arrived and I would", UTTERANCES[3]])
    third = match_utterances(UTTERANCES, short_tail)[2]
    assert (third.found, third.missing_tail, third.lost()) == (7, 3, False)
    long_tail = " ".join([*UTTERANCES[:2], "my order never arrived", UTTERANCES[3]])
    third = match_utterances(UTTERANCES, long_tail)[2]
    assert (third.found, third.missing_tail, third.lost()) == (4, 6, True)
    assert third.recall == pytest.approx(0.4)
    assert lost_utterances(UTTERANCES, long_tail, below=0.3) == ()


def test_the_last_utterance_missing_and_an_empty_transcript() -> None:
    lost = lost_utterances(UTTERANCES, " ".join(UTTERANCES[:3]))
    assert [m.index for m in lost] == [3] and lost[0].missing_tail == 7
    assert [m.index for m in lost_utterances(UTTERANCES, "")] == [0, 1, 2, 3]
    assert match_utterances([], "some words") == ()


def test_an_utterance_said_twice_in_the_reference_is_found_twice_only_if_heard_twice(
    utterances: list,
) -> None:
    """Real streams cycle the same utterances: alignment in order tells the two takes apart."""
    a, b = utterances[0].text, utterances[1].text
    assert lost_utterances([a, b, a, b], " ".join([a, b, a, b])) == ()
    assert [m.index for m in lost_utterances([a, b, a, b], " ".join([a, b, b]))] == [2]


def test_inserted_words_belong_to_the_utterance_before_them() -> None:
    matches = match_utterances(UTTERANCES[:2], UTTERANCES[0] + " uh um " + UTTERANCES[1])
    assert matches[0].heard == "thank you for calling super awesome support uh um"
    assert matches[1].heard == "how can i help you today"
    assert all(m.recall == 1.0 for m in matches)
