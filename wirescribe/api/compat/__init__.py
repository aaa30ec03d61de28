"""Other vendors' live protocols over the same session: OpenAI Realtime transcription
(``/v1/realtime``, :mod:`.openai_realtime`) and Deepgram live (``/v1/listen``,
:mod:`.deepgram_live`).

Each module here is pure: it reads a connection's query and headers into the session's format,
sample rate and :class:`~wirescribe.streaming.events.SessionConfig`, turns a client's messages
into :class:`~.actions.Action` s, and the session's events, final transcript and errors into
that vendor's JSON. No socket, no streaming logic: what is committed, when an utterance starts
and ends, is decided once, by the session every protocol shares (docs/compatibility.md).
"""
