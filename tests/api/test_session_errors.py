"""A session's errors reach the wire through one mapping: the streaming layer raises
:class:`SessionError` (a code and a message, nothing of WebSocket close codes), and
:meth:`ProtocolError.of` gives it the protocol's close code."""

from __future__ import annotations

import asyncio

import pytest

from wirescribe.api.protocol import ProtocolError
from wirescribe.audio.decode import DecodeError, DecoderFailure
from wirescribe.streaming.errors import DecoderStalled, SessionError, decoder_error


@pytest.mark.parametrize(
    ("error", "code", "close"),
    [
        (DecodeError("Invalid data found when processing input"), "bad_audio", 1003),
        (DecoderFailure("ffmpeg was killed (signal 9)"), "internal", 1011),
        (DecoderStalled("the audio decoder did not finish in 10 s"), "internal", 1011),
        (asyncio.TimeoutError(), "internal", 1011),
    ],
    ids=["decode", "failure", "stalled", "timeout"],
)
def test_a_decoder_error_ends_a_session_with_its_close_code(error: Exception, code: str, close: int) -> None:
    session_error = decoder_error(error)
    assert type(session_error) is SessionError  # streaming's own: no close code in it
    wire = ProtocolError.of(session_error)
    assert (wire.code, wire.message, wire.close) == (code, session_error.message, close)


def test_a_protocol_error_is_a_session_error_and_maps_to_itself() -> None:
    error = ProtocolError("too_large", "frame too big")
    assert isinstance(error, SessionError) and ProtocolError.of(error) is error
    assert error.close == 1009
