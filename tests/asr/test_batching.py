"""batching.transcribe_batch against serial calls with the real model, and the scheduler's batching
with a fake batch function."""

from __future__ import annotations

import asyncio
import difflib
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from tests.support import Utterance
from tests.support.fakes import FakeModel, job, run
from wirescribe.asr import batching
from wirescribe.asr.batching import BatchItem, transcribe_batch
from wirescribe.asr.model import DecodeOptions, ModelConfig, Segment, Transcriber, Transcript
from wirescribe.asr.scheduler import Scheduler
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.wer import normalize_words, word_error_rate


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber.load(ModelConfig())


def live_options(audio: np.ndarray, prompt: str | None, context: float | None = 12.0) -> DecodeOptions:
    """What session.live_decode_options asks for: greedy, one temperature, a token budget, text
    without timestamp tokens, one pass."""
    seconds = len(audio) / SAMPLE_RATE
    return DecodeOptions(
        prompt=prompt,
        beam_size=1,
        temperature=(0.0,),
        context_seconds=context,
        max_new_tokens=int(16 + 8 * seconds),
        without_timestamps=True,
        single_pass=True,
    )


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Windows per batched model step, as transcribe_batch runs them."""
    sizes: list[int] = []
    step = batching._step

    def counting(model: Any, tokenizer: Any, windows: list[Any], shared: int) -> None:
        sizes.append(len(windows))
        step(model, tokenizer, windows, shared)

    monkeypatch.setattr(batching, "_step", counting)
    yield sizes


def words_of(t: Transcript) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for s in t.segments for w in s.words]


def test_a_batch_gives_what_serial_calls_give(
    transcriber: Transcriber, utterances: list[Utterance], batch_sizes: list[int]
) -> None:
    """Four windows of different lengths and prompts: the same text and word times as one call
    each. (Prompts of one length, so the batch cuts none: a cut prompt may move a comma.)"""
    prompts = [
        "The family of Dashwood had long been settled in Sussex.",  # 12 tokens
        "Mrs. John Dashwood was a strong caricature of himself.",  # 12 tokens
        None,  # decoded in a batch of its own: no prompt cannot share a batch with prompts
        "Their estate was large and their residence was at Norland.",  # 12 tokens
    ]
    items = [(decode_file(u.wav), p) for u, p in zip(utterances[:4], prompts, strict=True)]
    batch = [(audio, live_options(audio, prompt)) for audio, prompt in items]
    serial = [transcriber.transcribe(audio, options) for audio, options in batch]
    batched = transcribe_batch(transcriber, batch)
    assert sorted(batch_sizes)[-1] == 3  # the three prompted windows went through the model together
    for s, b, u in zip(serial, batched, utterances, strict=False):
        assert b.text == s.text, u.name
        assert word_error_rate(u.text, b.text) < 0.35, (u.text, b.text)
        assert [w[0] for w in words_of(b)] == [w[0] for w in words_of(s)]
        for (_, s_start, s_end), (_, b_start, b_end) in zip(words_of(s), words_of(b), strict=True):
            assert abs(s_start - b_start) <= 0.1 and abs(s_end - b_end) <= 0.1
        assert (b.language, b.duration) == (s.language, s.duration)


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words the hypothesis has, in order (insertions cost nothing)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    matcher = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(ref)


def test_windows_with_any_prompts_and_contexts_lose_no_words(
    transcriber: Transcriber, utterances: list[Utterance], batch_sizes: list[int]
) -> None:
    """Windows as live sessions send them — prompts of any length, full contexts for short
    windows, short ones for longer — share the batch's longest context and shortest prompt, so
    the text may differ from a serial call's a little (mostly in what Whisper invents at a
    window's silent tail, which the streaming policy drops); the words said are still there."""
    batch: list[BatchItem] = []
    for i, u in enumerate(utterances):
        audio = decode_file(u.wav)
        prompt = " ".join(p.text for p in utterances[max(0, i - 2) : i]) or None  # what came before
        batch.append((audio, live_options(audio, prompt, None if len(audio) < 3.5 * SAMPLE_RATE else 12.0)))
    serial = [transcriber.transcribe(a, o) for a, o in batch]
    batched = transcribe_batch(transcriber, batch)
    assert max(batch_sizes) >= 3
    for u, s, b in zip(utterances, serial, batched, strict=True):
        assert recall(u.text, b.text) >= recall(u.text, s.text) - 0.15, (u.text, s.text, b.text)


