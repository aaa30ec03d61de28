"""``/ws/transcribe``: the native protocol (docs/protocol.md) as a dialect of the shared edge.

Everything about the connection (auth, caps, limits, the session, shutdown) is
:mod:`wirescribe.api.edge`'s; this module maps the native protocol's parameters, control
messages and messages (:mod:`wirescribe.api.protocol`) onto it. The version 1.1 additions are
opt-in per connection: ``events=true`` for ``speech_started``/``utterance_end``, ``words=true``
for word lists; a version-1 client gets exactly the version-1 message types. Version 1.2:
``turns=true`` for the turn events (``start_of_turn``, ``eager_end_of_turn``, ``turn_resumed``,
``end_of_turn``), whether or not ``events`` is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import WebSocket

from wirescribe.api import edge, protocol
from wirescribe.api.deps import State
from wirescribe.api.edge import Action, Configure, Dialect, End, Finalize, KeepAlive, Message, SessionSetup
from wirescribe.api.language_choice import LanguageDetected, LanguageReport, choose_native, native_params
from wirescribe.api.protocol import SessionParams
from wirescribe.api.state import AppState
from wirescribe.streaming.events import (
    EagerEndOfTurn,
    Event,
    SessionConfig,
    SpeechStarted,
    TranscriptChanged,
    TurnEnded,
    TurnResumed,
    TurnStarted,
    UtteranceEnded,
)
from wirescribe.streaming.policy import FinalTranscript


class NativeDialect(Dialect):
    name = "native"

    def __init__(self) -> None:
        self._params = SessionParams()
        self._language = LanguageReport()  # the model, language and task chosen (language_choice.py)

    def setup(self, websocket: WebSocket, state: AppState) -> SessionSetup:
        choice, query = choose_native(websocket.query_params, state.transcriber)
        params = protocol.parse_params(query, choice.model.supported_languages, choice.model.default_language)
        self._params = params = native_params(params, choice)
        self._language = LanguageReport(choice)
        return SessionSetup(params.format, params.sample_rate, params.config)

    def greeting(self, session_id: str, state: AppState, setup: SessionSetup) -> Sequence[Message]:
        model = self._params.config.model or state.transcriber.name
        return (self._language.tag(protocol.ready_message(session_id, model, self._params, state.node)),)

    def event(self, event: Event) -> Sequence[Message]:
        if isinstance(event, LanguageDetected):
            return self._language.detected(event)
        if isinstance(event, TranscriptChanged):
            return (protocol.transcript_message(event, event.words if self._params.words else None),)
        if isinstance(event, TurnStarted | EagerEndOfTurn | TurnResumed | TurnEnded):
            return (protocol.turn_message(event, self._params.words),)
        if not self._params.events:
            return ()
        if isinstance(event, SpeechStarted):
            return (protocol.speech_started_message(event),)
        if isinstance(event, UtteranceEnded):
            return (self._language.tag(protocol.utterance_end_message(event)),)
        return ()

    def control(self, text: str, config: SessionConfig, languages: Sequence[str]) -> Sequence[Action]:
        control = protocol.parse_control(text, config, self._language.known(languages))
        if control.kind == "eof":
            return (End(),)
        if control.kind == "finalize":
            return (Finalize(),)
        if control.kind == "configure" and control.config is not None:
            return (Configure(control.config),)
        return (KeepAlive(),)

    def configured(self, config: SessionConfig) -> Sequence[Message]:
        self._language.language = config.language  # what utterance_end and final say from now on
        return (protocol.configured_message(config),)

    def final(self, final: FinalTranscript) -> Sequence[Message]:
        return (self._language.tag(protocol.final_message(final, words=self._params.words)),)


async def transcribe_ws(websocket: WebSocket, state: State) -> None:
    await edge.serve(websocket, state, NativeDialect())
