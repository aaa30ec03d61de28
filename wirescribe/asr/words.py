"""Word timestamps for one window from its alignment: faster-whisper's rules, per window.

faster-whisper's ``WhisperModel.add_word_timestamps`` aligns and times the words of every
window it is given in one go, and carries one ``last_speech_timestamp`` across all of them:
right for the 30 s windows of one file, wrong for a batch of unrelated sessions' windows (one
session's last word would decide whether another's first word is cut short). The adapter runs
the batched alignment (``find_alignment``, one model call) and then applies these rules to each
window with its own state. The code follows faster-whisper 1.2's ``add_word_timestamps`` line
for line; ``tests/asr/test_adapter.py`` checks that both give the same words on real speech.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SENTENCE_END_MARKS = ".。!！?？"
MAX_MEDIAN_WORD_SECONDS = 0.7

Alignment = list[dict[str, Any]]  # find_alignment's words: word, tokens, start, end, probability
MergePunctuations = Callable[[Alignment, str, str], None]


def time_words(
    segments: list[dict[str, Any]],
    alignment: Alignment,
    *,
    eot: int,
    frames_per_second: float,
    merge_punctuations: MergePunctuations,
    prepend_punctuations: str,
    append_punctuations: str,
    last_speech_timestamp: float,
) -> None:
    """Set ``words`` on each of one pass's ``segments`` (dicts with seek, start, end, tokens) from
    the pass's ``alignment``, given where the window's speech last ended. Mutates both arguments,
    as faster-whisper does (segment starts and ends move to their words')."""
    if not segments:
        return
    text_tokens = [[t for t in s["tokens"] if t < eot] for s in segments]
    median_duration, max_duration = _word_durations(alignment)
    merge_punctuations(alignment, prepend_punctuations, append_punctuations)
    time_offset = segments[0]["seek"] / frames_per_second
    word_index = 0
    for segment, tokens in zip(segments, text_tokens, strict=True):
        saved_tokens = 0
        words: list[dict[str, Any]] = []
        while word_index < len(alignment) and saved_tokens < len(tokens):
            timing = alignment[word_index]
            if timing["word"]:
                words.append(
                    {
                        "word": timing["word"],
                        "start": round(time_offset + timing["start"], 2),
                        "end": round(time_offset + timing["end"], 2),
                        "probability": timing["probability"],
                    }
                )
            saved_tokens += len(timing["tokens"])
            word_index += 1
        if words:
            _fit_first_words(words, last_speech_timestamp, median_duration, max_duration)
            _fit_to_segment(segment, words, median_duration)
            last_speech_timestamp = segment["end"]
        segment["words"] = words


def _word_durations(alignment: Alignment) -> tuple[float, float]:
    """The median word's duration (at most 0.7 s) and twice it; words at sentence ends longer
    than that are cut to it (a pause after a full stop is not part of the word)."""
    durations = np.array([w["end"] - w["start"] for w in alignment])
    durations = durations[durations.nonzero()]
    median = min(MAX_MEDIAN_WORD_SECONDS, float(np.median(durations)) if len(durations) else 0.0)
    longest = median * 2
    if len(durations):
        for i in range(1, len(alignment)):
            if alignment[i]["end"] - alignment[i]["start"] > longest:
                if alignment[i]["word"] in SENTENCE_END_MARKS:
                    alignment[i]["end"] = alignment[i]["start"] + longest
                elif alignment[i - 1]["word"] in SENTENCE_END_MARKS:
                    alignment[i]["start"] = alignment[i]["end"] - longest
    return median, longest


def _fit_first_words(
    words: list[dict[str, Any]], last_speech: float, median_duration: float, max_duration: float
) -> None:
    """After a pause, the first word (and the second) may not be longer than twice the median."""
    if words[0]["end"] - last_speech > median_duration * 4 and (
        words[0]["end"] - words[0]["start"] > max_duration
        or (len(words) > 1 and words[1]["end"] - words[0]["start"] > max_duration * 2)
    ):
        if len(words) > 1 and words[1]["end"] - words[1]["start"] > max_duration:
            boundary = max(words[1]["end"] / 2, words[1]["end"] - max_duration)
            words[0]["end"] = words[1]["start"] = boundary
        words[0]["start"] = max(0, words[0]["end"] - max_duration)


def _fit_to_segment(segment: dict[str, Any], words: list[dict[str, Any]], median_duration: float) -> None:
    """Prefer the segment's own start (end) when its first (last) word is too long; otherwise
    the segment starts (ends) with its words."""
    if segment["start"] < words[0]["end"] and segment["start"] - 0.5 > words[0]["start"]:
        words[0]["start"] = max(0, min(words[0]["end"] - median_duration, segment["start"]))
    else:
        segment["start"] = words[0]["start"]
    if segment["end"] > words[-1]["start"] and segment["end"] + 0.5 < words[-1]["end"]:
        words[-1]["end"] = max(words[-1]["start"] + median_duration, segment["end"])
    else:
        segment["end"] = words[-1]["end"]


def last_word_end(segments: list[dict[str, Any]]) -> float | None:
    """The end of the last word of ``segments``, else of the last segment (faster-whisper's
    ``get_end``); None when there is no segment."""
    for segment in reversed(segments):
        for word in reversed(segment.get("words") or ()):
            return float(word["end"])
    return float(segments[-1]["end"]) if segments else None
