"""Audio in: ffmpeg decoding, resampling, voice activity, the ffmpeg child process."""
