"""Shared helpers of the benchmark scripts: speech streams, truth words, latency, tables, RSS.

Not a test module and not part of the server: the scripts in ``bench/`` import it as ``_common``
(``bench/`` is the script directory, so it is on ``sys.path``).
"""

from __future__ import annotations

import difflib
import json
import os
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "tests" / "data" / "librivox"
DENSE_GAPS = (0.25, 0.9)  # dense speech: the gaps between utterances (s), as in a meeting or a call
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from wirescribe.asr.model import DecodeOptions, Transcriber, Word  # noqa: E402
from wirescribe.audio.decode import SAMPLE_RATE, decode_file  # noqa: E402
from wirescribe.wer import normalize_words  # noqa: E402


@dataclass(frozen=True)
class Speech:
    audio: np.ndarray  # 16 kHz mono float32
    reference: str
    utterances: int
    # (first sample, end sample, index into librivox()) of each utterance, in order
    placed: tuple[tuple[int, int, int], ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def librivox() -> list[tuple[np.ndarray, str]]:
    """The project's LibriVox utterances: (audio, reference text), in file order."""
    return [(decode_file(w), w.with_suffix(".txt").read_text().strip()) for w in sorted(DATA.glob("*.wav"))]


def build_speech(
    seconds: float | None = None,
    *,
    repeats: int = 2,
    pause: float | tuple[float, float] = 1.0,
    seed: int = 0,
) -> Speech:
    """The utterances cycled with a pause after each (fixed, or uniform in ``(lo, hi)``).

    Without ``seconds``: ``repeats`` full rounds. With it: whole utterances until the stream is
    at least ``seconds`` long (so the reference text always matches the audio).
    """
    utts = librivox()
    rng = random.Random(seed)
    parts: list[np.ndarray] = []
    refs: list[str] = []
    placed: list[tuple[int, int, int]] = []
    total = 0
    i = 0
    while (total < seconds * SAMPLE_RATE) if seconds is not None else (i < repeats * len(utts)):
        audio, text = utts[i % len(utts)]
        gap = pause if isinstance(pause, (int, float)) else rng.uniform(*pause)
        parts += [audio, np.zeros(int(gap * SAMPLE_RATE), dtype=np.float32)]
        refs.append(text)
        placed.append((total, total + len(audio), i % len(utts)))
        total += len(audio) + int(gap * SAMPLE_RATE)
        i += 1
    return Speech(np.concatenate(parts), " ".join(refs), i, tuple(placed))


def truth_words(model: Transcriber, audio: np.ndarray) -> tuple[list[Word], str]:
    """Offline word-timestamped transcription (beam 5, Whisper's full context) of one utterance:
    the word end times latencies are measured from, and the offline text (the WER reference
    point). Meant for audio under 30 s: see ``speech_truth`` for a longer stream."""
    result = model.transcribe(audio, DecodeOptions(language="en", beam_size=5, word_timestamps=True))
    return [w for s in result.segments for w in s.words], result.text


def speech_truth(model: Transcriber, speech: Speech) -> tuple[list[Word], str]:
    """``truth_words`` for a joined stream, one utterance at a time, shifted to where each sits.

    Not one pass over the whole stream: past Whisper's 30 s window tiny.en's long-form decoding
    repeats a sentence and drops others (WER 0.38 on the 60 s stream), which would make it a
    wrong clock for every word after the first window.
    """
    cache: dict[int, tuple[list[Word], str]] = {}  # an utterance that comes again is the same audio
    words: list[Word] = []
    texts: list[str] = []
    for first, end, index in speech.placed:
        if index not in cache:
            cache[index] = truth_words(model, speech.audio[first:end])
        ws, text = cache[index]
        start = first / SAMPLE_RATE
        words += [Word(w.start + start, w.end + start, w.text, w.probability) for w in ws]
        texts.append(text.strip())
    return words, " ".join(texts)


def _norm(words: Sequence[Word]) -> list[str]:
    return [" ".join(normalize_words(w.text)) for w in words]


def commit_latencies(truth: Sequence[Word], commits: Sequence[tuple[float, str]]) -> list[float]:
    """Seconds from each word's end in the audio to its arrival in ``committed``.

    ``commits`` are (time on the audio clock, committed text so far), in order. As in
    ``bench/policy_sim.py``: each committed word gets the time of the first message that held
    it, and the final committed words are aligned to the truth words with difflib.
    """
    arrival: list[float] = []
    for at, text in commits:
        n = len(normalize_words(text))
        arrival += [at] * (n - len(arrival))
    final_words = normalize_words(commits[-1][1]) if commits else []
    matcher = difflib.SequenceMatcher(a=_norm(truth), b=final_words[: len(arrival)], autojunk=False)
    out = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            out.append(arrival[block.b + k] - truth[block.a + k].end)
    return out


def first_seen_latencies(truth: Sequence[Word], outputs: Sequence[tuple[float, str]]) -> list[float]:
    """Seconds from each word's end to the first output whose text holds it (aligned with
    difflib to the truth words): comparable between a committing policy's ``text`` and a
    design that only ever re-sends one whole transcript."""
    truth_norm = _norm(truth)
    seen: dict[int, float] = {}
    for at, text in outputs:
        matcher = difflib.SequenceMatcher(a=truth_norm, b=normalize_words(text), autojunk=False)
        for block in matcher.get_matching_blocks():
            for k in range(block.size):
                seen.setdefault(block.a + k, at)
    return [seen[i] - truth[i].end for i in sorted(seen)]


def stats(values: Sequence[float]) -> dict[str, float | None]:
    """median, p90, max (None when empty)."""
    if not len(values):
        return {"median": None, "p90": None, "max": None, "n": 0}
    a = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
        "n": len(a),
    }


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rss_mib(pid: int | None = None) -> float:
    """Resident set size of a process (this one by default), MiB, from /proc."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def save_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1, default=float))
    return path


def machine() -> dict[str, Any]:
    """What the figures were taken on."""
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load]}
