"""Finding the committed words again in a hypothesis that re-reads them (pure)."""

from __future__ import annotations

from wirescribe.asr.types import Word
from wirescribe.streaming.agreement import after_committed, not_said_before


def w(start: float, end: float, text: str) -> Word:
    return Word(start, end, text, 0.9)


COMMITTED = [w(52.0, 52.3, " to"), w(52.3, 52.5, " be"), w(52.5, 52.8, " ill"), w(52.8, 53.6, "-disposed?")]


def test_the_last_word_re_read_in_another_spelling_is_not_new() -> None:
    """'ill-disposed' re-read as 'old-sposed': '-sposed' begins inside the committed word and
    ends past it; it is that word again, not a new one."""
    hypothesis = [w(52.0, 52.3, " to"), w(52.3, 52.5, " be"), w(52.5, 52.8, " old"),
                  w(53.0, 53.9, "-sposed."), w(55.5, 55.8, " He"), w(55.8, 56.1, " might")]  # fmt: skip
    words, anchored = after_committed(COMMITTED, hypothesis, 50.0)
    assert anchored
    assert [x.text for x in words] == [" He", " might"]


def test_a_word_said_again_after_the_committed_one_is_new() -> None:
    hypothesis = [*COMMITTED, w(53.7, 54.4, " disposed"), w(54.5, 54.8, " again")]
    words, _ = after_committed(COMMITTED, hypothesis, 50.0)
    assert [x.text for x in words] == [" disposed", " again"]


def test_a_window_after_the_committed_words_takes_everything() -> None:
    hypothesis = [w(54.0, 54.3, " He"), w(54.3, 54.6, " was")]
    assert after_committed(COMMITTED, hypothesis, 53.9) == (hypothesis, True)


def test_a_re_read_that_only_looks_like_the_committed_word_is_not_new() -> None:
    committed = [w(52.3, 52.5, " be"), w(52.5, 52.7, " able"), w(52.7, 52.9, " to"),
                 w(52.9, 53.6, " suppose?")]  # fmt: skip
    hypothesis = [*committed[:3], w(53.1, 53.9, "-sposed."), w(55.5, 55.8, " He")]
    words, _ = after_committed(committed, hypothesis, 50.0)
    assert [x.text for x in words] == [" He"]


def test_an_unanchored_pass_saying_the_committed_words_again_holds_nothing_new() -> None:
    """A live pass that re-read committed audio and stopped at a pause aligns those words over
    the speech it did not decode: 'thank you so much.' again, timed over 'amiable woman ...'."""
    committed = [w(25.0, 25.3, " thank"), w(25.3, 25.5, " you"), w(25.5, 25.7, " so"),
                 w(25.7, 26.0, " much."), w(28.5, 28.7, " Had"), w(28.7, 28.9, " he"),
                 w(28.9, 29.3, " married"), w(29.3, 29.4, " a"), w(29.4, 29.7, " more")]  # fmt: skip
    again = [w(26.1, 27.0, " thank"), w(27.0, 29.9, " you"), w(29.9, 31.0, " so"), w(31.0, 34.0, " much.")]
    words, anchored = after_committed(committed[-3:], again, 26.08)
    assert not anchored and [x.text for x in words] == [" you", " so", " much."]  # times alone look new
    assert not_said_before(words, committed) == []
    new = [w(30.0, 30.5, " amiable"), w(30.5, 31.0, " woman")]
    assert not_said_before(new, committed) == new
