"""Speech recognition: the faster-whisper model, its adapter and the scheduler in front of it."""
