"""The command line: tts, stt and stream."""
