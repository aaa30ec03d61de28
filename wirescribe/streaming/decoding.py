"""How a live session's windows are decoded: cheap live refreshes, a strong closing pass."""

from __future__ import annotations

from dataclasses import replace

from wirescribe.asr.types import DecodeOptions, Transcript
from wirescribe.streaming.events import LanguageDetected, SessionConfig
from wirescribe.streaming.window import Window

SAMPLE_RATE = 16000
SHORT_WINDOW = 3.5
CLOSING_BEAM = 5
CLOSING_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def live_decode_options(
    window: Window,
    language: str | None,
    context_seconds: float | None,
    hotwords: str | None = None,
    *,
    task: str = "transcribe",
    model: str | None = None,
) -> DecodeOptions:
    """Decoding for live windows: one greedy pass, no temperature fallback (a retry costs more than it
    saves here, and the next update re-reads the audio anyway), a short encoder context, and a
    token budget proportional to the window so a repetition loop cannot stall the session.

    The window that closes an utterance is committed whole, once: it gets beam search and the
    temperature fallback, as an offline pass would — when the model has room: under load the
    scheduler decodes it lighter (a short context, then greedy: ``asr/load.py``), because there
    every second it spends is a second the other sessions' windows wait. ``hotwords``
    (keyterms and prompt) go into every window's prefix."""
    closing = window.closes_utterance
    return DecodeOptions(
        language=language,
        task=task,  # translate: the same windows and passes, English text
        model=model,
        prompt=window.prompt or None,
        hotwords=hotwords,
        beam_size=CLOSING_BEAM if closing else 1,
        temperature=CLOSING_TEMPERATURES if closing else (0.0,),
        # Short live windows (a session's first seconds, speech after a long pause) get the full
        # context: a greedy pass over a short one tends to lose its first word. Later windows
        # hold a few seconds of committed audio, and the short context is as accurate there and
        # ~3x cheaper. The closing pass keeps the short context whatever its length: beam search
        # makes it as accurate as an offline pass over the utterance, and the full 30 s adds
        # nothing to that (bench/closing_pass.py; bench/batch_bench.py: the same words on 1.5-4 s
        # closing windows) at 2.6 times the cost (0.50 against 0.19 s a call), which every
        # end_of_turn and utterance_end of a short utterance waited for.
        context_seconds=None if window.seconds < SHORT_WINDOW and not closing else context_seconds,
        max_new_tokens=int(16 + 8 * window.seconds),
        # One decoding pass per window: with timestamp tokens faster-whisper re-decodes the
        # short tail after the last timestamp, and with word timestamps the tail after the last
        # word (2-3 passes per update, and the tails invent words: a closing pass decoded that
        # way once added "I would like to thank Mr. John Dashwood and Mr. John Dashwood..." to
        # an utterance). Word times come from the alignment either way. (Without timestamps
        # Whisper may stop at a long pause inside a window: the closing window holds its
        # utterance alone, whose pauses are shorter than the endpointing, see policy.py.)
        without_timestamps=True,
        single_pass=True,
    )


DETECT_SECONDS = 2.0  # a window this long with words in it fixes an auto session's language


def detect_language(
    config: SessionConfig, window: Window, result: Transcript
) -> tuple[SessionConfig, LanguageDetected] | None:
    """A session with no language (``language=auto``, a multilingual model) decodes each window
    in the language Whisper hears in it; the first window that heard words over at least
    ``DETECT_SECONDS`` of audio (or that closed an utterance) fixes the language for the rest of
    the session, so later windows do not each guess anew: the new config and the event that
    tells the edge (once). None while the language is set or not yet heard."""
    if config.language is not None or not result.text:
        return None
    if window.seconds < DETECT_SECONDS and not window.closes_utterance:
        return None
    detected = LanguageDetected(result.language, round(window.end / SAMPLE_RATE, 3))
    return replace(config, language=result.language), detected
