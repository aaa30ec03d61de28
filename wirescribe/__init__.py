"""wirescribe: real-time speech-to-text over WebSocket with faster-whisper.

The pipeline, one subpackage a step::

    socket -> audio (decode, VAD) -> streaming (policy, session) -> asr (scheduler, model)
                                       api (app, WebSocket edge, routes)   cli (tts, stt, stream)
"""

__version__ = "0.2.0"
