"""file_transcription: where chunks are cut, and how their transcripts are put together — with
a fake speech detector (loud samples are speech) and a fake model; no model, no network."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from wirescribe.asr.model import DecodeOptions, Segment, Transcript, Word
from wirescribe.audio.vad import FRAME
from wirescribe.streaming.files import Chunk, Chunker, ChunkOptions, choose_cut, shift, transcribe_blocks

SR = 16000


def loudness_probability(audio: np.ndarray) -> np.ndarray:
    """Silero's contract (one context frame, then n frames → n + 1 values): 1 where loud."""
    frames = audio.reshape(-1, FRAME)
    return (np.abs(frames).max(axis=1) > 0.05).astype(np.float32)


def speech_and_pauses(layout: list[tuple[str, float]]) -> np.ndarray:
    """``[("speech", 2.0), ("pause", 0.5), …]`` as audio: a loud tone, or silence."""
    parts = []
    for kind, seconds in layout:
        n = int(seconds * SR)
        tone = 0.3 * np.sin(np.arange(n) * 2 * np.pi * 220 / SR) if kind == "speech" else np.zeros(n)
        parts.append(tone.astype(np.float32))
    return np.concatenate(parts)


def test_the_cut_is_in_the_middle_of_the_longest_pause() -> None:
    probs = np.ones(100, dtype=np.float32)
    probs[20:24] = 0.0  # a short pause
    probs[60:70] = 0.1  # the longest
    probs[90:95] = 0.0
    assert choose_cut(probs, 10, 100, 0.5) == 65
    assert choose_cut(probs, 10, 50, 0.5) == 22  # only the short one is in range


def test_the_latest_of_equal_pauses_and_the_quietest_frame_without_any() -> None:
    probs = np.ones(100, dtype=np.float32)
    probs[30:34] = probs[70:74] = 0.0
    assert choose_cut(probs, 0, 100, 0.5) == 72
    probs = np.linspace(1.0, 0.6, 100).astype(np.float32)
    probs[40] = 0.55
    assert choose_cut(probs, 0, 100, 0.5) == 40


def chunks_of(audio: np.ndarray, block: int = 1600) -> list[Chunk]:
    chunker = Chunker(loudness_probability, ChunkOptions())
    out: list[Chunk] = []
    for i in range(0, len(audio), block):
        chunker.push(audio[i : i + block])
        while chunker.full:
            out.append(chunker.cut())
    last = chunker.finish()
    return [*out, last] if last is not None else out


def test_chunks_end_in_pauses_keep_only_speech_and_cover_every_word() -> None:
    # 10 × (5.5 s speech, 0.7 s pause): 62 s with pauses every 6.2 s.
    audio = speech_and_pauses([("speech", 5.5), ("pause", 0.7)] * 10)
    chunks = chunks_of(audio)
    assert len(chunks) == 3
    for c in chunks:
        assert len(c.audio) <= 30 * SR
        # trimmed to the speech and 0.3 s around it: starts and ends in a little silence
        assert np.abs(c.audio[: int(0.2 * SR)]).max() < 0.05 or c.start == 0
        assert np.abs(c.audio[-int(0.2 * SR) :]).max() < 0.05
    # every loud sample is in exactly one chunk
    covered = np.zeros(len(audio), dtype=int)
    for c in chunks:
        covered[c.start : c.start + len(c.audio)] += 1
    loud = np.abs(audio) > 0.05
    assert covered[loud].min() == 1 and covered.max() == 1
    assert sum(c.speech_seconds for c in chunks) == pytest.approx(55.0, abs=0.5)


def test_speech_without_any_pause_is_cut_at_max_seconds() -> None:
    audio = speech_and_pauses([("speech", 70.0)])
    chunks = chunks_of(audio)
    assert [round(len(c.audio) / SR) for c in chunks] == [30, 30, 10]
    assert [c.start for c in chunks] == [0, len(chunks[0].audio), len(chunks[0].audio) * 2]


def test_silence_makes_a_chunk_without_speech() -> None:
    chunks = chunks_of(speech_and_pauses([("pause", 40.0)]))
    assert [c.speech_seconds for c in chunks] == [0.0, 0.0]


def test_shift_moves_words_and_seek() -> None:
    seg = Segment(1.0, 2.0, " hi", (Word(1.0, 1.5, " hi", 0.9),), seek=100)
    moved = shift(seg, 30.0)
    assert (moved.start, moved.end, moved.seek) == (31.0, 32.0, 3100)
    assert (moved.words[0].start, moved.words[0].end) == (31.0, 31.5)


class FakeModel:
    """One segment per call covering the chunk's loud part; records what it was asked."""

    def __init__(self, text: str = " words", language: str = "de") -> None:
        self.calls: list[tuple[float, DecodeOptions]] = []
        self._text, self._language = text, language

    async def __call__(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        await asyncio.sleep(0)
        self.calls.append((len(audio) / SR, options))
        loud = np.flatnonzero(np.abs(audio) > 0.05)
        start, end = loud[0] / SR, loud[-1] / SR
        segments = [
            Segment(start, end, self._text, (Word(start, end, self._text, 0.9),)),
            Segment(end, end + 0.1, " Thank you.", avg_logprob=-1.2, no_speech_prob=0.6),  # invented
        ]
        return Transcript(tuple(segments), self._language, len(audio) / SR)


async def blocks_of(audio: np.ndarray, block: int = 4000) -> AsyncIterator[np.ndarray]:
    for i in range(0, len(audio), block):
        yield audio[i : i + block]


def test_chunks_are_transcribed_in_turn_and_put_on_one_timeline() -> None:
    # speech at 0-5.5, 6.2-11.7, …: one segment per chunk, each where its speech is in the file
    audio = speech_and_pauses([("pause", 3.0), ("speech", 5.5), ("pause", 20.0), ("speech", 5.5)] * 3)
    model = FakeModel()
    options = DecodeOptions(prompt="Names: Dashwood.", language=None, beam_size=5)
    result = asyncio.run(transcribe_blocks(blocks_of(audio), model, options, loudness_probability))
    assert result.duration == pytest.approx(len(audio) / SR)
    assert result.language == "de"
    assert result.segments  # one per chunk, the inventions dropped
    assert [s.text for s in result.segments] == [" words"] * len(result.segments)
    speech_starts = [3.0 + 34.0 * i + d for i in range(3) for d in (0.0, 25.5)]
    starts = [s.start for s in result.segments]
    assert len(starts) == len(model.calls)
    for start in starts:  # every segment sits on some stretch of speech, in file time
        assert min(abs(start - s) for s in speech_starts) < 0.05
    assert all(seconds <= 30.0 for seconds, _ in model.calls)
    # the caller's prompt on every chunk, never the text before it; the language kept once known
    assert [o.prompt for _, o in model.calls] == ["Names: Dashwood."] * len(model.calls)
    assert model.calls[0][1].language is None
    assert all(o.language == "de" for _, o in model.calls[1:])
    assert not any(o.condition_on_previous_text for _, o in model.calls)


def test_silence_costs_no_model_call() -> None:
    model = FakeModel()
    audio = speech_and_pauses([("pause", 65.0)])
    result = asyncio.run(
        transcribe_blocks(blocks_of(audio), model, DecodeOptions(language="en"), loudness_probability)
    )
    assert model.calls == [] and result.segments == () and result.language == "en"
    assert result.duration == pytest.approx(65.0)