class FakeTranscriber:
    default_language = "en"
    device = "cpu"

    def __init__(self) -> None:
        self.calls: list[str | None] = []

    def transcribe(self, audio: np.ndarray, options: DecodeOptions) -> Transcript:
        self.calls.append(options.prompt)
        return Transcript((Segment(0.0, 1.0, f" {options.prompt}"),), "en", len(audio) / SAMPLE_RATE)


def test_windows_a_batch_cannot_share_go_one_by_one() -> None:
    """A temperature fallback, VAD or extra arguments need the serial path; so does a window
    alone in its kind. Results keep the order of the items."""
    fake = FakeTranscriber()
    audio = np.zeros(SAMPLE_RATE, dtype=np.float32)
    items = [
        (audio, DecodeOptions(prompt="fallback")),  # six temperatures
        (audio, DecodeOptions(prompt="vad", temperature=(0.0,), vad_filter=True)),
        (audio, DecodeOptions(prompt="extra", temperature=(0.0,), extra={"best_of": 2})),
        (audio, DecodeOptions(prompt="alone", temperature=(0.0,), beam_size=5)),
    ]
    results = transcribe_batch(fake, items)  # type: ignore[arg-type]
    assert [r.text for r in results] == ["fallback", "vad", "extra", "alone"]
    assert fake.calls == ["fallback", "vad", "extra", "alone"]


class _Prompted:
    def __init__(self, n: int) -> None:
        self.n = n

    def previous_tokens(self, model: Any) -> list[int]:
        return list(range(self.n))


def test_prompts_are_cut_to_the_shortest_of_a_batch_but_never_below_half() -> None:
    windows = [_Prompted(n) for n in (40, 0, 22, 35, 19, 0, 9, 45)]
    batches = batching._prompt_batches(None, windows)  # type: ignore[arg-type]
    assert [([len(w.previous_tokens(None)) for w in b], shared) for b, shared in batches] == [
        ([45, 40, 35], 35),
        ([22, 19], 19),
        ([9], 9),
        ([0, 0], 0),
    ]


def test_default_batch_size_by_device() -> None:
    assert batching.default_batch_size("cpu") == 1
    assert batching.default_batch_size("cuda") == 8
    fake = FakeTranscriber()
    assert Scheduler.for_transcriber(fake).batch_size == 1  # type: ignore[arg-type]
    fake.device = "cuda"
    assert Scheduler.for_transcriber(fake).batch_size == 8  # type: ignore[arg-type]
    assert Scheduler.for_transcriber(fake, batch_size=3).batch_size == 3  # type: ignore[arg-type]


class FakeBatch:
    """A batch function over FakeModel: records the tags of each batch it is given."""

    def __init__(self, model: FakeModel, fail_on: str | None = None) -> None:
        self.model = model
        self.fail_on = fail_on
        self.batches: list[list[str]] = []

    def __call__(self, items: list[BatchItem]) -> list[Transcript]:
        tags = [o.prompt or "" for _, o in items]
        self.batches.append(tags)
        if self.fail_on in tags:
            raise RuntimeError(f"batch failed on {self.fail_on}")
        return [self.model(a, o) for a, o in items]


def test_scheduler_batches_queued_jobs_and_each_caller_gets_its_own() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()  # hold the first call while the others queue up
    batch = FakeBatch(model)

    async def main() -> list[str]:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:
            tasks = [
                asyncio.create_task(s.transcribe(*job(f"j{i}", seconds=0.1 * (i + 1)))) for i in range(8)
            ]
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            threading.Timer(0.05, model.release.set).start()
            results = await asyncio.gather(*tasks)
            for i, r in enumerate(results):
                assert r.duration == pytest.approx(0.1 * (i + 1))
            stats = s.stats()
            assert (stats.jobs_done, stats.batches, stats.largest_batch) == (8, 2, 4)
            assert stats.mean_batch_size == 4.0
            return [r.text for r in results]
        finally:
            await s.stop()

    assert run(main) == [f"j{i}" for i in range(8)]
    # All eight were queued before the worker woke: two batches of four, in queue order.
    assert batch.batches == [["j0", "j1", "j2", "j3"], ["j4", "j5", "j6", "j7"]]


