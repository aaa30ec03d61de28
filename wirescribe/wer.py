"""Word error rate, with a light English normaliser (case, punctuation, hyphens, titles)."""

from __future__ import annotations

import re
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
