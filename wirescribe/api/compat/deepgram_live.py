"""Deepgram's live transcription protocol (``/v1/listen``), as a pure translator.

The connection's query says the audio (``encoding``, ``sample_rate``, ``channels``) and the
options (``interim_results``, ``endpointing``, ``utterance_end_ms``, ``vad_events``,
``punctuate``/``smart_format``, ``keyterm``, ``language``); binary frames are audio; text frames
are ``KeepAlive``, ``Finalize``, ``CloseStream`` and ``Configure``. The server answers with
``Results`` (``is_final`` when words are committed, interim ones for the tentative tail),
``SpeechStarted``, ``UtteranceEnd`` and, after ``CloseStream``, ``Metadata``.

Mapping the shared session's events: committed words are final (``is_final: true``) the moment
they are committed, in non-overlapping spans; the tentative tail is the interim result; an
utterance's end (a pause of ``endpointing`` ms, ``Finalize``, or the end of the stream) is a
``speech_final`` result (empty: its words went out as they were committed), then
``UtteranceEnd`` when ``utterance_end_ms`` is set. ``Finalize`` is answered by the session's
events, not by a count kept here: the utterance end it caused (reason ``finalize``) carries
``from_finalize: true``; when no utterance was open, the session's ``Finalized`` (``closed``
None) gets an empty ``from_finalize`` result. What differs from Deepgram's service is in
docs/compatibility.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.actions import Audio, Configure, End, Finalize, KeepAlive
from wirescribe.api.compat.actions import Parsed, Refusal, new_id
from wirescribe.api.language_choice import choose_deepgram
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.session_options import OptionError
from wirescribe.asr.types import ModelBackend, Word
from wirescribe.streaming.events import (
    MAX_ENDPOINTING_MS,
    MIN_ENDPOINTING_MS,
    CloseReason,
    Event,
    Finalized,
    LanguageDetected,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)

# Deepgram encoding → decoder format (None: the sample rate is the container's).
ENCODINGS: dict[str, str] = {
    "linear16": "pcm16", "linear32": "f32", "mulaw": "mulaw", "alaw": "alaw",
    "opus": "auto", "ogg-opus": "auto", "flac": "auto",
}  # fmt: skip
RAW = ("linear16", "linear32", "mulaw", "alaw")
MIN_RATE, MAX_RATE = 8000, 48000
MODEL_UUID = "00000000-0000-4000-8000-000000000000"  # stands for this server's one model

# Close codes and reasons, as Deepgram closes: DATA-… for audio it cannot read, NET-… for the
# connection, and 1011 for its own failures.
CLOSE_FOR: dict[str, tuple[int, str, str]] = {
    "bad_audio": (1008, "DATA-0000", "The payload cannot be decoded as audio."),
    "too_large": (1009, "DATA-0001", "A message was over the size limit."),
    "timeout": (1011, "NET-0001", "Did not receive audio data or a text message within the timeout window."),
    "internal": (1011, "INTERNAL", "The server failed."),
    "busy": (1013, "BUSY", "The server is at its session limit."),
    "bad_request": (1008, "BAD-REQUEST", "Bad request."),
    "unauthorized": (1008, "INVALID_AUTH", "Invalid credentials."),
}
REFUSAL_STATUS = {"bad_request": (400, "Bad Request"), "unauthorized": (401, "INVALID_AUTH"),
                  "busy": (429, "TOO_MANY_REQUESTS")}  # fmt: skip


class DeepgramRefused(Exception):
    """A connection refused at the handshake (HTTP status and Deepgram's error body)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _flag(query: Mapping[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    return default if raw is None else session_options.flag(name, raw)


def _whole(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise OptionError(f"{name} must be a whole number, not {session_options.shown(raw)}")
    return int(raw)


@dataclass(frozen=True)
class Options:
    """What a Deepgram client asked for at connect."""

    encoding: str | None = None
    format: str = "auto"
    sample_rate: int = 16000
    language: str | None = None
    model: str = "nova-3"
    interim_results: bool = False
    endpointing_ms: int | None = 10  # None: endpointing=false
    utterance_end_ms: int | None = None
    vad_events: bool = False
    punctuate: bool = False
    keyterms: tuple[str, ...] = ()
    detect_language: bool = False  # detected_language in every final result
    server_model: str | None = None  # the loaded model that answers (language_choice.choose_deepgram)


def parse_options(
    query: Mapping[str, str],
    keyterms: Sequence[str],
    languages: Sequence[str],
    default_language: str | None,
    models: ModelBackend | None = None,
) -> Options:
    """The connection's query (``keyterms``: every ``keyterm`` value); :class:`DeepgramRefused`
    (HTTP 400) for what this server cannot do, as Deepgram answers a bad request. ``models``:
    the loaded models, among which ``model``/``language``/``detect_language`` choose."""
    try:
        if models is None:
            return _parse(query, keyterms, languages, default_language)
        options = _parse({k: v for k, v in query.items() if k != "language"}, keyterms, languages, None)
        detect = _flag(query, "detect_language", False)
        choice = choose_deepgram(models, query.get("model"), query.get("language"), detect)
        return replace(options, language=choice.language, server_model=choice.name, detect_language=detect)
    except OptionError as e:
        raise DeepgramRefused("bad_request", str(e)) from e


def _parse(
    query: Mapping[str, str], keyterms: Sequence[str], languages: Sequence[str], default_language: str | None
) -> Options:
    o = Options()
    encoding = query.get("encoding")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise OptionError(f"encoding {session_options.shown(encoding)} is not supported here"
                              f" (one of {', '.join(ENCODINGS)})")  # fmt: skip
        o = replace(o, encoding=encoding, format=ENCODINGS[encoding])
    rate = _whole(query, "sample_rate")
    if encoding in RAW and rate is None:
        raise OptionError(f"sample_rate is required with encoding={encoding}")
    if rate is not None:
        if not MIN_RATE <= rate <= MAX_RATE:
            raise OptionError(f"sample_rate must be {MIN_RATE}-{MAX_RATE}, not {rate}")
        o = replace(o, sample_rate=rate)
    channels = _whole(query, "channels")
    if channels not in (None, 1) or _flag(query, "multichannel", False):
        raise OptionError("only one channel is supported (channels=1, multichannel=false)")
    language = query.get("language")
    if language in (None, "", "multi"):
        language = default_language
    else:
        language = session_options.language(language.split("-")[0].lower(), languages)
    endpointing: int | None = 10
    raw = query.get("endpointing")
    if raw is not None:
        if raw.lower() == "false":
            endpointing = None
        elif raw.lower() == "true":
            endpointing = 10
        else:
            endpointing = _whole(query, "endpointing")
    utterance_end = _whole(query, "utterance_end_ms")
    terms = list(keyterms)
    terms += [re.sub(r":-?[\d.]+$", "", k) for k in query.get("keywords", "").split(",") if k.strip()]
    return replace(
        o,
        language=language,
        model=query.get("model", o.model)[:100],
        interim_results=_flag(query, "interim_results", False),
        endpointing_ms=endpointing,
        utterance_end_ms=utterance_end,
        vad_events=_flag(query, "vad_events", False),
        punctuate=_flag(query, "punctuate", False) or _flag(query, "smart_format", False),
        keyterms=session_options.keyterms(terms),
    )


def _clamp(ms: int) -> int:
    return min(max(ms, MIN_ENDPOINTING_MS), MAX_ENDPOINTING_MS)


def plain_word(text: str) -> str:
    """Deepgram's ``word``: lower case, no punctuation (``punctuated_word`` keeps them)."""
    return re.sub(r"[^\w'\-]", "", text.strip().lower()).strip("'")


class DeepgramLive:
    """One connection's translator.

    It keeps no turn state (whether an utterance is open, its words, a pending ``Finalize``):
    each event says which utterance it is about and why it ended. What it keeps is about the
    byte stream and the results' layout: the audio's sha256 (for ``Metadata``) and the
    span cursor, where the next final result starts (results tile the timeline without
    overlapping, whichever utterance they belong to).
    """

    def __init__(self, options: Options, *, model_name: str, request_id: str | None = None) -> None:
        self.options = options
        self.request_id = request_id or new_id("", 32)
        self._server_model = options.server_model or model_name
        self._sha = hashlib.sha256()
        self._cursor = 0.0  # seconds: where the next final result's span starts
        self._language = options.language  # detect_language: told in results (None: not yet heard)
        self._config = SessionConfig(
            language=options.language, keyterms=options.keyterms, model=options.server_model,
            endpointing_ms=_clamp(options.endpointing_ms if options.endpointing_ms is not None
                                  else options.utterance_end_ms or 1000),
        )  # fmt: skip
        self._created = (
            dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )

    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def decoder_format(self) -> tuple[str, int]:
        return self.options.format, self.options.sample_rate

    # -- client messages ---------------------------------------------------------------------

    def client_binary(self, data: bytes) -> Parsed:
        self._sha.update(data)
        return Parsed(actions=(Audio(data),)) if data else Parsed()

    def client_text(self, text: str) -> Parsed:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            return Parsed(replies=(self._schema_error("the message is not JSON", text),))
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "KeepAlive":
            return Parsed(actions=(KeepAlive(),))
        if kind == "Finalize":  # answered by the events it causes (see the module's docstring)
            return Parsed(actions=(Finalize(),))
        if kind == "CloseStream":
            return Parsed(actions=(End(),))
        if kind == "Configure":
            return self._configure(msg)
        shown = session_options.shown(str(kind)) if kind is not None else "none"
        return Parsed(replies=(self._schema_error(f"unknown message type {shown}", text),))

    def _configure(self, msg: dict[str, Any]) -> Parsed:
        terms = msg.get("keyterms")
        if terms is None:
            return Parsed(replies=({"type": "ConfigureSuccess", "request_id": self.request_id},))
        try:
            if not isinstance(terms, list):
                raise OptionError("keyterms must be a list of strings")
            self._config = replace(self._config, keyterms=session_options.keyterms(terms))
        except OptionError as e:
            failure = {"type": "ConfigureFailure", "request_id": self.request_id,
                       "code": "CONFIGURE_KEYTERM_LIMIT_EXCEEDED", "description": str(e)}  # fmt: skip
            return Parsed(replies=(failure,))
        success = {
            "type": "ConfigureSuccess",
            "request_id": self.request_id,
            "keyterms": list(self._config.keyterms),
        }
        return Parsed(actions=(Configure(self._config),), replies=(success,))

    def _schema_error(self, description: str, original: str) -> dict[str, Any]:
        return {
            "type": "Error",
            "variant": "SchemaError",
            "description": description,
            "message": original[:200],
        }

    # -- session events ----------------------------------------------------------------------

    def event(self, event: Event) -> list[dict[str, Any]]:
        if isinstance(event, LanguageDetected):
            self._language = event.language
            return []
        if isinstance(event, SpeechStarted):
            if not self.options.vad_events:
                return []
            return [{"type": "SpeechStarted", "channel": [0], "timestamp": round(event.at, 3)}]
        if isinstance(event, TranscriptChanged):
            return self._changed(event)
        if isinstance(event, UtteranceEnded):
            return self._ended(event)
        if isinstance(event, Finalized) and event.closed is None:
            # A Finalize with no utterance open: an empty result says it was carried out.
            return [self._results((), self._cursor, self._cursor, is_final=True, from_finalize=True)]
        return []  # a Finalize that ended an utterance: that utterance's end answered it

    def _changed(self, event: TranscriptChanged) -> list[dict[str, Any]]:
        out = []
        if event.words:
            end = max(event.words[-1].end, self._cursor)
            out.append(self._results(event.words, self._cursor, end, is_final=True))
            self._cursor = end
        if self.options.interim_results and event.tentative.strip():
            end = max(event.audio_seconds, self._cursor)
            out.append(self._results((), self._cursor, end, is_final=False, text=event.tentative))
        return out

    def _ended(self, event: UtteranceEnded) -> list[dict[str, Any]]:
        from_finalize = event.reason == CloseReason.FINALIZE
        end = max(event.end, self._cursor)
        speech_final = self.options.endpointing_ms is not None or from_finalize
        out = [self._results((), self._cursor, end, is_final=True, speech_final=speech_final,
                             from_finalize=from_finalize)]  # fmt: skip
        self._cursor = end
        if self.options.utterance_end_ms is not None and event.words:  # Deepgram: only after words
            out.append(
                {"type": "UtteranceEnd", "channel": [0], "last_word_end": round(event.words[-1].end, 3)}
            )
        return out

    def final(self, audio_seconds: float) -> list[dict[str, Any]]:
        """After ``CloseStream``, once everything is out: ``Metadata``."""
        return [{
            "type": "Metadata", "transaction_key": "deprecated", "request_id": self.request_id,
            "sha256": self._sha.hexdigest(), "created": self._created, "duration": round(audio_seconds, 3),
            "channels": 1, "models": [MODEL_UUID],
            "model_info": {MODEL_UUID: {"name": self._server_model, "version": "", "arch": "whisper"}},
        }]  # fmt: skip

    def _results(
        self, words: Sequence[Word], start: float, end: float, *, is_final: bool, speech_final: bool = False,
        from_finalize: bool = False, text: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        listed = [
            {"word": plain_word(w.text), "start": round(w.start, 3), "end": round(w.end, 3),
             "confidence": round(w.probability, 4), "punctuated_word": w.text.strip()}
            for w in words
        ]  # fmt: skip
        shown = text if text is not None else "".join(w.text for w in words)
        transcript = (
            shown.strip()
            if self.options.punctuate
            else " ".join(p for p in (plain_word(t) for t in shown.split()) if p)
        )
        # The mean of the words' probabilities. Text without words is the tentative tail, for
        # which the session's events carry no probabilities: 0.0 says "not known", where any
        # other number would be made up.
        confidence = sum(w.probability for w in words) / len(words) if words else 0.0
        best = {"transcript": transcript, "confidence": round(confidence, 4), "words": listed}
        channel: dict[str, Any] = {"alternatives": [best]}
        if self.options.detect_language and is_final and self._language is not None:
            channel["detected_language"] = self._language
        return {
            "type": "Results", "channel_index": [0, 1], "duration": round(max(0.0, end - start), 3),
            "start": round(start, 3), "is_final": is_final, "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": channel,
            "metadata": {"request_id": self.request_id, "model_uuid": MODEL_UUID,
                         "model_info": {"name": self._server_model, "version": "", "arch": "whisper"}},
        }  # fmt: skip

    # -- errors ------------------------------------------------------------------------------

    def error(self, error: ProtocolError) -> tuple[dict[str, Any], int, str]:
        """(``Error`` message, close code, close reason) for an error mid-stream."""
        close, reason, _ = CLOSE_FOR.get(error.code, CLOSE_FOR["internal"])
        message = {"type": "Error", "variant": reason, "description": error.message, "message": ""}
        return message, close, reason


def refusal(code: str, message: str, request_id: str | None = None) -> Refusal:
    """The HTTP answer to a refused handshake, in Deepgram's shape."""
    status, err_code = REFUSAL_STATUS.get(code, (400, "Bad Request"))
    rid = request_id or new_id("", 32)
    body = {"err_code": err_code, "err_msg": message, "request_id": rid}
    return Refusal(status, body, {"dg-error": message[:200], "dg-request-id": rid})
