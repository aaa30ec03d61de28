"""The one place where a decoder's failure becomes what a client is told.

Three surfaces meet decoder errors — the live session (feeding, decoding, flushing), the
WebSocket edge (ffmpeg failing to start) and the file upload endpoint — and each used to decide
on its own whether the fault was the client's, what to say, and what to hide. Here:

* :class:`~wirescribe.audio.decode.DecodeError` — the client's audio cannot be decoded:
  ``bad_audio`` (WebSocket close 1003, HTTP 400), quoting ffmpeg's reason.
* :class:`~wirescribe.audio.decode.DecoderFailure` (ffmpeg missing or killed),
  :class:`DecoderStalled` and :class:`asyncio.TimeoutError` (ffmpeg hung): the server's fault,
  ``internal`` (1011, HTTP 500).

ffmpeg's words are passed on, but not the server's insides: memory addresses
(``[in#0 @ 0x5610f2860f80]`` → ``[in#0]``) and file paths (an upload's temporary copy becomes
"the file"; any other absolute path, "<path>") are taken out.

A session that must end raises :class:`SessionError` (a code and a message): the streaming
layer knows nothing of the wire. The WebSocket edge maps it onto the protocol's error and close
code (``api/protocol.py``: :meth:`ProtocolError.of`, whose class is a :class:`SessionError`).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wirescribe.audio.decode import DecodeError, DecoderFailure

BAD_AUDIO = "bad_audio"
INTERNAL = "internal"
TAKING_INPUT = "the audio decoder stopped taking input"

_ADDRESS = re.compile(r"\s*@\s*0x[0-9a-fA-F]+")  # ffmpeg's log context: "[in#0 @ 0x55…]"
_BARE_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{6,}\b")
# An absolute path (optionally as an ffmpeg "file:" URL) that starts a word: not the "/" in
# "aost#0:0/pcm_f32le", "N/A" or "1/2". It ends at whitespace, a quote, ":", ";" or ",".
_PATH = re.compile(r"(?<![\w.#:/-])(?:file:)?/[^\s/'\":;,()\[\]]+(?:/[^\s/'\":;,()\[\]]*)*")


class SessionError(Exception):
    """A live session cannot go on; the client is told ``code`` (``bad_audio``: its audio;
    ``internal``: the server's fault) and ``message`` (one line, nothing of the server's insides)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DecoderStalled(Exception):
    """The decoder stopped answering (ffmpeg hung: its stdin pipe full, or it never exits)."""


@dataclass(frozen=True)
class DecoderProblem:
    """A decoder error, classified and cleaned for the client."""

    code: str  # BAD_AUDIO: the client's audio; INTERNAL: the server's decoder
    reason: str  # what went wrong, in the decoder's words, nothing of the server's insides in it

    @property
    def client_fault(self) -> bool:
        return self.code == BAD_AUDIO

    @property
    def message(self) -> str:
        """One line for the client (a surface may put ``reason`` in words of its own)."""
        if self.client_fault:
            return f"cannot decode the audio: {self.reason}"
        return self.reason

    @property
    def http_status(self) -> int:
        return 400 if self.client_fault else 500

    def session_error(self) -> SessionError:
        """The error that ends a live session (the edge closes ``bad_audio`` with 1003,
        ``internal`` with 1011)."""
        return SessionError(self.code, self.message)


DECODER_ERRORS = (DecodeError, DecoderFailure, DecoderStalled)
"""The decoder's own errors: ``except DECODER_ERRORS as e: raise decoder_error(e) from e``.
:func:`decoder_problem` also takes the :class:`asyncio.TimeoutError` of a deadline put on a
decoder call — left out here, where it would catch any other timeout too."""


def decoder_problem(error: BaseException, *, paths: Iterable[str | Path] = ()) -> DecoderProblem:
    """Classify ``error`` (one of :data:`DECODER_ERRORS`, or the timeout of a decoder call) and
    word it for the client.

    ``paths``: files the decoder read (an upload's temporary copy), named "the file".
    Anything else is a bug, not a decoder error: ``TypeError``, so it is not hidden as one."""
    if isinstance(error, DecodeError):
        return DecoderProblem(BAD_AUDIO, clean_reason(str(error), paths))
    if isinstance(error, DecoderFailure):
        return DecoderProblem(INTERNAL, f"the audio decoder failed: {clean_reason(str(error), paths)}")
    if isinstance(error, DecoderStalled):
        return DecoderProblem(INTERNAL, clean_reason(str(error), paths) or TAKING_INPUT)
    if isinstance(error, asyncio.TimeoutError):  # a deadline on feed() or close(): stdin is stuck
        return DecoderProblem(INTERNAL, TAKING_INPUT)
    raise TypeError(f"not a decoder error: {type(error).__name__}: {error}")


def decoder_error(error: BaseException, *, paths: Iterable[str | Path] = ()) -> SessionError:
    """:func:`decoder_problem` as the :class:`SessionError` that ends a live session."""
    return decoder_problem(error, paths=paths).session_error()


def clean_reason(text: str, paths: Iterable[str | Path] = ()) -> str:
    """``text`` without memory addresses and file paths (``paths`` and temporary files become
    "the file", other absolute paths "<path>")."""
    for path in sorted({str(p) for p in paths}, key=len, reverse=True):  # longest first: no partial hits
        if path:
            text = text.replace(f"file:{path}", "the file").replace(path, "the file")
    text = _ADDRESS.sub("", text)
    text = _BARE_ADDRESS.sub("<address>", text)
    return _PATH.sub(_path_word, text).strip()


def _path_word(match: re.Match[str]) -> str:
    path = match.group(0).removeprefix("file:")
    return "the file" if any(path.startswith(d + "/") for d in _temp_dirs()) else "<path>"


def _temp_dirs() -> tuple[str, ...]:
    return tuple({tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm"})
