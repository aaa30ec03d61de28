"""Deepgram Flux (``/v2/listen``): turn-based live transcription for voice agents, as a pure
translator of the shared session's turn events (the WebSocket side is :mod:`.deepgram_flux_ws`).

The connection's query says the audio (``encoding``, ``sample_rate``; no ``encoding``:
containerised audio through ffmpeg, as ``/v1/listen``) and the turn settings (``eot_threshold``,
``eager_eot_threshold``, ``eot_timeout_ms``, ``keyterm``); ``model`` is any name (the server's
own model answers). Binary frames are audio; text frames are ``Configure`` (thresholds,
keyterms), ``ForceEndTurn`` (the session's ``finalize``: the turn ends at once) and
``CloseStream`` (the end of input). The server answers ``Connected``, then ``TurnInfo``
messages (``StartOfTurn``, ``Update``, ``EagerEndOfTurn``, ``TurnResumed``, ``EndOfTurn``)
built from the session's turn events, ``ConfigureSuccess``/``ConfigureFailure``, ``Warning`` for a
message it does not understand, and ``Error`` before closing. The shapes are those of the
official ``deepgram-sdk``'s ``listen.v2`` types; what differs from Deepgram's service is in
docs/compatibility.md.

Every message carries ``sequence_id``: 0 for ``Connected``, then one more per message, counted
here as each is built. Flux promises a few things about the order of turn events that the
session does not promise in the same words, so the translator keeps the open turn's last
transcript: an ``EagerEndOfTurn`` always has a transcript (one without is not sent, nor the
``TurnResumed`` that would withdraw it); a ``TurnResumed`` only follows an ``EagerEndOfTurn``;
and an ``EndOfTurn`` (or ``Update``) whose transcript differs from the ``EagerEndOfTurn`` before it
comes after a ``TurnResumed`` (the closing pass may still change the text after the eager point).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.actions import Audio, Configure, End, Finalize, KeepAlive
from wirescribe.api.compat.actions import Parsed
from wirescribe.api.compat.deepgram_live import ENCODINGS, MAX_RATE, MIN_RATE, RAW, DeepgramRefused
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.session_options import OptionError
from wirescribe.api.turn_options import turn_settings
from wirescribe.asr.types import Word
from wirescribe.streaming.events import (
    EagerEndOfTurn,
    Event,
    SessionConfig,
    TurnEnded,
    TurnResumed,
    TurnStarted,
    TurnTrigger,
    TurnUpdate,
)

DEFAULT_MODEL = "flux-general-en"
# What ended a turn, as Flux names it (``manual``: ForceEndTurn). Flux documents no trigger for
# the end of the stream; the SDK's ``trigger`` is an open enum, and ``eof`` says what happened.
TRIGGERS = {TurnTrigger.MODEL: "model", TurnTrigger.TIMEOUT: "timeout", TurnTrigger.FINALIZE: "manual",
            TurnTrigger.EOF: "eof"}  # fmt: skip
# Our error codes → Flux's ``Error.code`` (the close code is the edge's, as for ``/v1/listen``).
ERROR_CODES = {
    "bad_request": "BAD_REQUEST", "unauthorized": "INVALID_AUTH", "bad_audio": "DATA-0000",
    "too_large": "DATA-0001", "timeout": "NET-0001", "busy": "TOO_MANY_REQUESTS",
    "internal": "INTERNAL_SERVER_ERROR",
}  # fmt: skip


@dataclass(frozen=True)
class FluxOptions:
    """What a Flux client asked for at connect."""

    format: str = "auto"  # the decoder's format (containerised audio: "auto")
    sample_rate: int = 16000
    model: str = DEFAULT_MODEL
    settings: SessionConfig = field(default_factory=lambda: SessionConfig(turns=True))  # no language yet


def parse_options(query: Mapping[str, str], keyterms: Sequence[str]) -> FluxOptions:
    """The connection's query (``keyterms``: every ``keyterm`` value); :class:`DeepgramRefused`
    (HTTP 400, Deepgram's body) for what this server cannot do or Flux would refuse."""
    try:
        return _parse(query, keyterms)
    except OptionError as e:
        raise DeepgramRefused("bad_request", str(e)) from e


def _parse(query: Mapping[str, str], keyterms: Sequence[str]) -> FluxOptions:
    o = FluxOptions(model=query.get("model", DEFAULT_MODEL)[:100])
    encoding = query.get("encoding")
    if encoding is not None:
        if encoding not in ENCODINGS:
            raise OptionError(f"encoding {session_options.shown(encoding)} is not supported here"
                              f" (one of {', '.join(ENCODINGS)})")  # fmt: skip
        o = replace(o, format=ENCODINGS[encoding])
    raw_rate = query.get("sample_rate")
    if encoding in RAW and raw_rate is None:
        raise OptionError(f"sample_rate is required with encoding={encoding}")
    if raw_rate is not None:
        if not raw_rate.isdigit() or not MIN_RATE <= int(raw_rate) <= MAX_RATE:
            raise OptionError(f"sample_rate must be a whole number {MIN_RATE}-{MAX_RATE},"
                              f" not {session_options.shown(raw_rate)}")  # fmt: skip
        o = replace(o, sample_rate=int(raw_rate))
    settings = turn_settings(replace(o.settings, keyterms=session_options.keyterms(keyterms)), query)
    return replace(o, settings=settings)


def _word(w: Word) -> dict[str, Any]:
    return {"word": w.text.strip(), "confidence": round(w.probability, 4), "start": round(w.start, 3),
            "end": round(w.end, 3)}  # fmt: skip


@dataclass(frozen=True)
class _Turn:
    """The open turn as last told to the client (what a TurnResumed repeats)."""

    index: int
    start: float
    end: float
    transcript: str = ""
    words: tuple[dict[str, Any], ...] = ()
    confidence: float = 0.0  # the end-of-turn probability last computed for it (0: none yet)
    eager: str | None = None  # the transcript of an EagerEndOfTurn not yet resumed or ended


class FluxLive:
    """One connection's translator: the settings as they stand (``Configure`` changes them), the
    message count (``sequence_id``) and the open turn as last told (see the module's docstring)."""

    def __init__(self, options: FluxOptions, *, language: str | None, request_id: str | None = None) -> None:
        self.options = options
        self.request_id = request_id or str(uuid.uuid4())
        self._config = replace(options.settings, language=language)
        self._sequence = 0
        self._turn: _Turn | None = None

    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def decoder_format(self) -> tuple[str, int]:
        return self.options.format, self.options.sample_rate

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A server message: ``type``, ``request_id`` (all but ``Error``), the next ``sequence_id``."""
        head: dict[str, Any] = {"type": kind}
        if kind != "Error":  # the SDK's FatalError has no request_id
            head["request_id"] = self.request_id
        head["sequence_id"] = self._sequence
        self._sequence += 1
        return {**head, **fields}

    def connected(self) -> dict[str, Any]:
        return self._message("Connected")

    # -- client messages ---------------------------------------------------------------------

    def client_binary(self, data: bytes) -> Parsed:
        return Parsed(actions=(Audio(data),)) if data else Parsed()

    def client_text(self, text: str) -> Parsed:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):
            return self._warning("INVALID_JSON", "the message is not JSON")
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind == "CloseStream":
            return Parsed(actions=(End(),))
        if kind == "ForceEndTurn":  # answered by the EndOfTurn it causes (none when no turn is open)
            return Parsed(actions=(Finalize(),))
        if kind == "KeepAlive":  # not Flux's, but harmless: any frame restarts the idle timer
            return Parsed(actions=(KeepAlive(),))
        if kind == "Configure":
            assert isinstance(msg, dict)
            return self._configure(msg)
        shown = session_options.shown(kind) if isinstance(kind, str) else "none"
        return self._warning("UNKNOWN_MESSAGE_TYPE", f"unknown message type {shown}: expected Configure,"
                             " ForceEndTurn or CloseStream")  # fmt: skip

    def _warning(self, code: str, description: str) -> Parsed:
        return Parsed(replies=(self._message("Warning", code=code, description=description),))

    def _configure(self, msg: dict[str, Any]) -> Parsed:
        """Thresholds (a missing one keeps its value; ``eager_eot_threshold`` null turns the eager
        events off) and keyterms (which replace the list, as Flux's do); what else Flux's
        ``Configure`` may carry (``language_hints``, ``numerals``) is accepted and ignored. All or
        nothing: a bad value changes nothing and gets ``ConfigureFailure``."""
        given, terms = msg.get("thresholds"), msg.get("keyterms")
        try:
            if given is not None and not isinstance(given, dict):
                raise OptionError("thresholds must be an object")
            config = turn_settings(self._config, given or {})
        except OptionError as e:
            return self._failure("INVALID_THRESHOLD", str(e))
        try:
            if terms is not None:
                if not isinstance(terms, (str, list)):
                    raise OptionError("keyterms must be a string or a list of strings")
                config = replace(config, keyterms=session_options.keyterms([terms] if isinstance(terms, str)
                                                                           else terms))  # fmt: skip
        except OptionError as e:
            return self._failure("INVALID_KEYTERMS", str(e))
        self._config = config
        success = self._message("ConfigureSuccess", thresholds=thresholds_json(config),
                                keyterms=list(config.keyterms))  # fmt: skip
        return Parsed(actions=(Configure(config),), replies=(success,))

    def _failure(self, code: str, description: str) -> Parsed:
        return Parsed(replies=(self._message("ConfigureFailure", code=code, description=description),))

    # -- session events ----------------------------------------------------------------------

    def event(self, event: Event) -> list[dict[str, Any]]:
        """The messages for one session event: only the turn events have any."""
        if isinstance(event, TurnStarted):
            self._turn = _Turn(event.turn, event.at, event.at)
            return [self._info("StartOfTurn", self._turn)]
        turn = self._turn
        if turn is None or getattr(event, "turn", None) != turn.index:
            return []  # not a turn event, or one of a turn never started (cannot happen)
        if isinstance(event, TurnUpdate):
            return self._update(turn, event)
        if isinstance(event, EagerEndOfTurn):
            return self._eager(turn, event)
        if isinstance(event, TurnResumed):
            if turn.eager is None:
                return []  # the eager point it withdraws was not sent (no transcript)
            self._turn = replace(turn, end=max(turn.end, event.at), confidence=event.confidence, eager=None)
            return [self._info("TurnResumed", self._turn)]
        if isinstance(event, TurnEnded):
            out = self._resume_if_changed(turn, event.text)
            final = _Turn(turn.index, event.start, event.end, event.text.strip(),
                          tuple(_word(w) for w in event.words), event.confidence)  # fmt: skip
            trigger = TRIGGERS.get(event.trigger, event.trigger.value)
            out.append(self._info("EndOfTurn", final, trigger=trigger))
            self._turn = None
            return out
        return []

    def _update(self, turn: _Turn, event: TurnUpdate) -> list[dict[str, Any]]:
        out = self._resume_if_changed(turn, event.text)
        words = _words_of(event.text, event.words)
        self._turn = replace(self._turn or turn, start=event.start, end=event.end,
                             transcript=event.text.strip(), words=words)  # fmt: skip
        out.append(self._info("Update", self._turn))
        return out

    def _eager(self, turn: _Turn, event: EagerEndOfTurn) -> list[dict[str, Any]]:
        transcript = event.text.strip()
        if not transcript:  # Flux: an EagerEndOfTurn always has a transcript
            return []
        self._turn = replace(turn, start=event.start, end=event.end, transcript=transcript,
                             words=_words_of(event.text, event.words), confidence=event.confidence,
                             eager=transcript)  # fmt: skip
        return [self._info("EagerEndOfTurn", self._turn)]

    def _resume_if_changed(self, turn: _Turn, text: str) -> list[dict[str, Any]]:
        """A ``TurnResumed`` when an ``EagerEndOfTurn`` is out and the transcript is no longer
        its transcript (Flux: an EndOfTurn's transcript is the eager one's, else TurnResumed
        comes first); nothing otherwise."""
        if turn.eager is None or turn.eager == text.strip():
            return []
        self._turn = replace(turn, eager=None)
        return [self._info("TurnResumed", self._turn)]

    def _info(self, kind: str, turn: _Turn, **extra: Any) -> dict[str, Any]:
        return self._message(
            "TurnInfo", event=kind, turn_index=turn.index, audio_window_start=round(turn.start, 3),
            audio_window_end=round(max(turn.end, turn.start), 3), transcript=turn.transcript,
            words=list(turn.words), end_of_turn_confidence=round(turn.confidence, 4), **extra,
        )  # fmt: skip

    # -- errors ------------------------------------------------------------------------------

    def error(self, error: ProtocolError) -> dict[str, Any]:
        """Flux's ``Error`` (its ``FatalError``: the edge closes next, with the error's code)."""
        code = ERROR_CODES.get(error.code, "INTERNAL_SERVER_ERROR")
        return self._message("Error", code=code, description=error.message)


def thresholds_json(config: SessionConfig) -> dict[str, Any]:
    """The turn settings as ``ConfigureSuccess.thresholds`` names them (no eager one when off)."""
    out: dict[str, Any] = {"eot_threshold": config.eot_threshold, "eot_timeout_ms": config.eot_timeout_ms}
    if config.eager_eot_threshold is not None:
        out["eager_eot_threshold"] = config.eager_eot_threshold
    return out


def _words_of(text: str, committed: Sequence[Word]) -> tuple[dict[str, Any], ...]:
    """The words of a transcript so far: the committed ones with their times and probabilities,
    then those of the tentative tail, which has neither yet (``confidence`` 0, no times): the
    SDK says ``words`` are the words in ``transcript``, and the tail is in it."""
    words = [_word(w) for w in committed]
    said = "".join(w.text for w in committed).strip()
    shown = text.strip()
    tail = shown[len(said) :] if shown.startswith(said) else ""
    return (*words, *({"word": t, "confidence": 0.0} for t in tail.split()))
