"""An OpenAI Realtime transcription session's settings: what ``session.update`` (GA) and
``transcription_session.update`` (beta) may say, checked, and the session object echoed back.

Apart from :mod:`.openai_realtime` (which translates the live session's events) because reading
a client's settings and answering its turns change for different reasons: this half follows
OpenAI's session schema, that half the shared session's event vocabulary. Pure: no socket, no
session; a :class:`RealtimeError` names the offending ``param`` as OpenAI's errors do.

``semantic_vad`` is the session's end-of-turn model (``SessionConfig.turns``), its ``eagerness``
mapped onto the model's thresholds (:data:`EAGERNESS`), and :class:`TurnItems` makes an item of
each of its turns; ``server_vad`` stays silence-based, an item per utterance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.session_options import OptionError
from wirescribe.streaming.events import (
    CloseReason,
    Event,
    Finalized,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    TurnEnded,
    TurnStarted,
    TurnTrigger,
    UtteranceEnded,
)

# The audio formats a transcription session takes: name → (decoder format, sample rate, bytes/s).
AUDIO_FORMATS = {
    "pcm16": ("pcm16", 24000, 48000),
    "g711_ulaw": ("mulaw", 8000, 8000),
    "g711_alaw": ("alaw", 8000, 8000),
}
GA_FORMAT_TYPES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
DEFAULT_SILENCE_MS = 500  # OpenAI's default silence_duration_ms
DEFAULT_PREFIX_MS = 300


@dataclass(frozen=True)
class Eagerness:
    """What one ``semantic_vad.eagerness`` asks of the end-of-turn model."""

    eot_threshold: float
    eager_eot_threshold: float | None
    eot_timeout_ms: int


# ``eagerness`` → the end-of-turn model's settings. The timeouts are OpenAI's own (its
# ``eagerness`` doc: "max timeouts of 8s, 4s, and 2s"). ``medium`` (and ``auto``, which OpenAI
# calls the same) is the model's default threshold, the one the turn benchmark tunes; ``low``
# waits for more certainty (fewer hesitations taken for the end, later ends); ``high`` takes the
# lowest threshold Flux allows, and an eager one: no OpenAI event shows an eager point, but the
# session begins the turn's closing pass there, so the completed transcript is ready sooner —
# which is what ``high`` asks for — at the cost of passes thrown away when the speaker goes on.
EAGERNESS = {
    "low": Eagerness(0.85, None, 8000),
    "medium": Eagerness(0.7, None, 4000),
    "auto": Eagerness(0.7, None, 4000),
    "high": Eagerness(0.5, 0.35, 2000),
}


class RealtimeError(ProtocolError):
    """An error in OpenAI's own terms (``code``/``param``), for the client's event ``event_id``."""

    def __init__(
        self, message: str, *, code: str = "invalid_value", param: str | None = None,
        event_id: str | None = None, kind: str = "invalid_request_error",
    ) -> None:  # fmt: skip
        super().__init__("bad_message", message)
        self.openai_code = code
        self.param = param
        self.event_id = event_id
        self.kind = kind


@dataclass(frozen=True)
class TurnDetection:
    """``type`` None: the client commits; else ``server_vad`` (an item per utterance: a pause of
    ``silence_ms`` ends it) or ``semantic_vad`` (an item per turn of the end-of-turn model, as
    ``eagerness`` says; a pause of ``silence_ms`` still ends an utterance within it)."""

    type: str | None = "server_vad"
    silence_ms: int = DEFAULT_SILENCE_MS
    prefix_ms: int = DEFAULT_PREFIX_MS
    threshold: float = 0.5  # the session's voice-activity threshold (Silero's speech probability)
    eagerness: str = "auto"  # semantic_vad's

    @property
    def semantic(self) -> bool:
        return self.type == "semantic_vad"

    def apply(self, config: SessionConfig) -> SessionConfig:
        """``config`` with the end-of-turn model on (``semantic_vad``, as its eagerness says) or off."""
        if not self.semantic:
            return replace(config, turns=False)
        e = EAGERNESS[self.eagerness]
        return replace(config, turns=True, eot_threshold=e.eot_threshold,
                       eager_eot_threshold=e.eager_eot_threshold,
                       eot_timeout_ms=e.eot_timeout_ms)  # fmt: skip

    def as_json(self) -> dict[str, Any] | None:
        if self.type is None:
            return None
        if self.semantic:  # OpenAI's SemanticVad has none of server VAD's numbers
            return {"type": self.type, "eagerness": self.eagerness}
        return {
            "type": self.type, "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_ms, "silence_duration_ms": self.silence_ms,
        }  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """A transcription session's settings as the client sees them."""

    audio_format: str = "pcm16"
    model: str = "whisper-1"
    language: str | None = None
    prompt: str = ""
    keywords: tuple[str, ...] = ()
    turn: TurnDetection = TurnDetection()
    noise_reduction: dict[str, Any] | None = None


