"""The adapter with the real model (tiny.en) on real speech: the encoder length it is asked for,
a batch giving what single calls give, faster-whisper's own results for a whole file, the
temperature fallback, one pass for live windows."""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pytest

from tests.support import Utterance, join_utterances
from wirescribe.asr.adapter import DecodeRules, WhisperAdapter
from wirescribe.asr.model import BatchItem, DecodeOptions, ModelConfig, Transcriber, Transcript
from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.wer import normalize_words, word_error_rate


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    return Transcriber.load(ModelConfig())


@pytest.fixture
def encodes(transcriber: Transcriber, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, ...]]]:
    """The shape (windows, mels, frames) of every encoder call the adapter makes."""
    model = transcriber.adapter.model
    shapes: list[tuple[int, ...]] = []
    encode = model.encode

    def spy(features: np.ndarray) -> Any:
        shapes.append(features.shape)
        return encode(features)

    monkeypatch.setattr(model, "encode", spy)
    yield shapes


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


def words_of(t: Transcript) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for s in t.segments for w in s.words]


def assert_same(a: Transcript, b: Transcript) -> None:
    """The same text, tokens, times and words; probabilities equal up to float noise (a batch's
    alignment pads its rows' texts to one length, which moves the last digits)."""
    assert [(s.text, s.start, s.end, s.tokens, s.seek, s.temperature) for s in a.segments] == [
        (s.text, s.start, s.end, s.tokens, s.seek, s.temperature) for s in b.segments
    ]
    assert words_of(a) == words_of(b)
    assert [w.probability for s in a.segments for w in s.words] == pytest.approx(
        [w.probability for s in b.segments for w in s.words], abs=1e-3
    )
    assert [s.avg_logprob for s in a.segments] == pytest.approx([s.avg_logprob for s in b.segments], abs=1e-3)
    assert (a.language, a.duration) == (b.language, b.duration)