def test_sessions_never_have_two_windows_in_one_batch() -> None:
    """Each session asks again only after its answer came: its windows coalesce, never queue
    twice, and each batch holds one window of each waiting session."""
    model = FakeModel(delay=0.005)
    batch = FakeBatch(model)
    queued: list[int] = []

    async def main() -> None:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:

            async def session(name: str, n: int) -> None:
                for i in range(n):
                    queued.append(s.stats().queued)
                    result = await s.transcribe(*job(f"{name}{i}"))
                    assert result.text == f"{name}{i}"

            await asyncio.gather(*(session(name, 6) for name in "abcde"))
        finally:
            await s.stop()

    run(main)
    assert max(len(b) for b in batch.batches) > 1
    assert all(len(b) <= 4 for b in batch.batches)
    for b in batch.batches:
        sessions = [tag[0] for tag in b]
        assert len(sessions) == len(set(sessions)), b
    assert max(queued) <= 4  # never more than the other sessions' one window each
    for name in "abcde":
        assert [c for c in model.calls if c[0] == name] == [f"{name}{i}" for i in range(6)]


def test_a_failing_window_fails_only_its_caller() -> None:
    model = FakeModel(delay=0.0, fail_on="bad")
    model.release.clear()
    batch = FakeBatch(model, fail_on="bad")

    async def main() -> None:
        s = Scheduler(model, batch_size=4, batch_fn=batch)
        await s.start()
        try:
            first = asyncio.create_task(s.transcribe(*job("first")))
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            tasks = [asyncio.create_task(s.transcribe(*job(tag))) for tag in ("good1", "bad", "good2")]
            await asyncio.sleep(0.02)
            model.release.set()
            assert (await first).text == "first"
            with pytest.raises(RuntimeError, match="model failed on bad"):
                await tasks[1]
            assert [(await tasks[0]).text, (await tasks[2]).text] == ["good1", "good2"]
        finally:
            await s.stop()

    run(main)
    assert batch.batches == [["good1", "bad", "good2"]]  # then retried one by one
    assert model.calls == ["first", "good1", "bad", "good2"]


def test_batch_size_one_never_batches() -> None:
    model = FakeModel(delay=0.0)
    model.release.clear()
    batch = FakeBatch(model)

    async def main() -> None:
        s = Scheduler(model, batch_size=1, batch_fn=batch)
        await s.start()
        try:
            tasks = [asyncio.create_task(s.transcribe(*job(f"j{i}"))) for i in range(4)]
            while not model.started.is_set():
                await asyncio.sleep(0.005)
            model.release.set()
            await asyncio.gather(*tasks)
            assert s.stats().batches == 4 and s.stats().largest_batch == 1
        finally:
            await s.stop()

    run(main)
    assert batch.batches == []
    assert model.calls == [f"j{i}" for i in range(4)]


def test_single_pass_encodes_once_and_keeps_the_first_pass(
    transcriber: Transcriber, utterances: list[Utterance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Word timestamps make faster-whisper decode again from the last word to the end; a live
    update wants the first pass only, and one encoder run, serial or batched."""
    model = transcriber._model
    encodes: list[int] = []
    encode = model.encode

    def counting(features: Any) -> Any:
        encodes.append(len(features))
        return encode(features)

    monkeypatch.setattr(model, "encode", counting)
    audio = np.concatenate([decode_file(utterances[1].wav), np.zeros(SAMPLE_RATE, dtype=np.float32)])
    multi = transcriber.transcribe(audio, replace(live_options(audio, None), single_pass=False))
    assert len(encodes) >= 2  # the tail after the last word was decoded again
    encodes.clear()
    one = transcriber.transcribe(audio, live_options(audio, None))
    assert len(encodes) == 1
    assert one.segments == multi.segments[:1]
    encodes.clear()
    batched = transcribe_batch(
        transcriber, [(audio, live_options(audio, None)), (audio, live_options(audio, None))]
    )
    assert len(encodes) == 1 and [b.text for b in batched] == [one.text, one.text]
    with pytest.raises(ValueError, match="without_timestamps"):
        DecodeOptions(single_pass=True)