def check_token_query(query: Mapping[str, str]) -> None:
    """``intent`` must be ``transcription`` when given; ``model`` is taken as a hint."""
    intent = query.get("intent")
    if intent is not None and intent != "transcription":
        raise RealtimeError(
            f"intent {session_options.shown(intent)} is not served here: only transcription sessions"
            " (intent=transcription)", param="intent",
        )  # fmt: skip


@dataclass(frozen=True)
class SettingsReader:
    """Reads updates against the model's ``languages``; ``default_language`` is what
    ``language`` means when the client names none (or ``""``/null)."""

    languages: Sequence[str]
    default_language: str | None

    def update(self, s: Settings, session: object, *, beta: bool) -> Settings:
        """``s`` with an update's ``session`` applied (GA or beta shape)."""
        if not isinstance(session, dict):
            raise RealtimeError("session must be an object", param="session")
        return self._beta(s, session) if beta else self._ga(s, session)

    def _ga(self, s: Settings, session: dict[str, Any]) -> Settings:
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise RealtimeError(
                f"session type {session_options.shown(str(kind))} is not served here: only"
                " \"transcription\"", param="session.type",
            )  # fmt: skip
        audio = session.get("audio") or {}
        inp = audio.get("input") if isinstance(audio, dict) else None
        if inp is None:
            return s
        if not isinstance(inp, dict):
            raise RealtimeError("session.audio.input must be an object", param="session.audio.input")
        if "format" in inp:
            fmt = inp["format"] or {}
            name = GA_FORMAT_TYPES.get(fmt.get("type", "audio/pcm")) if isinstance(fmt, dict) else None
            if name is None or (name == "pcm16" and fmt.get("rate", 24000) != 24000):
                raise RealtimeError("format must be audio/pcm at 24000 Hz, audio/pcmu or audio/pcma",
                                    param="session.audio.input.format")  # fmt: skip
            s = replace(s, audio_format=name)
        if "transcription" in inp:
            s = self._transcription(s, inp["transcription"], "session.audio.input.transcription")
        if "turn_detection" in inp:
            s = replace(s, turn=_turn(inp["turn_detection"], "session.audio.input.turn_detection"))
        if "noise_reduction" in inp:
            s = replace(s, noise_reduction=inp["noise_reduction"])
        return s

    def _beta(self, s: Settings, session: dict[str, Any]) -> Settings:
        if "input_audio_format" in session:
            name = session["input_audio_format"]
            if name not in AUDIO_FORMATS:
                raise RealtimeError(f"input_audio_format must be one of {', '.join(AUDIO_FORMATS)}",
                                    param="session.input_audio_format")  # fmt: skip
            s = replace(s, audio_format=name)
        if "input_audio_transcription" in session:
            s = self._transcription(
                s, session["input_audio_transcription"], "session.input_audio_transcription"
            )
        if "turn_detection" in session:
            s = replace(s, turn=_turn(session["turn_detection"], "session.turn_detection"))
        if "input_audio_noise_reduction" in session:
            s = replace(s, noise_reduction=session["input_audio_noise_reduction"])
        return s

    def _transcription(self, s: Settings, value: object, param: str) -> Settings:
        if value is None:
            return s
        if not isinstance(value, dict):
            raise RealtimeError(f"{param} must be an object", param=param)
        try:
            if isinstance(value.get("model"), str):
                s = replace(s, model=value["model"])
            if "language" in value:
                lang = value["language"] or self.default_language  # "" or null: the model's own
                s = replace(s, language=session_options.language(lang, self.languages) if lang else None)
            if "prompt" in value:
                s = replace(s, prompt=session_options.prompt(value["prompt"] or ""))
            if "keywords" in value:
                words = value["keywords"] or []
                if not isinstance(words, list):
                    raise OptionError("keywords must be a list of strings")
                s = replace(s, keywords=session_options.keyterms(words))
        except OptionError as e:
            raise RealtimeError(str(e), param=param) from e
        return s


