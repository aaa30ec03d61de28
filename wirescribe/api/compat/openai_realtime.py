"""OpenAI Realtime transcription sessions (``/v1/realtime``), as a pure translator.

Both dialects the official clients speak: the GA one (``session.update`` with
``session.type = "transcription"``, answered by ``session.created``/``session.updated``) and the
beta one (header ``OpenAI-Beta: realtime=v1``: ``transcription_session.update``/``.created``/
``.updated``, flat ``input_audio_format``). A connection answers in the dialect of its header
and of each update it gets. The settings an update may carry, and the session object echoed
back, are read in :mod:`.openai_session`; this module translates the shared session's events.

One *item* is one user turn. With ``server_vad`` turn detection (the default) a turn is an
utterance of the shared session, and its item id is derived from the utterance's id:
``input_audio_buffer.speech_started`` when it opens, the committed text as it grows as
``conversation.item.input_audio_transcription.delta`` events (append-only, so only committed
text: the tentative tail could still change), and at its end ``speech_stopped``, ``committed``,
the item, and ``…transcription.completed`` with the turn's text. With ``turn_detection: null``
the client decides: deltas stream the same way, and an item ends only at
``input_audio_buffer.commit`` (the session's ``finalize``). A commit is answered by the
utterance end it caused (reason ``finalize``) or, when no utterance was open, by the session's
:class:`~wirescribe.streaming.events.Finalized` (``closed`` None): the translator counts no
pending commits and keeps no flag for an open turn. With ``semantic_vad`` an item is a turn of
the end-of-turn model instead, which :class:`~.openai_session.TurnItems` turns into the same
utterance events, numbered by turn. What the subset is, and what differs from
OpenAI's service, is in docs/compatibility.md.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from wirescribe.api import session_options
from wirescribe.api.actions import Audio, Configure, Finalize
from wirescribe.api.compat.actions import Parsed, new_id
from wirescribe.api.compat.openai_session import (
    AUDIO_FORMATS,
    DEFAULT_PREFIX_MS,
    DEFAULT_SILENCE_MS,
    GA_FORMAT_TYPES,
    RealtimeError,
    Settings,
    SettingsReader,
    TurnDetection,
    TurnItems,
    check_token_query,
    session_json,
)
from wirescribe.api.language_choice import Choice, UnknownModelName, choose_openai, known_languages
from wirescribe.api.protocol import ProtocolError
from wirescribe.api.session_options import OptionError
from wirescribe.asr.types import ModelBackend, Word
from wirescribe.audio.vad import VadOptions
from wirescribe.streaming.events import (
    CloseReason,
    Event,
    Finalized,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    UtteranceEnded,
)

MIN_COMMIT_MS = 100  # OpenAI refuses to commit less
TRANSCRIPTION_EVENTS = (
    "session.update", "transcription_session.update", "input_audio_buffer.append",
    "input_audio_buffer.commit", "input_audio_buffer.clear",
)  # fmt: skip

# Our error codes → (OpenAI error type, OpenAI error code).
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


class RealtimeTranscription:
    """One connection's translator. ``languages``: the model's; ``default_language``: what
    ``language`` means when the client names none.

    What it keeps is the protocol's bookkeeping, none of it the session's turns (which utterance
    is open, whether a commit is pending: those come with each event):

    * byte counts (``audio_seconds``; the input buffer's size for commit's 100 ms check);
    * the session's committed text as last seen: the cursor from which the next delta grows;
    * OpenAI's *input audio buffer* as text — what the deltas since the last commit or clear
      carried. In manual mode the client bounds it (it spans utterances); in every mode the
      completed transcript must equal the joined deltas, which a clear would break if the
      transcript were rebuilt from the utterance;
    * the clear offset (words of audio before it are dropped);
    * the conversation chain: the previous item's id, and how many items there were (naming
      the items that are not an utterance: manual-mode turns, a commit with nothing open).
    """

    def __init__(
        self,
        *,
        beta: bool,
        model_name: str,
        languages: Sequence[str],
        default_language: str | None,
        session_id: str | None = None,
        models: ModelBackend | None = None,
    ) -> None:
        self.beta = beta
        self.session_id = session_id or new_id("sess_", 24)
        self._server_model = model_name
        self._models = models  # the transcription model chooses among them (choose_openai)
        languages = known_languages(models) if models is not None else languages
        self._reader = SettingsReader(languages, default_language)
        self.settings = Settings(language=default_language)
        self._choice: Choice | None = None if models is None else choose_openai(models, None, None)
        self._bytes = 0  # audio bytes appended in the session's format
        self._buffer_bytes = 0  # … when the input buffer was last committed or cleared
        self._committed = ""  # the session's committed text as last seen (the delta cursor)
        self._buffer = ""  # what the input buffer's deltas carried since its last commit or clear
        self._clear_at = 0.0  # seconds: words before this were cleared
        self._previous_item: str | None = None
        self._items = 0  # items completed so far on this connection
        self._item_prefix = new_id("item_", 12)
        self._turns = TurnItems()  # semantic_vad's turns as items

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
        models: ModelBackend | None = None,
    ) -> RealtimeTranscription:
        """The translator for a new connection; :class:`RealtimeError` for a query this server
        does not serve (then sent as ``error`` before closing with 1008)."""
        check_token_query(query)
        beta = "realtime=v1" in headers.get("openai-beta", "").replace(" ", "")
        return cls(beta=beta, model_name=model_name, languages=languages, default_language=default_language,
                   models=models)  # fmt: skip

    @property
    def decoder_format(self) -> tuple[str, int]:
        """(format, sample rate) for the session's decoder."""
        fmt, rate, _ = AUDIO_FORMATS[self.settings.audio_format]
        return fmt, rate

    @property
    def config(self) -> SessionConfig:
        s, c = self.settings, self._choice
        return s.turn.apply(SessionConfig(
            language=c.language if c else s.language, model=c.name if c else None, keyterms=s.keywords,
            prompt=s.prompt, endpointing_ms=min(max(s.turn.silence_ms, 100), 5000),
        ))  # fmt: skip

    @property
    def vad_options(self) -> VadOptions:
        """The session's voice activity: ``turn_detection.threshold`` is the speech probability
        that starts speech (OpenAI's is its own model's, here Silero's: same scale, 0–1, and the
        same default 0.5). Without turn detection the client commits, and the default holds."""
        turn = self.settings.turn
        return VadOptions.at(turn.threshold) if turn.type is not None else VadOptions()

    @property
    def audio_seconds(self) -> float:
        return self._bytes / AUDIO_FORMATS[self.settings.audio_format][2]

    @property
    def server_vad(self) -> bool:
        return self.settings.turn.type is not None

    def opening(self) -> list[dict[str, Any]]:
        """What the server sends first: ``session.created`` (``transcription_session.created``)."""
        kind = "transcription_session.created" if self.beta else "session.created"
        return [self._message(kind, session=session_json(self.settings, self.session_id, beta=self.beta))]

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
        """The session's ``finalize``; its answer comes with the events it causes (no record of
        it is kept here)."""
        bytes_per_s = AUDIO_FORMATS[self.settings.audio_format][2]
        have_ms = (self._bytes - self._buffer_bytes) * 1000 / bytes_per_s
        if have_ms < MIN_COMMIT_MS and not self._buffer:
            raise RealtimeError(
                "Error committing input audio buffer: buffer too small. Expected at least"
                f" {MIN_COMMIT_MS}ms of audio, but buffer only has {have_ms:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )  # fmt: skip
        return Parsed(actions=(Finalize(),))

    def _clear(self) -> Parsed:
        """Empty the input buffer: its text so far, and words of audio appended before now."""
        self._clear_at = self.audio_seconds
        self._buffer = ""
        self._buffer_bytes = self._bytes
        return Parsed(replies=(self._message("input_audio_buffer.cleared"),))

    def _update(self, session: object, *, beta: bool) -> Parsed:
        settings = self._reader.update(self.settings, session, beta=beta)
        if self._models is not None:
            try:  # the model and language, checked together; a language any loaded model knows passed
                self._choice = choose_openai(self._models, settings.model, settings.language)
            except OptionError as e:
                where = "model" if isinstance(e, UnknownModelName) else "language"
                raise RealtimeError(str(e), param=f"session.audio.input.transcription.{where}") from e
        if settings.audio_format != self.settings.audio_format and self._bytes:
            raise RealtimeError("the audio format cannot change once audio was appended",
                                param="session.audio.input.format")  # fmt: skip
        before = self.config
        self.settings = settings
        kind = "transcription_session.updated" if beta else "session.updated"
        reply = self._message(kind, session=session_json(settings, self.session_id, beta=beta))
        actions = (Configure(self.config),) if self.config != before else ()
        return Parsed(actions=actions, replies=(reply,))

    # -- session events ----------------------------------------------------------------------

    def event(self, event: Event) -> list[dict[str, Any]]:
        """The messages for one session event."""
        if self.settings.turn.semantic:  # an item is a turn: its events as an utterance's
            as_utterance = self._turns.utterance_event(event)
            if as_utterance is None:
                return []
            event = as_utterance
        if isinstance(event, SpeechStarted):
            if not self.server_vad:
                return []
            start_ms = max(0, round(event.at * 1000) - self.settings.turn.prefix_ms)
            item = self._utterance_item(event.utterance)
            return [self._message("input_audio_buffer.speech_started", audio_start_ms=start_ms, item_id=item)]
        if isinstance(event, TranscriptChanged):
            return self._grow(event)
        if isinstance(event, UtteranceEnded):
            return self._utterance_ended(event)
        if isinstance(event, Finalized) and event.closed is None:
            # A commit that found no utterance open: the input buffer (text of utterances that
            # pauses ended, in manual mode; else nothing) becomes an item, empty or not.
            return self._complete(self._buffer_item(), self.audio_seconds, self.audio_seconds, stopped=False)
        return []  # a finalize that ended an utterance: its UtteranceEnded answered the commit

    def _utterance_item(self, utterance: int) -> str:
        """The item of a server-VAD turn: named by its utterance, so nothing remembers it."""
        return f"{self._item_prefix}_u{utterance}"

    def _buffer_item(self) -> str:
        """The item the input buffer becomes when the client commits it (manual mode, or a
        commit with no utterance open): named by its place in the conversation."""
        return f"{self._item_prefix}_c{self._items}"

    def _grow(self, event: TranscriptChanged) -> list[dict[str, Any]]:
        growth = (
            event.committed[len(self._committed) :] if event.committed.startswith(self._committed) else ""
        )
        self._committed = event.committed
        text = self._kept_text(growth, event.words)
        if not text.strip():
            return []
        if not self._buffer:
            text = text.lstrip()
        self._buffer += text
        item = (
            self._utterance_item(event.utterance)
            if self.server_vad and event.utterance is not None
            else self._buffer_item()
        )
        delta = "conversation.item.input_audio_transcription.delta"
        return [self._message(delta, item_id=item, content_index=0, delta=text)]

    def _kept_text(self, growth: str, words: Sequence[Word]) -> str:
        """``growth`` without the words of audio the client cleared."""
        if not words or words[0].start >= self._clear_at:
            return growth
        return "".join(w.text for w in words if w.start >= self._clear_at)

    def _utterance_ended(self, event: UtteranceEnded) -> list[dict[str, Any]]:
        if self.server_vad:  # a turn is the utterance; a commit (finalize) ending it is no stop
            stopped = event.reason != CloseReason.FINALIZE
            return self._complete(
                self._utterance_item(event.utterance), event.start, event.end, stopped=stopped
            )
        if event.reason == CloseReason.FINALIZE:  # the client's commit ended it
            return self._complete(self._buffer_item(), event.start, event.end, stopped=False)
        return []  # the client commits; the turn goes on

    def final(self) -> list[dict[str, Any]]:
        """The session ended: an input buffer with text the client never committed becomes an
        item (manual mode; with server VAD every utterance's end, the input's, completed it)."""
        if not self._buffer:
            return []
        return self._complete(self._buffer_item(), self.audio_seconds, self.audio_seconds, stopped=False)

    def _complete(self, item: str, start: float, end: float, *, stopped: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if stopped:
            out.append(self._message("input_audio_buffer.speech_stopped", audio_end_ms=round(end * 1000),
                                     item_id=item))  # fmt: skip
        previous = self._previous_item
        out.append(self._message("input_audio_buffer.committed", item_id=item, previous_item_id=previous))
        user_item = {
            "id": item, "object": "realtime.item", "type": "message", "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }  # fmt: skip
        if self.beta:
            out.append(self._message("conversation.item.created", previous_item_id=previous, item=user_item))
        else:
            out.append(self._message("conversation.item.added", previous_item_id=previous, item=user_item))
            out.append(self._message("conversation.item.done", previous_item_id=previous, item=user_item))
        out.append(self._message(
            "conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
            transcript=self._buffer.strip(),
            usage={"type": "duration", "seconds": round(max(0.0, end - start), 3)},
        ))  # fmt: skip
        self._previous_item, self._items = item, self._items + 1
        self._buffer, self._buffer_bytes = "", self._bytes
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

    def _message(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": new_id("event_"), **fields}


__all__ = [
    "AUDIO_FORMATS", "DEFAULT_PREFIX_MS", "DEFAULT_SILENCE_MS", "ERRORS", "GA_FORMAT_TYPES", "MIN_COMMIT_MS",
    "RealtimeError", "RealtimeTranscription", "Settings", "TurnDetection",
]  # fmt: skip
