"""The scripted world the streaming-policy tests run in: no model, no VAD model, no threads.

The world is a "true" word timeline. Its audio is noise where a word is spoken and zeros
elsewhere; the fake VAD calls a frame speech when it has energy. The fake model hears the words
whose middle lies inside the window it is given, reports them with window-relative times in one
segment per sentence, and garbles a word the window cuts off (the noise a real model makes on
the last, half-heard word).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from wirescribe.asr.model import Segment, Transcript, Word
from wirescribe.audio.vad import FRAME, VoiceActivity
from wirescribe.streaming.events import CloseReason, Event
from wirescribe.streaming.policy import SR, FinalTranscript, StreamingOptions, StreamingPolicy, Update, Window

GARBLED = "ish"  # suffix of a half-heard word


@dataclass(frozen=True)
class Spoken:
    start: float
    end: float
    text: str  # without the leading space
    sentence: int


def energy_probability(audio: np.ndarray) -> np.ndarray:
    """A fake Silero: a frame is speech when it carries energy."""
    rms = np.sqrt(np.mean(np.square(audio.reshape(-1, FRAME)), axis=1))
    return np.where(rms > 0.02, 0.95, 0.02).astype(np.float32)


def make_script(
    sentences: int,
    *,
    seed: int = 0,
    start: float = 0.6,
    words: tuple[int, int] = (5, 12),
    pause_after: Callable[[int], float] | None = None,
    texts: list[str] | None = None,
) -> list[Spoken]:
    """Sentences of words (0.2-0.5 s, 0.05-0.15 s apart); 0.25 s between sentences unless
    ``pause_after(sentence)`` says otherwise. With ``texts``: one sentence of those words."""
    rng = np.random.default_rng(seed)
    if texts:  # one sentence of these words
        sentences, words = 1, (len(texts), len(texts))
    out: list[Spoken] = []
    t = start
    for s in range(sentences):
        for _ in range(int(rng.integers(words[0], words[1] + 1))):
            duration = float(rng.uniform(0.2, 0.5))
            text = texts[len(out)] if texts else f"w{len(out)}"
            out.append(Spoken(round(t, 3), round(t + duration, 3), text, s))
            t += duration + float(rng.uniform(0.05, 0.15))
        t += pause_after(s) if pause_after else 0.25
    return out


def render(script: list[Spoken], *, tail: float = 1.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = np.zeros(int((script[-1].end + tail) * SR), dtype=np.float32)
    for w in script:
        a, b = int(w.start * SR), int(w.end * SR)
        audio[a:b] = rng.uniform(-0.3, 0.3, b - a)
    return audio


@dataclass
class FakeModel:
    """Transcribes a :class:`Window` from the script; records what it was asked."""

    script: list[Spoken]
    extra: Callable[[Window], list[Segment]] | None = None  # hallucinations to add
    rewrite: Callable[[int, Spoken, int], str] | None = None  # (call, word, index) -> text
    windows: list[Window] = field(default_factory=list)

    def __call__(self, window: Window) -> Transcript:
        self.windows.append(window)
        t0, t1 = window.start / SR, window.end / SR
        by_sentence: dict[int, list[Word]] = {}
        for i, w in enumerate(self.script):
            if not t0 <= (w.start + w.end) / 2 < t1:
                continue
            text = self.rewrite(len(self.windows), w, i) if self.rewrite else w.text
            if w.end > t1 + 0.01:
                text += GARBLED
            start, end = max(w.start, t0) - t0, min(w.end, t1) - t0
            by_sentence.setdefault(w.sentence, []).append(Word(start, end, " " + text, 0.9))
        segments = [
            Segment(ws[0].start, ws[-1].end, "".join(w.text for w in ws), tuple(ws), avg_logprob=-0.3)
            for ws in by_sentence.values()
        ]
        if self.extra:
            segments += self.extra(window)
            segments.sort(key=lambda s: s.start)
        return Transcript(tuple(segments), "en", t1 - t0)


@dataclass
class Run:
    policy: StreamingPolicy
    model: FakeModel
    updates: list[Update]
    final: FinalTranscript
    committed_at_window: list[str]  # committed text when each window was built
    events: list[Event] = field(default_factory=list)  # the policy's events, in order


def stream(
    audio: np.ndarray,
    model: FakeModel,
    *,
    block: float = 0.25,
    every: int = 1,
    options: StreamingOptions | None = None,
    language: str | None = "en",
    eof: bool = True,
    finalize_at: tuple[float, ...] = (),
) -> Run:
    """Drive the policy as a session does: insert each block, ask for a window every ``every``
    blocks (a slower model), transcribe it at once, and flush at the end; ``finalize`` once
    the audio passes each time in ``finalize_at``."""
    policy = StreamingPolicy(VoiceActivity(energy_probability), options or StreamingOptions(), language)
    updates: list[Update] = []
    committed_at: list[str] = []
    events: list[Event] = []

    def step(window: Window | None) -> None:
        if window is not None:
            committed_at.append(policy.current().committed)
            update = policy.apply(window, model(window))
            if update is not None:
                updates.append(update)
        events.extend(policy.take_events())

    def close(reason: str) -> None:
        request = CloseReason(reason)
        for _ in range(4):  # as the session does: a closing pass, and a second if it missed speech
            window = policy.next_window(request)
            if window is None:
                break
            step(window)
        if request is CloseReason.FINALIZE:
            policy.finalized()
        events.extend(policy.take_events())

    pending = sorted(finalize_at)
    n = int(block * SR)
    for i, k in enumerate(range(0, len(audio), n)):
        policy.insert_audio(audio[k : k + n])
        if (update := policy.settle()) is not None:  # as the session does after every block
            updates.append(update)
        events.extend(policy.take_events())
        if pending and policy.audio_seconds >= pending[0]:
            pending.pop(0)
            close("finalize")
        elif (i + 1) % every == 0:
            step(policy.next_window())
    if eof:
        close("eof")
    return Run(policy, model, updates, policy.finish(), committed_at, events)


def words_of(text: str) -> list[str]:
    return text.split()


def true_words(script: list[Spoken]) -> list[str]:
    return [w.text for w in script]


def check_updates(run: Run) -> None:
    """The protocol's promises about every transcript update (there must be some to check)."""
    assert run.updates, "no transcript update to check"
    previous = ""
    for u in run.updates:
        assert u.text == u.committed + u.tentative
        assert u.committed.startswith(previous), (previous, u.committed)
        assert u.committed == u.committed.strip() or not u.committed
        assert GARBLED not in u.committed, f"a half-heard word was committed: {u.committed[-60:]!r}"
        previous = u.committed
    assert run.final.text.startswith(previous)


def check_final(run: Run, script: list[Spoken]) -> None:
    final = run.final
    assert words_of(final.text) == true_words(script)
    assert " ".join(s.text for s in final.segments) == final.text
    last_end = 0.0
    for s in final.segments:
        assert s.text and s.start < s.end
        assert s.start >= last_end - 0.11  # words may overlap by the policy's 0.1 s slack
        last_end = s.end
        assert [w.text.strip() for w in s.words] == words_of(s.text)
    spoken = {w.text: w for w in script}
    for s in final.segments:
        for w in s.words:  # times are session times, not window times
            truth = spoken[w.text.strip()]
            assert abs(w.start - truth.start) < 0.05 and abs(w.end - truth.end) < 0.05
    assert final.audio_seconds == pytest.approx(run.policy.audio_seconds)
