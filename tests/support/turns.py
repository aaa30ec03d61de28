"""Turns for the end-of-turn benchmark and its e2e test: real speech, ~2 s between turns, and a
0.6–1.0 s hesitation cut into about half of them, mid-sentence, at a word boundary.

Shared by ``bench/turn_bench.py`` and ``tests/e2e/test_turns.py``. A turn is one whole clip of
``tests/data`` (the LibriVox utterances: real read speech; the support-call prompts), loaded as
:mod:`tests.support.dense` loads them. Where a hesitation may go in each clip is decided once,
offline, by the project's own transcriber (word timestamps, beam 5) and the clip's energy: the
boundary between two words in the middle third of the speech, not after a sentence's end, whose
quietest 20 ms frame is the quietest — cutting there splits no syllable. The words and that
choice are cached in ``tests/data/turns/words.json`` so the tests never run the model for it;
``python -m tests.support.turns`` writes it again (after a clip changes: :func:`clip_words`
refuses a cache whose clip lengths no longer match).

Each turn remembers where its last word ends in the stream (the clock of end-of-turn latency:
the clip's speech end, as :func:`tests.support.dense.speech_end` finds it) and where its
inserted pause lies (the clock of false cuts).
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.dense import DATA, Clip, clips
from wirescribe.audio.decode import SAMPLE_RATE

CACHE = DATA / "turns" / "words.json"
TURN_GAPS = (1.8, 2.2)  # seconds of silence between two turns (~2 s)
PAUSES = (0.6, 1.0)  # seconds of a hesitation cut into a turn
PAUSE_SHARE = 0.5  # about half of the turns hesitate
NOISE_DBFS = -60.0  # the noise floor under the whole stream (dense.py's quiet microphone)
SENTENCE_ENDS = (".", "?", "!")
MAX_CUT_DB = -20.0  # a boundary louder than this (under the loudest frame) is inside a sound
_FRAME = 320  # 20 ms


@dataclass(frozen=True)
class ClipWords:
    """What the offline pass found in one clip."""

    name: str
    samples: int  # the clip's length (the cache's check that the clip is the same)
    words: tuple[tuple[float, float, str], ...]  # (start, end, text), seconds of the clip
    speech_end: float  # seconds: where its speech ends (energy, as dense.speech_end)
    cut: float | None  # seconds: where a hesitation may be inserted (None: no good boundary)
    cut_after: int | None  # index of the word the hesitation follows
    cut_db: float | None  # the cut frame's level, dB under the clip's loudest frame


def _levels(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // _FRAME
    frames = audio[: n * _FRAME].reshape(n, _FRAME).astype(np.float64)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    return np.asarray(level - level.max())


def choose_cut(
    audio: np.ndarray, words: Sequence[tuple[float, float, str]]
) -> tuple[float, int, float] | None:
    """(seconds, index of the word before, level dB) of the quietest word boundary in the middle
    third of the speech, after a word that does not end a sentence; None if there is none, or if
    the quietest is louder than :data:`MAX_CUT_DB` (words run together there: a cut would split
    a sound).

    The boundary's quiet point is searched from 50 ms inside the word before to 50 ms inside the
    word after (Whisper's word edges are approximate), so the cut lands in the real gap."""
    if len(words) < 3:
        return None
    lo_t, hi_t = words[0][0], words[-1][1]
    third = (hi_t - lo_t) / 3
    level = _levels(audio)
    best: tuple[float, int, float] | None = None
    for i in range(len(words) - 1):
        end, nxt = words[i][1], words[i + 1][0]
        if not lo_t + third <= end <= hi_t - third or words[i][2].strip().endswith(SENTENCE_ENDS):
            continue
        a = max(0, int((min(end, nxt) - 0.05) * SAMPLE_RATE) // _FRAME)
        b = min(len(level), int((max(end, nxt) + 0.05) * SAMPLE_RATE) // _FRAME + 1)
        if b <= a:
            continue
        k = a + int(np.argmin(level[a:b]))
        candidate = ((k + 0.5) * _FRAME / SAMPLE_RATE, i, float(level[k]))
        if best is None or candidate[2] < best[2]:
            best = candidate
    return best if best is not None and best[2] <= MAX_CUT_DB else None


def analyse(pool: Sequence[Clip]) -> list[ClipWords]:
    """The offline pass: each clip's words (the project's transcriber, beam 5) and its cut."""
    from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber

    model = Transcriber.load(ModelConfig())
    out = []
    for c in pool:
        result = model.transcribe(c.audio, DecodeOptions(language="en", beam_size=5, word_timestamps=True))
        words = tuple((round(w.start, 3), round(w.end, 3), w.text.strip()) for s in result.segments
                      for w in s.words)  # fmt: skip
        cut = choose_cut(c.audio, words)
        out.append(ClipWords(
            c.name, len(c.audio), words, round(c.speech_end / SAMPLE_RATE, 3),
            round(cut[0], 3) if cut else None, cut[1] if cut else None, round(cut[2], 1) if cut else None,
        ))  # fmt: skip
    return out


def write_cache(found: Sequence[ClipWords], path: Path = CACHE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"name": c.name, "samples": c.samples, "speech_end": c.speech_end, "cut": c.cut,
             "cut_after": c.cut_after, "cut_db": c.cut_db,
             "words": [list(w) for w in c.words]} for c in found]  # fmt: skip
    note = "written by `python -m tests.support.turns` (the project's transcriber, beam 5): do not edit"
    path.write_text(json.dumps({"note": note, "clips": rows}, indent=1) + "\n")


@cache
def clip_words(path: Path = CACHE) -> dict[str, ClipWords]:
    """The cached offline pass, by clip name; ``RuntimeError`` if a clip changed since."""
    rows = json.loads(path.read_text())["clips"]
    out = {
        r["name"]: ClipWords(
            r["name"], r["samples"], tuple((w[0], w[1], w[2]) for w in r["words"]),
            r["speech_end"], r["cut"], r["cut_after"], r["cut_db"],
        )
        for r in rows
    }  # fmt: skip
    for c in clips():
        if c.name not in out or out[c.name].samples != len(c.audio):
            raise RuntimeError(f"{path} is stale for clip {c.name}: run python -m tests.support.turns")
    return out


@dataclass(frozen=True)
class Turn:
    index: int
    name: str  # the clip's
    text: str  # its reference text
    start: float  # seconds of stream: where the clip begins
    speech_start: float  # where its first word begins
    last_word_end: float  # where its speech ends (the clock of the end-of-turn latency)
    pause: tuple[float, float] | None  # the inserted hesitation (start, end) in the stream; None: none
    cut_after: str | None  # the word the hesitation follows


@dataclass(frozen=True)
class TurnSpeech:
    audio: np.ndarray  # 16 kHz mono float32
    turns: tuple[Turn, ...]
    seed: int

    @property
    def reference(self) -> str:
        return " ".join(t.text for t in self.turns)

    @property
    def pauses(self) -> int:
        return sum(1 for t in self.turns if t.pause is not None)

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _order(pool: Sequence[Clip], count: int, rng: random.Random) -> list[Clip]:
    """``count`` clips, rounds of the pool in a seeded order, never the same twice in a row."""
    order: list[Clip] = []
    while len(order) < count:
        round_ = list(pool)
        rng.shuffle(round_)
        if order and len(round_) > 1 and round_[0] is order[-1]:
            round_[0], round_[-1] = round_[-1], round_[0]
        order += round_[: count - len(order)]
    return order


def build_turns(
    count: int,
    *,
    seed: int = 0,
    kinds: Sequence[str] = ("librivox", "prompts"),
    gaps: tuple[float, float] = TURN_GAPS,
    pauses: tuple[float, float] = PAUSES,
    pause_share: float = PAUSE_SHARE,
    noise_dbfs: float | None = NOISE_DBFS,
    lead_in: float = 0.5,
) -> TurnSpeech:
    """``count`` turns (whole clips of ``kinds`` in a seeded order), ``lead_in`` s of silence
    first and a gap uniform in ``gaps`` after each; ``round(count * pause_share)`` of those whose
    clip has a cut get a hesitation uniform in ``pauses`` there (digital silence, under the same
    noise floor as the rest: ``noise_dbfs`` of white noise over the whole stream)."""
    rng = random.Random(seed)
    found = clip_words()
    order = _order(clips(kinds), count, rng)
    can = [k for k, c in enumerate(order) if found[c.name].cut is not None]
    hesitate = set(rng.sample(can, min(len(can), round(count * pause_share))))
    parts: list[np.ndarray] = [np.zeros(int(lead_in * SAMPLE_RATE), np.float32)]
    at = len(parts[0])
    turns: list[Turn] = []
    for k, c in enumerate(order):
        w = found[c.name]
        first = at / SAMPLE_RATE
        speech_start = first + (w.words[0][0] if w.words else 0.0)
        pause: tuple[float, float] | None = None
        after: str | None = None
        if k in hesitate and w.cut is not None and w.cut_after is not None:
            cut = int(w.cut * SAMPLE_RATE)
            length = int(rng.uniform(*pauses) * SAMPLE_RATE)
            parts += [c.audio[:cut], np.zeros(length, np.float32), c.audio[cut:]]
            pause = (first + cut / SAMPLE_RATE, first + (cut + length) / SAMPLE_RATE)
            after = w.words[w.cut_after][2]
            at += len(c.audio) + length
        else:
            parts.append(c.audio)
            at += len(c.audio)
        shift = pause[1] - pause[0] if pause else 0.0
        turns.append(Turn(k, c.name, c.text, first, speech_start, first + w.speech_end + shift, pause, after))
        gap = int(rng.uniform(*gaps) * SAMPLE_RATE)
        parts.append(np.zeros(gap, np.float32))
        at += gap
    audio = np.concatenate(parts).astype(np.float32)
    if noise_dbfs is not None:
        noise = np.random.default_rng(seed).standard_normal(len(audio)) * 10 ** (noise_dbfs / 20)
        audio = np.clip(audio + noise.astype(np.float32), -1.0, 1.0)
    return TurnSpeech(audio, tuple(turns), seed)


SPLIT_MARGIN = 0.4  # s: an end this far before a turn's last word ends it early (word times are rough)


@dataclass(frozen=True)
class TurnEnds:
    """Where one session's end events (``end_of_turn``, ``utterance_end``, …) fell.

    Each event is placed at its last word's end (its ``words``; else its ``end``) and given to
    the last turn begun by then. There it is a *false cut* when it falls in the turn's inserted
    hesitation (from :data:`SPLIT_MARGIN` before it to its middle), a *split* when it falls
    elsewhere more than :data:`SPLIT_MARGIN` before the turn's last word (the clip's own
    pauses), else the turn's
    *end*: its latency is its arrival on the microphone's clock (``at`` + one slice: a slice is
    spoken once its time has passed) less the turn's last word's end. A second end of a turn is
    *extra*; an end that arrived once the next turn's speech had begun is *late*."""

    latencies: dict[int, float]  # turn index -> latency of its end (s)
    false_cuts: tuple[dict[str, Any], ...]
    splits: tuple[dict[str, Any], ...]
    missed: tuple[int, ...]  # turns without an end
    extra: int
    late: int


def place_ends(
    events: Sequence[tuple[float, dict[str, Any]]], turns: Sequence[Turn], slice_s: float
) -> TurnEnds:
    """``events``: (arrival in seconds since the stream started, message) of one kind of end."""
    ends: dict[int, float] = {}
    false_cuts: list[dict[str, Any]] = []
    splits: list[dict[str, Any]] = []
    extra = late = 0
    for at, m in events:
        words = m.get("words") or []
        pos = float(words[-1]["end"]) if words else float(m["end"])
        begun = [t for t in turns if t.start - 0.3 <= pos]
        if not begun:
            extra += 1
            continue
        turn, mic = begun[-1], at + slice_s
        seen = {"turn": turn.index, "clip": turn.name, "type": m.get("type"), "position": round(pos, 2),
                "arrived": round(mic, 2), "text": m.get("text", ""), "trigger": m.get("trigger")}  # fmt: skip
        if (
            turn.pause is not None
            and turn.pause[0] - SPLIT_MARGIN <= pos < (turn.pause[0] + turn.pause[1]) / 2
        ):
            false_cuts.append({**seen, "pause": [round(x, 2) for x in turn.pause], "after": turn.cut_after})
        elif pos < turn.last_word_end - SPLIT_MARGIN:
            splits.append({**seen, "last_word_end": round(turn.last_word_end, 2)})
        elif turn.index in ends:
            extra += 1
        else:
            ends[turn.index] = mic - turn.last_word_end
            nxt = turn.index + 1
            if nxt < len(turns) and mic > turns[nxt].speech_start:
                late += 1
    missed = tuple(t.index for t in turns if t.index not in ends)
    return TurnEnds(ends, tuple(false_cuts), tuple(splits), missed, extra, late)


def main() -> int:
    """Run the offline pass over every clip and write :data:`CACHE`."""
    found = analyse(clips())
    write_cache(found)
    for c in found:
        where = "no cut"
        if c.cut is not None and c.cut_after is not None and c.cut_db is not None:
            where = f"cut {c.cut:.2f} s after {c.words[c.cut_after][2]!r} ({c.cut_db:.0f} dB)"
        last = c.words[-1][1] if c.words else float("nan")
        print(f"{c.name:>16}: {len(c.words):2d} words, last word ends {last:.2f} s, "
              f"speech {c.speech_end:.2f} s, {where}")  # fmt: skip
    print(f"wrote {CACHE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
