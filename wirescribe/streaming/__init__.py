"""The streaming policy, the live session and file transcription: no sockets inside."""
