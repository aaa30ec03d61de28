"""errors.py: every decoder error is classified and worded in one place, without the server's
memory addresses or file paths."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from wirescribe.audio.decode import DecodeError, DecoderFailure
from wirescribe.streaming.errors import (
    DECODER_ERRORS,
    DecoderStalled,
    clean_reason,
    decoder_error,
    decoder_problem,
)


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (DecodeError("Invalid data found when processing input"), "bad_audio", 400),
        (DecoderFailure("ffmpeg was killed (signal 9)"), "internal", 500),
        (DecoderStalled("the audio decoder did not finish in 10 s"), "internal", 500),
        (asyncio.TimeoutError(), "internal", 500),
    ],
    ids=["decode", "failure", "stalled", "timeout"],
)
def test_classification(error: Exception, code: str, status: int) -> None:
    assert isinstance(error, DECODER_ERRORS) != isinstance(error, asyncio.TimeoutError)
    problem = decoder_problem(error)
    assert (problem.code, problem.http_status, problem.client_fault) == (code, status, code == "bad_audio")
    ended = decoder_error(error)  # its close code: tests/api/test_session_errors.py
    assert (ended.code, ended.message) == (code, problem.message)


def test_messages_say_whose_fault_it_is() -> None:
    bad = decoder_problem(DecodeError("moov atom not found"))
    assert bad.reason == "moov atom not found"
    assert bad.message == "cannot decode the audio: moov atom not found"
    assert decoder_problem(DecoderFailure("ffmpeg was killed (signal 9)")).message == (
        "the audio decoder failed: ffmpeg was killed (signal 9)"
    )
    assert "taking input" in decoder_problem(asyncio.TimeoutError()).message
    assert decoder_problem(DecoderStalled("the audio decoder did not finish in 2 s")).message == (
        "the audio decoder did not finish in 2 s"
    )


def test_other_errors_are_not_hidden_as_decoder_errors() -> None:
    with pytest.raises(TypeError):
        decoder_problem(ValueError("a bug"))


def test_memory_addresses_are_stripped() -> None:
    reason = clean_reason(
        "[in#0 @ 0x5610f2860f80] Error opening input: Invalid data; [aist#0:0 @ 0x7f]; at 0x7ffd12345678"
    )
    assert "0x" not in reason
    assert reason.startswith("[in#0] Error opening input: Invalid data; [aist#0:0]")


def test_the_uploaded_file_is_named_not_its_path() -> None:
    path = Path(tempfile.gettempdir()) / "stt-upload-k2j3h4" / "upload"
    error = DecodeError(f"file:{path}: Invalid data found when processing input; {path}: End of file")
    message = decoder_problem(error, paths=[path]).message
    assert str(path) not in message and "stt-upload" not in message
    assert message == (
        "cannot decode the audio: the file: Invalid data found when processing input; the file: End of file"
    )


def test_temporary_and_other_paths_are_stripped_without_being_given() -> None:
    reason = clean_reason(
        "/tmp/stt-upload-abc/upload: Invalid data; cannot run ffmpeg (/opt/venv/bin/ffmpeg): [Errno 2]"
    )
    assert reason == "the file: Invalid data; cannot run ffmpeg (<path>): [Errno 2]"


@pytest.mark.parametrize(
    "text",
    [
        "[aost#0:0/pcm_f32le] Error while filtering: N/A",
        "pipe:0: Invalid data found when processing input",
        "rate 1/2 of 48000 Hz / mono",
    ],
)
def test_text_that_only_looks_like_a_path_stays(text: str) -> None:
    assert clean_reason(text) == text
