"""Other vendors' live protocols over the same session: OpenAI Realtime transcription
(``/v1/realtime``, :mod:`.openai_realtime`, its session settings in :mod:`.openai_session`) and
Deepgram live (``/v1/listen``, :mod:`.deepgram_live`).

Each module here is pure: it reads a connection's query and headers into the session's format,
sample rate and :class:`~wirescribe.streaming.events.SessionConfig`, turns a client's messages
into :class:`~.actions.Action` s, and the session's events, final transcript and errors into
that vendor's JSON. No socket, no streaming logic and no turn state: what is committed, when
an utterance starts and ends and which ``finalize`` ended which, is decided once, by the session
every protocol shares, and each event says which utterance it is about (docs/compatibility.md).
"""
