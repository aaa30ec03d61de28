"""session.py with fake decoders: a hung or failing decoder ends the session, never hangs it."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np
import pytest

from tests.support.sessions import FakeDecoder, run_session
from wirescribe.audio.decode import DecodeError, DecoderFailure, FfmpegStreamDecoder, encode_audio
from wirescribe.streaming.errors import SessionError, decoder_error


def internal(decoder: FakeDecoder) -> SessionError:
    with pytest.raises(SessionError) as info:
        asyncio.run(run_session(decoder))
    assert info.value.code == "internal", info.value  # close 1011: tests/api/test_session_errors.py
    assert decoder.aclosed or decoder.hang_feed or decoder.hang_close
    return info.value


def test_a_healthy_decoder_gives_a_final() -> None:
    final = asyncio.run(run_session(FakeDecoder()))
    assert final.text == "hello" and final.audio_seconds == pytest.approx(1.0)


def test_decoder_not_taking_input_is_internal() -> None:
    assert "taking input" in internal(FakeDecoder(hang_feed=True)).message


def test_decoder_not_closing_is_internal() -> None:
    assert "taking input" in internal(FakeDecoder(hang_close=True)).message


def test_decoder_not_finishing_is_internal() -> None:
    decoder = FakeDecoder(hang_finish=True)
    assert "did not finish" in internal(decoder).message
    assert decoder.aclosed  # the session reaps it (kills ffmpeg) on the way out


def test_decoder_failure_while_feeding_is_internal() -> None:
    internal(FakeDecoder(feed_error=DecoderFailure("ffmpeg was killed (signal 9)")))


def test_decoder_failure_while_decoding_is_internal() -> None:
    internal(FakeDecoder(iter_error=DecoderFailure("ffmpeg was killed (signal 9)")))


def test_bad_audio_stays_bad_audio() -> None:
    with pytest.raises(SessionError) as info:
        asyncio.run(run_session(FakeDecoder(feed_error=DecodeError("f32 audio contains NaN"))))
    assert info.value.code == "bad_audio"


def test_eof_before_any_audio_is_an_empty_final() -> None:
    """ffmpeg fails on an empty input; with no byte fed that is no audio, not bad audio."""
    decoder = FakeDecoder(iter_error=DecodeError("pipe:0: Invalid data found when processing input"))
    final = asyncio.run(run_session(decoder, audio_seconds=0))
    assert final.text == "" and final.audio_seconds == 0


def test_bad_audio_quotes_ffmpeg_without_memory_addresses() -> None:
    error = decoder_error(
        DecodeError("[in#0 @ 0x5610f2860f80] Error opening input: Invalid data; [aist#0:0 @ 0x7f]")
    )
    assert error.code == "bad_audio"
    assert "0x" not in error.message and "Error opening input: Invalid data" in error.message


def run_on(loop_kind: str, main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if loop_kind == "uvloop":  # what uvicorn runs the server on when uvloop is installed
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()
    else:
        asyncio.run(main())


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_ffmpeg_killed_by_a_signal_is_a_decoder_failure(
    loop_kind: str, joined_speech: tuple[np.ndarray, str]
) -> None:
    """A real ffmpeg, SIGKILLed: feeding and reading both say DecoderFailure (not the client's
    DecodeError), whether the write or the read notices first."""
    webm = encode_audio(joined_speech[0][: 16000 * 4], "webm")

    async def main() -> None:
        for reader_first in (True, False):
            decoder = await FfmpegStreamDecoder.start()

            async def read(d: FfmpegStreamDecoder = decoder) -> None:
                async for _ in d:
                    pass

            reading = asyncio.create_task(read()) if reader_first else None
            await decoder.feed(webm[:4000])
            os.kill(decoder.pid, signal.SIGKILL)
            await asyncio.sleep(0.2)
            with pytest.raises(DecoderFailure, match="signal 9"):
                for i in range(4000, len(webm), 4000):
                    await decoder.feed(webm[i : i + 4000])
            with pytest.raises(DecoderFailure, match="signal 9"):
                await (reading if reading is not None else read())
            await decoder.aclose()

    run_on(loop_kind, main)
