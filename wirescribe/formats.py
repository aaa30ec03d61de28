"""Transcripts as text, JSON, SRT and WebVTT — pure functions from data to a string.

Several files become one output: text puts each file's name before its transcript, JSON is a
list of the per-file objects, and SRT/VTT lay the files end to end on one timeline (each file's
cues shifted by the durations of the files before it), as if they were played back to back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wirescribe.asr.model import Segment, Transcript

FORMATS = ("text", "json", "srt", "vtt")


@dataclass(frozen=True)
class FileTranscript:
    """One input file's name and its transcript."""

    name: str
    transcript: Transcript


def render(results: Sequence[FileTranscript], fmt: str, *, words: bool = False) -> str:
    """The whole output for ``results`` in format ``fmt``; ``words`` adds word times to JSON."""
    if fmt == "text":
        return to_text(results)
    if fmt == "json":
        return to_json(results, words=words)
    if fmt in ("srt", "vtt"):
        return to_subtitles(results, vtt=fmt == "vtt")
    raise ValueError(f"unknown transcript format {fmt!r} (known: {', '.join(FORMATS)})")


def to_text(results: Sequence[FileTranscript]) -> str:
    """The plain transcript; with several files, ``name: text`` per file."""
    if len(results) == 1:
        return results[0].transcript.text + "\n"
    return "".join(f"{r.name}: {r.transcript.text}\n" for r in results)


def _segment_dict(index: int, s: Segment, words: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": index, "start": round(s.start, 3), "end": round(s.end, 3),
                           "text": s.text.strip()}  # fmt: skip
    if words:
        out["words"] = [
            {"start": round(w.start, 3), "end": round(w.end, 3), "word": w.text.strip(),
             "probability": round(w.probability, 4)}
            for w in s.words
        ]  # fmt: skip
    return out


def file_dict(result: FileTranscript, *, words: bool = False) -> dict[str, Any]:
    """One file's transcript as a JSON-ready dict."""
    t = result.transcript
    return {
        "file": result.name,
        "language": t.language,
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": [_segment_dict(i, s, words) for i, s in enumerate(t.segments)],
    }


def to_json(results: Sequence[FileTranscript], *, words: bool = False) -> str:
    """One object for one file, a list of them for several."""
    items = [file_dict(r, words=words) for r in results]
    return json.dumps(items[0] if len(items) == 1 else items, ensure_ascii=False, indent=2) + "\n"


def timestamp(seconds: float, *, vtt: bool = False) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{'.' if vtt else ','}{ms:03d}"


def cues(results: Sequence[FileTranscript]) -> list[tuple[float, float, str]]:
    """(start, end, text) on one timeline; never overlapping, never empty, never backwards."""
    out: list[tuple[float, float, str]] = []
    offset = previous_end = 0.0
    for r in results:
        for s in r.transcript.segments:
            text = s.text.strip()
            if not text:
                continue
            # Players dislike overlapping cues: start no earlier than the last one ended.
            start = max(offset + s.start, previous_end)
            end = max(offset + s.end, start + 0.001)
            out.append((start, end, text))
            previous_end = end
        offset += r.transcript.duration
    return out


def to_subtitles(results: Sequence[FileTranscript], *, vtt: bool = False) -> str:
    """SRT (numbered cues) or WebVTT (``WEBVTT`` header)."""
    blocks = ["WEBVTT\n"] if vtt else []
    for i, (start, end, text) in enumerate(cues(results), 1):
        times = f"{timestamp(start, vtt=vtt)} --> {timestamp(end, vtt=vtt)}"
        blocks.append(f"{times}\n{text}\n" if vtt else f"{i}\n{times}\n{text}\n")
    return "\n".join(blocks)
