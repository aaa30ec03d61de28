"""OpenAI Realtime transcription sessions (``/v1/realtime``), as a pure translator.

Both dialects the official clients speak: the GA one (``session.update`` with
``session.type = "transcription"``, answered by ``session.created``/``session.updated``) and the
beta one (header ``OpenAI-Beta: realtime=v1``: ``transcription_session.update``/``.created``/
``.updated``, flat ``input_audio_format``). A connection answers in the dialect of its header
and of each update it gets.

One *item* is one user turn. With ``server_vad`` turn detection (the default) a turn is an
utterance of the shared session: ``input_audio_buffer.speech_started`` when it opens, the
committed text as it grows as ``conversation.item.input_audio_transcription.delta`` events
(append-only, so only committed text: the tentative tail could still change), and at its end
``speech_stopped``, ``committed``, the item, and ``…transcription.completed`` with the turn's
text. With ``turn_detection: null`` the client decides: deltas stream the same way, and an item
ends only at ``input_audio_buffer.commit`` (the session's ``finalize``). What the subset is, and
what differs from OpenAI's service, is in docs/compatibility.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.actions import Audio, Configure, Finalize
from wirescribe.api.compat.actions import Parsed, new_id
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.session_options import OptionError
from wirescribe.asr.types import Word
from wirescribe.streaming.events import Event, SessionConfig, SpeechStarted, TranscriptChanged, UtteranceEnded

# The audio formats a transcription session takes: name → (decoder format, sample rate, bytes/s).
AUDIO_FORMATS = {
    "pcm16": ("pcm16", 24000, 48000),
    "g711_ulaw": ("mulaw", 8000, 8000),
    "g711_alaw": ("alaw", 8000, 8000),
}
GA_FORMAT_TYPES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}
DEFAULT_SILENCE_MS = 500  # OpenAI's default silence_duration_ms
DEFAULT_PREFIX_MS = 300
MIN_COMMIT_MS = 100  # OpenAI refuses to commit less
TRANSCRIPTION_EVENTS = (
    "session.update", "transcription_session.update", "input_audio_buffer.append",
    "input_audio_buffer.commit", "input_audio_buffer.clear",
)  # fmt: skip

# Our error codes → (OpenAI error type, OpenAI error code, close code or None to go on).
ERRORS: dict[str, tuple[str, str]] = {
    "bad_request": ("invalid_request_error", "invalid_value"),
    "unauthorized": ("invalid_request_error", "invalid_api_key"),
    "bad_message": ("invalid_request_error", "invalid_value"),
    "bad_audio": ("invalid_request_error", "invalid_audio"),
    "too_large": ("invalid_request_error", "payload_too_large"),
    "busy": ("server_error", "server_busy"),
    "timeout": ("invalid_request_error", "session_expired"),
    "internal": ("server_error", "server_error"),
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
    """``type`` None: the client commits; else ``server_vad`` (or ``semantic_vad``, served as
    server VAD) with its silence and prefix padding."""

    type: str | None = "server_vad"
    silence_ms: int = DEFAULT_SILENCE_MS
    prefix_ms: int = DEFAULT_PREFIX_MS
    threshold: float = 0.5

    def as_json(self) -> dict[str, Any] | None:
        if self.type is None:
            return None
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


def _token_query(query: Mapping[str, str]) -> None:
    """``intent`` must be ``transcription`` when given; ``model`` is taken as a hint."""
    intent = query.get("intent")
    if intent is not None and intent != "transcription":
        raise RealtimeError(
            f"intent {session_options.shown(intent)} is not served here: only transcription sessions"
            " (intent=transcription)", param="intent",
        )  # fmt: skip


class RealtimeTranscription:
    """One connection's translator. ``languages``: the model's; ``default_language``: what
    ``language`` means when the client names none."""

    def __init__(
        self,
        *,
        beta: bool,
        model_name: str,
        languages: Sequence[str],
        default_language: str | None,
        session_id: str | None = None,
    ) -> None:
        self.beta = beta
        self.session_id = session_id or new_id("sess_", 24)
        self._server_model = model_name
        self._languages = languages
        self._default_language = default_language
        self.settings = Settings(language=default_language)
        self._bytes = 0  # audio bytes appended in the session's format
        self._bytes_at_turn = 0  # … when the current turn began (for commit's size check)
        self._committed = ""  # the session's committed text so far
        self._item: str | None = None  # the open turn's item id
        self._item_text = ""  # what its deltas carried
        self._previous_item: str | None = None
        self._clear_at = 0.0  # seconds: words before this were cleared
        self._commit_pending = 0  # commits asked for and not yet answered
        self._speaking = False  # an utterance of the session is open

    # -- the connection ----------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        *,
        model_name: str,
        languages: Sequence[str],
        default_language: str | None,
    ) -> RealtimeTranscription:
        """The translator for a new connection; :class:`RealtimeError` for a query this server
        does not serve (then sent as ``error`` before closing with 1008)."""
        _token_query(query)
        beta = "realtime=v1" in headers.get("openai-beta", "").replace(" ", "")
        return cls(beta=beta, model_name=model_name, languages=languages, default_language=default_language)

    @property
    def decoder_format(self) -> tuple[str, int]:
        """(format, sample rate) for the session's decoder."""
        fmt, rate, _ = AUDIO_FORMATS[self.settings.audio_format]
        return fmt, rate

    @property
    def config(self) -> SessionConfig:
        s = self.settings
        return SessionConfig(
            language=s.language, keyterms=s.keywords, prompt=s.prompt,
            endpointing_ms=min(max(s.turn.silence_ms, 100), 5000),
        )  # fmt: skip

    @property
    def audio_seconds(self) -> float:
        return self._bytes / AUDIO_FORMATS[self.settings.audio_format][2]

    def opening(self) -> list[dict[str, Any]]:
        """What the server sends first: ``session.created`` (``transcription_session.created``)."""
        kind = "transcription_session.created" if self.beta else "session.created"
        return [self._message(kind, session=self._session_json(self.beta))]

    # -- client messages ---------------------------------------------------------------------

    def client_text(self, text: str) -> Parsed:
        """One client text frame. An error is a reply (``error``), and the session goes on."""
        try:
            return self._client_text(text)
        except RealtimeError as e:
            return Parsed(replies=(self.error_message(e),))

    def client_binary(self, data: bytes) -> Parsed:
        del data
        err = RealtimeError("binary frames are not part of this protocol: send input_audio_buffer.append")
        return Parsed(replies=(self.error_message(err),))

    def _client_text(self, text: str) -> Parsed:
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise RealtimeError(
                "The server had trouble parsing the event: it is not valid JSON.", code="invalid_json"
            ) from e
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise RealtimeError('events must be JSON objects with a "type"', param="type")
        event_id = msg.get("event_id") if isinstance(msg.get("event_id"), str) else None
        kind = msg["type"]
        try:
            if kind == "input_audio_buffer.append":
                return self._append(msg.get("audio"))
            if kind == "input_audio_buffer.commit":
                return self._commit()
            if kind == "input_audio_buffer.clear":
                return self._clear()
            if kind in ("session.update", "transcription_session.update"):
                return self._update(msg.get("session"), beta=kind.startswith("transcription_session"))
        except RealtimeError as e:
            e.event_id = e.event_id or event_id
            raise
        shown = session_options.shown(kind)
        if kind.startswith(("response.", "conversation.", "output_audio_buffer.")):
            raise RealtimeError(f"{shown} is not supported in a transcription session", param="type",
                                event_id=event_id)  # fmt: skip
        raise RealtimeError(
            f"Invalid value: {shown}. Supported values are: {', '.join(TRANSCRIPTION_EVENTS)}.",
            param="type", event_id=event_id,
        )  # fmt: skip

    def _append(self, audio: object) -> Parsed:
        if not isinstance(audio, str):
            raise RealtimeError("audio must be a base64 string", param="audio")
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as e:
            raise RealtimeError("audio is not valid base64", param="audio") from e
        self._bytes += len(data)
        return Parsed(actions=(Audio(data),)) if data else Parsed()

    def _commit(self) -> Parsed:
        bytes_per_s = AUDIO_FORMATS[self.settings.audio_format][2]
        have_ms = (self._bytes - self._bytes_at_turn) * 1000 / bytes_per_s
        if have_ms < MIN_COMMIT_MS and not self._item_text:
            raise RealtimeError(
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_MS}ms of audio, but buffer only has {have_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )  # fmt: skip
        self._commit_pending += 1
        return Parsed(actions=(Finalize(),))

    def _clear(self) -> Parsed:
        """Drop the uncommitted turn: its text so far, and words of audio appended before now."""
        self._clear_at = self.audio_seconds
        self._item_text = ""
        self._bytes_at_turn = self._bytes
        return Parsed(replies=(self._message("input_audio_buffer.cleared"),))

    def _update(self, session: object, *, beta: bool) -> Parsed:
        if not isinstance(session, dict):
            raise RealtimeError("session must be an object", param="session")
        settings = self._beta_update(session) if beta else self._ga_update(session)
        if settings.audio_format != self.settings.audio_format and self._bytes:
            raise RealtimeError("the audio format cannot change once audio was appended",
                                param="session.audio.input.format")  # fmt: skip
        before = self.config
        self.settings = settings
        kind = "transcription_session.updated" if beta else "session.updated"
        reply = self._message(kind, session=self._session_json(beta))
        actions = (Configure(self.config),) if self.config != before else ()
        return Parsed(actions=actions, replies=(reply,))

    def _ga_update(self, session: dict[str, Any]) -> Settings:
        kind = session.get("type", "transcription")
        if kind != "transcription":
            raise RealtimeError(
                f"session type {session_options.shown(str(kind))} is not served here: only"
                " \"transcription\"", param="session.type",
            )  # fmt: skip
        s = self.settings
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
            s = replace(s, turn=self._turn(inp["turn_detection"], "session.audio.input.turn_detection"))
        if "noise_reduction" in inp:
            s = replace(s, noise_reduction=inp["noise_reduction"])
        return s

    def _beta_update(self, session: dict[str, Any]) -> Settings:
        s = self.settings
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
            s = replace(s, turn=self._turn(session["turn_detection"], "session.turn_detection"))
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
                lang = value["language"] or self._default_language  # "" or null: the model's own
                s = replace(s, language=session_options.language(lang, self._languages) if lang else None)
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

    def _turn(self, value: object, param: str) -> TurnDetection:
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
        turn = TurnDetection(
            type=kind,
            silence_ms=ms.get("silence_duration_ms", DEFAULT_SILENCE_MS),
            prefix_ms=ms.get("prefix_padding_ms", DEFAULT_PREFIX_MS),
        )
        threshold = value.get("threshold")
        if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
            turn = replace(turn, threshold=float(threshold))
        return turn

    # -- session events ----------------------------------------------------------------------

    @property
    def turn_open(self) -> bool:
        """An utterance of the session is open: a commit now is answered when it ends."""
        return self._speaking

    @property
    def server_vad(self) -> bool:
        return self.settings.turn.type is not None

    def event(self, event: Event) -> list[dict[str, Any]]:
        """The messages for one session event."""
        if isinstance(event, SpeechStarted):
            self._speaking = True
            return self._open(event.at) if self._item is None else []
        if isinstance(event, TranscriptChanged):
            return self._grow(event)
        if isinstance(event, UtteranceEnded):
            return self._utterance_ended(event)
        return []

    def _open(self, at: float) -> list[dict[str, Any]]:
        self._item = new_id("item_")
        if not self.server_vad:
            return []
        start_ms = max(0, round(at * 1000) - self.settings.turn.prefix_ms)
        return [
            self._message("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=self._item)
        ]

    def _grow(self, event: TranscriptChanged) -> list[dict[str, Any]]:
        growth = (
            event.committed[len(self._committed) :] if event.committed.startswith(self._committed) else ""
        )
        self._committed = event.committed
        text = self._kept_text(growth, event.words)
        if not text.strip():
            return []
        out = (
            self._open(event.words[0].start if event.words else event.audio_seconds)
            if self._item is None
            else []
        )
        if not self._item_text:
            text = text.lstrip()
        self._item_text += text
        assert self._item is not None
        delta = "conversation.item.input_audio_transcription.delta"
        out.append(self._message(delta, item_id=self._item, content_index=0, delta=text))
        return out

    def _kept_text(self, growth: str, words: Sequence[Word]) -> str:
        """``growth`` without the words of audio the client cleared."""
        if not words or words[0].start >= self._clear_at:
            return growth
        return "".join(w.text for w in words if w.start >= self._clear_at)

    def _utterance_ended(self, event: UtteranceEnded) -> list[dict[str, Any]]:
        self._speaking = False
        if self._commit_pending:  # the commit's finalize ended it (or a pause just before)
            self._commit_pending -= 1
            return self._complete(event.start, event.end, stopped=self.server_vad and event.reason == "pause")
        if not self.server_vad:
            return []  # the client commits; the turn goes on
        if self._item is None and not event.text.strip():
            return []
        return self._complete(event.start, event.end, stopped=True)

    def finalized(self) -> list[dict[str, Any]]:
        """Answer a finalize the session carried out without ending an utterance (none was open,
        or it ended by a pause first); nothing when an utterance's end answered it already."""
        if not self._commit_pending:
            return []
        self._commit_pending -= 1
        return self._complete(self.audio_seconds, self.audio_seconds, stopped=False)

    def final(self) -> list[dict[str, Any]]:
        """The session ended (the server stopped it): a turn with text still open is completed."""
        if not self._item_text:
            return []
        return self._complete(self.audio_seconds, self.audio_seconds, stopped=False)

    def _complete(self, start: float, end: float, *, stopped: bool) -> list[dict[str, Any]]:
        item = self._item or new_id("item_")
        out: list[dict[str, Any]] = []
        if stopped:
            out.append(self._message("input_audio_buffer.speech_stopped", audio_end_ms=round(end * 1000),
                                     item_id=item))  # fmt: skip
        out.append(
            self._message("input_audio_buffer.committed", item_id=item, previous_item_id=self._previous_item)
        )
        user_item = {
            "id": item, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }  # fmt: skip
        if self.beta:
            out.append(
                self._message(
                    "conversation.item.created", previous_item_id=self._previous_item, item=user_item
                )
            )
        else:
            out.append(
                self._message("conversation.item.added", previous_item_id=self._previous_item, item=user_item)
            )
            out.append(
                self._message("conversation.item.done", previous_item_id=self._previous_item, item=user_item)
            )
        out.append(self._message(
            "conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
            transcript=self._item_text.strip(),
            usage={"type": "duration", "seconds": round(max(0.0, end - start), 3)},
        ))  # fmt: skip
        self._previous_item, self._item, self._item_text = item, None, ""
        self._bytes_at_turn = self._bytes
        return out

    # -- errors ------------------------------------------------------------------------------

    def error_message(self, error: ProtocolError) -> dict[str, Any]:
        """``error`` in OpenAI's shape for one of our errors (or a :class:`RealtimeError`)."""
        if isinstance(error, RealtimeError):
            kind, code, param, event_id = error.kind, error.openai_code, error.param, error.event_id
        else:
            kind, code = ERRORS.get(error.code, ("server_error", "server_error"))
            param, event_id = None, None
        body = {"type": kind, "code": code, "message": error.message, "param": param, "event_id": event_id}
        return self._message("error", error=body)

    # -- helpers -----------------------------------------------------------------------------

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": new_id("event_"), **fields}

    def _session_json(self, beta: bool) -> dict[str, Any]:
        s = self.settings
        transcription = {"model": s.model, "language": s.language, "prompt": s.prompt}
        if beta:
            return {
                "id": self.session_id, "object": "realtime.transcription_session", "expires_at": 0,
                "input_audio_format": s.audio_format, "input_audio_transcription": transcription,
                "turn_detection": s.turn.as_json(), "input_audio_noise_reduction": s.noise_reduction,
                "include": None, "modalities": ["text"], "client_secret": None,
            }  # fmt: skip
        fmt = {"pcm16": {"type": "audio/pcm", "rate": 24000}, "g711_ulaw": {"type": "audio/pcmu"},
               "g711_alaw": {"type": "audio/pcma"}}[s.audio_format]  # fmt: skip
        return {
            "type": "transcription", "id": self.session_id, "object": "realtime.transcription_session",
            "expires_at": 0, "include": None,
            "audio": {"input": {
                "format": fmt, "transcription": {**transcription, "keywords": list(s.keywords)},
                "turn_detection": s.turn.as_json(), "noise_reduction": s.noise_reduction,
            }},
        }  # fmt: skip