def _turn(value: object, param: str) -> TurnDetection:
    if value is None:
        return TurnDetection(type=None)
    if not isinstance(value, dict):
        raise RealtimeError(f"{param} must be an object or null", param=param)
    kind = value.get("type", "server_vad")
    if kind not in ("server_vad", "semantic_vad"):
        raise RealtimeError(f"{param}.type must be server_vad, semantic_vad or null", param=param)
    ms = {}
    for key in ("silence_duration_ms", "prefix_padding_ms"):
        raw = value.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 10_000:
            raise RealtimeError(f"{param}.{key} must be a whole number of milliseconds", param=param)
        ms[key] = raw
    eagerness = value.get("eagerness") or "auto"
    if kind == "semantic_vad" and eagerness not in EAGERNESS:
        raise RealtimeError(f"{param}.eagerness must be one of low, medium, high, auto", param=param)
    turn = TurnDetection(
        type=kind,
        silence_ms=ms.get("silence_duration_ms", DEFAULT_SILENCE_MS),
        prefix_ms=ms.get("prefix_padding_ms", DEFAULT_PREFIX_MS),
        eagerness=eagerness if kind == "semantic_vad" else "auto",
    )
    threshold = value.get("threshold")
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise RealtimeError(f"{param}.threshold must be a number from 0.0 to 1.0", param=param)
        turn = replace(turn, threshold=float(threshold))
    return turn


def session_json(s: Settings, session_id: str, *, beta: bool) -> dict[str, Any]:
    """The session object of ``session.created``/``.updated`` (beta: ``transcription_session.…``)."""
    transcription = {"model": s.model, "language": s.language, "prompt": s.prompt}
    if beta:
        return {
            "id": session_id, "object": "realtime.transcription_session", "expires_at": 0,
            "input_audio_format": s.audio_format, "input_audio_transcription": transcription,
            "turn_detection": s.turn.as_json(), "input_audio_noise_reduction": s.noise_reduction,
            "include": None, "modalities": ["text"], "client_secret": None,
        }  # fmt: skip
    fmt = {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"},
           "g711_alaw": {"type": "audio/pcma"}}[s.audio_format]  # fmt: skip
    return {
        "type": "transcription", "id": session_id, "object": "realtime.transcription_session",
        "expires_at": 0, "include": None,
        "audio": {"input": {
            "format": fmt, "transcription": {**transcription, "keywords": list(s.keywords)},
            "turn_detection": s.turn.as_json(), "noise_reduction": s.noise_reduction,
        }},
    }  # fmt: skip


class TurnItems:
    """With ``semantic_vad`` an item is a turn of the end-of-turn model, which may hold several
    utterances (a hesitation ends an utterance, not the turn). This turns the session's turn
    events into the utterance events the translator builds items from, numbered by turn:
    ``TurnStarted`` → ``SpeechStarted`` (``speech_started``); committed words → the open turn's
    (deltas); ``TurnEnded`` → ``UtteranceEnded`` (``speech_stopped`` unless a commit ended it,
    ``committed``, the item, ``completed`` with the turn's text); the utterances' own events,
    and the eager and resumed points, which OpenAI has no event for, → nothing.

    A commit (the session's ``finalize``) ends the open turn at once, and that turn's end
    answers it (whatever its trigger: a turn already judged over ends with the utterance the
    finalize closed); the session's ``Finalized`` must then not answer it again, whichever of
    the two comes first. So this keeps which turn is open and where a finalize's answers stand.
    A commit with no turn open gets its own (empty) item, as with server VAD.
    """

    def __init__(self) -> None:
        self._open: int | None = None
        self._next = 0  # the turn that starts next
        self._finalizing = False  # a finalize closed an utterance; its Finalized has not come
        self._commit_waits = False  # a Finalized came with a turn open: its TurnEnded answers it
        self._commit_answered = False  # a turn ended by a finalize whose Finalized has not come

    def utterance_event(self, event: Event) -> Event | None:
        if isinstance(event, TurnStarted):
            self._open = event.turn
            return SpeechStarted(event.at, event.turn)
        if isinstance(event, TranscriptChanged):
            turn = self._open if self._open is not None else self._next
            return replace(event, utterance=turn if event.words else None)
        if isinstance(event, UtteranceEnded):
            self._finalizing = self._finalizing or event.reason == CloseReason.FINALIZE
            return None  # an utterance is not an item: its turn is
        if isinstance(event, TurnEnded):
            return self._ended(event)
        if isinstance(event, Finalized):
            self._finalizing = False
            if self._open is not None:
                self._commit_waits = True
                return None
            if self._commit_answered:
                self._commit_answered = False
                return None
            return Finalized(event.audio_seconds, None)
        return None

    def _ended(self, event: TurnEnded) -> UtteranceEnded:
        self._open, self._next = None, event.turn + 1
        if event.trigger == TurnTrigger.FINALIZE or self._finalizing:
            self._commit_answered = not self._commit_waits
            self._commit_waits = False
        reasons = {TurnTrigger.FINALIZE: CloseReason.FINALIZE, TurnTrigger.EOF: CloseReason.EOF}
        reason = reasons.get(event.trigger, CloseReason.PAUSE)
        return UtteranceEnded(event.start, event.end, event.text, event.words, reason, event.turn)
