"""Word error rate, with a light English normaliser (case, punctuation, hyphens, titles), and
the loss detector: which reference utterances a transcript mostly lacks."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint", "ms": "miss"}


def normalize_words(text: str) -> list[str]:
    """Lower-case words without punctuation; hyphenated words split; common titles spelt out."""
    text = re.sub(r"[-–—_/]", " ", text.lower()).replace("’", "'")
    words = (re.sub(r"[^\w']", "", w).strip("'") for w in text.split())
    return [_ABBREVIATIONS.get(w, w) for w in words if w]


def _split_compounds(words: list[str], other: list[str]) -> list[str]:
    """Spell a closed compound ("coldhearted") as two words where the other text has them
    ("cold hearted"): the same word in another spelling is not an error."""
    pairs = {a + b: (a, b) for a, b in pairwise(other)}
    out: list[str] = []
    for w in words:
        out.extend(pairs.get(w, (w,)))
    return out


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, after normalising both."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    ref, hyp = _split_compounds(ref, hyp), _split_compounds(hyp, ref)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / len(ref)


# -- lost utterances ---------------------------------------------------------------------------

LOST_BELOW = 0.5  # an utterance is lost when less than this share of its words reached the text


@dataclass(frozen=True)
class UtteranceMatch:
    """How much of one reference utterance a transcript holds, after one word-level alignment of
    the whole transcript with all the utterances in order (the normaliser of ``word_error_rate``).

    A word counts as found only where the alignment pairs it with the same word: a transcript
    that says the previous utterance again in this one's place finds (almost) none of its words.
    """

    index: int
    reference: str
    words: int  # the reference utterance's words, normalised
    found: int  # of them, aligned to the same hypothesis word
    missing_tail: int  # trailing reference words not found (0: the utterance's end arrived)
    heard: str  # hypothesis words aligned inside this utterance (substitutions, insertions)
    between: str  # hypothesis words between the nearest found words of its neighbours

    @property
    def recall(self) -> float:
        return self.found / self.words if self.words else 1.0

    def lost(self, below: float = LOST_BELOW) -> bool:
        """Mostly missing: fewer than ``below`` of its words were found."""
        return self.recall < below


def _alignment(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """A minimal-edit alignment as (reference index, hypothesis index) pairs in order; None on
    one side is an insertion or a deletion. Ties prefer a diagonal step, so a substitution is
    kept in place rather than split into a deletion and an insertion."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        row, up = cost[i], cost[i - 1]
        row[0] = i
        r = ref[i - 1]
        for j in range(1, m + 1):
            row[j] = min(up[j] + 1, row[j - 1] + 1, up[j - 1] + (r != hyp[j - 1]))
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((i, j))
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
            pairs.append((i, None))
        else:
            j -= 1
            pairs.append((None, j))
    pairs.reverse()
    return pairs


def match_utterances(
    references: Sequence[str], hypothesis: str | Sequence[str]
) -> tuple[UtteranceMatch, ...]:
    """Align a transcript (text, or its final segments in order) with the reference utterances
    it should hold, in order, and say for each how many of its words arrived.

    Insertions belong to the utterance of the reference word before them (the first utterance
    when none is): a repeat spoken after an utterance is read as part of it.
    """
    text = hypothesis if isinstance(hypothesis, str) else " ".join(hypothesis)
    hyp_raw = normalize_words(text)
    refs = [normalize_words(r) for r in references]
    refs = [_split_compounds(r, hyp_raw) for r in refs]
    owner = [u for u, words in enumerate(refs) for _ in words]
    ref = [w for words in refs for w in words]
    hyp = _split_compounds(hyp_raw, ref)
    pairs = _alignment(ref, hyp)
    found = [False] * len(ref)
    heard: list[list[str]] = [[] for _ in refs]
    first_found: list[int | None] = [None] * len(refs)
    last_found: list[int | None] = [None] * len(refs)
    current = 0
    for i, j in pairs:
        if i is not None:
            current = owner[i]
        if j is None:
            continue
        if i is not None and ref[i] == hyp[j]:
            found[i] = True
            first_found[current] = j if first_found[current] is None else first_found[current]
            last_found[current] = j
        if refs:
            heard[current].append(hyp[j])
    out: list[UtteranceMatch] = []
    start = 0
    for u, words in enumerate(refs):
        mine = found[start : start + len(words)]
        start += len(words)
        tail = next((k for k, f in enumerate(reversed(mine)) if f), len(mine))
        before = max((x for x in last_found[:u] if x is not None), default=-1)
        after = min((x for x in first_found[u + 1 :] if x is not None), default=len(hyp))
        out.append(UtteranceMatch(
            index=u, reference=references[u], words=len(words), found=sum(mine), missing_tail=tail,
            heard=" ".join(heard[u]), between=" ".join(hyp[before + 1 : after]),
        ))  # fmt: skip
    return tuple(out)


def lost_utterances(
    references: Sequence[str], hypothesis: str | Sequence[str], *, below: float = LOST_BELOW
) -> tuple[UtteranceMatch, ...]:
    """The reference utterances whose words are mostly missing from the transcript."""
    return tuple(m for m in match_utterances(references, hypothesis) if m.lost(below))