def test_the_encoder_gets_the_context_it_was_asked_for(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """A 6 s window with a 12 s context: 1200 frames; with a 2 s one: the audio and 1 s, in 2 s
    steps (800); with none: Whisper's 3000. A batch takes its longest window's."""
    audio = decode_file(utterances[3].wav)[: 6 * SAMPLE_RATE]
    short = decode_file(utterances[1].wav)
    for context, frames in ((12.0, 1200), (2.0, 800), (None, 3000)):
        encodes.clear()
        result = transcriber.transcribe(audio, live_options(audio, None, context))
        assert encodes == [(1, 80, frames)], context
        assert word_error_rate(utterances[3].text, result.text) < 0.5
    encodes.clear()
    transcriber.transcribe_batch(
        [(audio, live_options(audio, None, 12.0)), (short, live_options(short, None, 4.0))]
    )
    assert encodes == [(2, 80, 1200)]


def test_a_batch_gives_what_single_calls_give(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """Four windows of different lengths and prompts: the same text and word times as one call
    each. (Prompts of one length, so the batch cuts none: a cut prompt may move a comma.)"""
    prompts = [
        "The family of Dashwood had long been settled in Sussex.",  # 12 tokens
        "Mrs. John Dashwood was a strong caricature of himself.",  # 12 tokens
        None,  # decoded in a batch of its own: no prompt cannot share a batch with prompts
        "Their estate was large and their residence was at Norland.",  # 12 tokens
    ]
    batch = [
        (audio, live_options(audio, prompt))
        for audio, prompt in ((decode_file(u.wav), p) for u, p in zip(utterances, prompts, strict=False))
    ]
    single = [transcriber.transcribe(audio, options) for audio, options in batch]
    encodes.clear()
    batched = transcriber.transcribe_batch(batch)
    assert sorted(shape[0] for shape in encodes) == [1, 3]  # the three prompted windows together
    for s, b, u in zip(single, batched, utterances, strict=False):
        assert b.text == s.text, u.name
        assert word_error_rate(u.text, b.text) < 0.35, (u.text, b.text)
        assert [w[0] for w in words_of(b)] == [w[0] for w in words_of(s)]
        for (_, s_start, s_end), (_, b_start, b_end) in zip(words_of(s), words_of(b), strict=True):
            assert abs(s_start - b_start) <= 0.1 and abs(s_end - b_end) <= 0.1
        assert (b.language, b.duration) == (s.language, s.duration)


def test_windows_of_different_kinds_share_a_call_only_with_their_kind(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """Beam size, temperatures and word timestamps shape the model call: windows that differ in
    them are decoded in calls of their own, each as it would be alone; results keep their order."""
    one, two = decode_file(utterances[1].wav), decode_file(utterances[4].wav)
    items = [
        (one, live_options(one, None)),
        (two, replace(live_options(two, None), beam_size=3)),
        (two, live_options(two, None)),
        (one, replace(live_options(one, None), word_timestamps=False)),
    ]
    single = [transcriber.transcribe(audio, options) for audio, options in items]
    encodes.clear()
    for b, s in zip(transcriber.transcribe_batch(items), single, strict=True):
        assert_same(b, s)
    assert sorted(shape[0] for shape in encodes) == [1, 1, 2]
    assert not single[3].segments[0].words and single[0].segments[0].words


def test_a_long_file_is_decoded_as_faster_whisper_decodes_it(
    transcriber: Transcriber, utterances: list[Utterance]
) -> None:
    """Past 30 s the adapter runs faster-whisper's seek loop (on from the last timestamp, previous
    text as the prompt, word times from the alignment): the same segments and words as
    ``WhisperModel.transcribe``, alone and batched with a short window."""
    joined, _ = join_utterances(utterances)
    audio = np.concatenate([joined, joined[: 12 * SAMPLE_RATE]])  # 42 s: two 30 s windows at least
    options = DecodeOptions(language="en", beam_size=1, temperature=(0.0,), word_timestamps=True)
    ours = transcriber.transcribe(audio, options)
    segments, info = transcriber.adapter.model.transcribe(
        audio, language="en", beam_size=1, temperature=[0.0], word_timestamps=True
    )
    theirs = list(segments)
    assert len({s.seek for s in ours.segments}) >= 2 and ours.duration == pytest.approx(info.duration)
    assert [(s.text, s.start, s.end, s.tokens, s.seek) for s in ours.segments] == [
        (s.text, s.start, s.end, tuple(s.tokens), s.seek) for s in theirs
    ]
    assert [(w.text, w.start, w.end) for s in ours.segments for w in s.words] == [
        (w.word, w.start, w.end) for s in theirs for w in s.words or ()
    ]
    short = decode_file(utterances[1].wav)
    batched = transcriber.transcribe_batch([(short, options), (audio, options)])
    assert_same(batched[1], ours)
    assert_same(batched[0], transcriber.transcribe(short, options))


def test_hotwords_go_before_the_previous_text_of_every_pass_as_in_faster_whisper(
    transcriber: Transcriber, utterances: list[Utterance]
) -> None:
    """``hotwords`` in the prefix of every 30 s pass: what ``WhisperModel.transcribe(hotwords=)``
    gives over 42 s, alone and batched; and a long previous text is cut to make room for them."""
    joined, _ = join_utterances(utterances)
    audio = np.concatenate([joined, joined[: 12 * SAMPLE_RATE]])
    hot = "Marianne, Elinor, Dashwood, Norland"
    options = DecodeOptions(language="en", beam_size=1, temperature=(0.0,), hotwords=hot)
    ours = transcriber.transcribe(audio, options)
    segments, _ = transcriber.adapter.model.transcribe(
        audio, language="en", beam_size=1, temperature=[0.0], word_timestamps=True, hotwords=hot
    )
    theirs = list(segments)
    assert len({s.seek for s in ours.segments}) >= 2
    assert [(s.text, s.tokens, s.seek) for s in ours.segments] == [
        (s.text, tuple(s.tokens), s.seek) for s in theirs
    ]
    plain = transcriber.transcribe(audio, replace(options, hotwords=None))
    assert [s.tokens for s in plain.segments] != [s.tokens for s in ours.segments]  # they do reach it
    short = decode_file(utterances[1].wav)
    batched = transcriber.transcribe_batch([(short, options), (audio, options)])
    assert_same(batched[1], ours)
    # A long previous text and 1,000 characters of hotwords: the prompt still fits the budget.
    crowded = live_options(short, " ".join(u.text for u in utterances) * 3)
    names = ", ".join(f"Dashwood{i}" for i in range(100))[:1000]
    text = transcriber.transcribe(short, replace(crowded, hotwords=names)).text
    assert word_error_rate(utterances[1].text, text) < 0.3


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words the hypothesis has, in order (insertions cost nothing)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    matcher = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(ref)


def test_windows_with_any_prompts_and_contexts_lose_no_words(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """Windows as live sessions send them — prompts of any length, full contexts for short
    windows, short ones for longer — share the batch's longest context and shortest prompt, so
    the text may differ from a single call's a little (mostly in what Whisper invents at a
    window's silent tail, which the streaming policy drops); the words said are still there."""
    batch: list[BatchItem] = []
    for i, u in enumerate(utterances):
        audio = decode_file(u.wav)
        prompt = " ".join(p.text for p in utterances[max(0, i - 2) : i]) or None  # what came before
        batch.append((audio, live_options(audio, prompt, None if len(audio) < 3.5 * SAMPLE_RATE else 12.0)))
    single = [transcriber.transcribe(a, o) for a, o in batch]
    encodes.clear()
    batched = transcriber.transcribe_batch(batch)
    assert max(shape[0] for shape in encodes) >= 3
    for u, s, b in zip(utterances, single, batched, strict=True):
        assert recall(u.text, b.text) >= recall(u.text, s.text) - 0.15, (u.text, s.text, b.text)


def repeated_word(utterances: list[Utterance]) -> np.ndarray:
    """Half a second of "he was not" fourteen times over: greedy decoding loops on it, far past
    the compression-ratio threshold."""
    audio = decode_file(utterances[1].wav)
    return np.tile(audio[int(0.3 * SAMPLE_RATE) : int(0.8 * SAMPLE_RATE)], 14)


def test_a_window_that_fails_the_checks_is_decoded_again_hotter(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """faster-whisper's ``generate_with_fallback``, batched: only the window whose text is too
    repetitive is decoded again at the next temperature (its encoder output recomputed alone);
    its neighbour keeps its greedy result."""
    looping, speech = repeated_word(utterances), decode_file(utterances[3].wav)
    options = DecodeOptions(
        language="en", word_timestamps=False, temperature=(0.0, 0.5), max_new_tokens=40, context_seconds=10.0
    )
    greedy = transcriber.transcribe(looping, replace(options, temperature=(0.0,)))
    assert greedy.segments[0].compression_ratio > DecodeRules().compression_ratio_threshold  # type: ignore[operator]
    encodes.clear()
    hot, calm = transcriber.transcribe_batch([(looping, options), (speech, options)])
    assert [shape[0] for shape in encodes] == [2, 1]
    assert {s.temperature for s in hot.segments} == {0.5}
    assert {s.temperature for s in calm.segments} == {0.0}
    assert_same(calm, transcriber.transcribe(speech, options))


def test_an_improbable_window_falls_back_too(transcriber: Transcriber, utterances: list[Utterance]) -> None:
    """The log-probability check, with a threshold no decode meets (the rules are the test's to
    set): every temperature is tried, and the most probable result is kept, marked with the last
    temperature (as faster-whisper does, so the next pass's prompt is reset)."""
    audio = decode_file(utterances[4].wav)
    options = DecodeOptions(language="en", word_timestamps=False, temperature=(0.0, 0.6))
    strict = WhisperAdapter(transcriber.adapter.model, DecodeRules(log_prob_threshold=-1e-6))
    (result,) = strict.decode([(audio, options)])
    assert {s.temperature for s in result.segments} == {0.6}
    assert word_error_rate(utterances[4].text, result.text) < 0.5  # the greedy text, most probable
    assert {s.temperature for s in transcriber.transcribe(audio, options).segments} == {0.0}


def test_single_pass_encodes_once_and_keeps_the_first_pass(
    transcriber: Transcriber, utterances: list[Utterance], encodes: list[tuple[int, ...]]
) -> None:
    """Whisper's loop decodes again from the last word to the end; a live update wants the first
    pass only, and one encoder run, single or batched."""
    audio = np.concatenate([decode_file(utterances[1].wav), np.zeros(SAMPLE_RATE, dtype=np.float32)])
    multi = transcriber.transcribe(audio, replace(live_options(audio, None), single_pass=False))
    assert len(encodes) >= 2  # the tail after the last word was decoded again
    encodes.clear()
    one = transcriber.transcribe(audio, live_options(audio, None))
    assert len(encodes) == 1
    assert one.segments == multi.segments[:1]
    encodes.clear()
    batched = transcriber.transcribe_batch([(audio, live_options(audio, None))] * 2)
    assert encodes == [(2, 80, 1200)] and [b.text for b in batched] == [one.text, one.text]
    with pytest.raises(ValueError, match="without_timestamps"):
        DecodeOptions(single_pass=True)


def test_silence_and_nothing(transcriber: Transcriber) -> None:
    """Silence is skipped as faster-whisper skips it (no-speech probability); no audio is no call."""
    silence = transcriber.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32))
    assert (silence.segments, silence.language, silence.duration) == ((), "en", 3.0)
    assert asdict(transcriber.transcribe(np.zeros(0, dtype=np.float32))) == {
        "segments": (),
        "language": "en",
        "duration": 0.0,
    }
    assert transcriber.transcribe_batch([]) == []


def test_a_prompt_too_long_for_the_token_budget_is_refused(transcriber: Transcriber) -> None:
    audio = np.zeros(SAMPLE_RATE, dtype=np.float32)
    with pytest.raises(ValueError, match="max_new_tokens"):
        transcriber.transcribe(audio, DecodeOptions(prompt="word " * 300, max_new_tokens=300))
