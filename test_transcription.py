"""End-to-end check of a running server, as the original design describes it.

    python test_transcription.py [--url ws://localhost:8000/ws/transcribe]

Speaks a sample sentence with the TTS (Piper, offline, by default), streams it to the server as
WebM/Opus in 250 ms slices paced in real time (what a browser's MediaRecorder sends), and checks
that the final transcript matches the sentence: word error rate at most ``--max-wer``. Exit 0 on
PASS, 1 on FAIL with a one-line reason.

Under pytest the same check runs against a server the test starts itself on a free port.
Importing this file does nothing but define things.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from wirescribe.cli.tts import ENGINES, TtsError, TtsOptions, synthesize
from wirescribe.client import ClientError, stream, webm_slices
from wirescribe.wer import word_error_rate

DEFAULT_URL = "ws://localhost:8000/ws/transcribe"
SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. "
    "Speech recognition turns spoken words into written text in real time."
)
MAX_WER = 0.25

if TYPE_CHECKING:  # pytest is a development tool (requirements-dev.txt), not the check's
    import pytest

Test = TypeVar("Test", bound=Callable[..., None])


@dataclass(frozen=True)
class CheckResult:
    """What one check saw: the transcript, its word error rate and the verdict."""

    passed: bool
    reason: str  # one line: why it failed, or a summary when it passed
    transcript: str = ""
    wer: float = 1.0
    audio_seconds: float = 0.0
    final_after_eof: float | None = None  # seconds from eof to the final message


def run_check(
    url: str,
    text: str = SAMPLE_TEXT,
    *,
    engine: str = "piper",
    max_wer: float = MAX_WER,
    realtime: bool = True,
) -> CheckResult:
    """Speak ``text``, stream it to ``url`` and compare the final transcript with it.

    Raises :class:`ws_client.ClientError` when no server answers and :class:`tts.TtsError`
    when the speech cannot be made; every other failure is a failed :class:`CheckResult`.
    """
    audio = synthesize(text, TtsOptions(engine=engine)).at_16k()
    result = asyncio.run(stream(url, webm_slices(audio), interval=0.25 if realtime else None))
    seconds = len(audio) / 16000
    if result.errors:
        error = result.errors[0]
        return CheckResult(False, f"server error {error.get('code')}: {error.get('message')}")
    final = result.final
    if final is None:
        return CheckResult(False, f"no final transcript (close code {result.close_code})")
    heard = str(final.get("text", "")).strip()
    wer = word_error_rate(text, heard)
    final_at = next((r.at for r in result.messages if r.message.get("type") == "final"), None)
    after_eof = None if final_at is None or result.eof_at is None else final_at - result.eof_at
    if wer > max_wer:
        reason = f"word error rate {wer:.2f} is over {max_wer:.2f}: heard {heard!r}"
        return CheckResult(False, reason, heard, wer, seconds, after_eof)
    return CheckResult(
        True, f"word error rate {wer:.2f} (at most {max_wer:.2f})", heard, wer, seconds, after_eof
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the check against a running server; print the verdict; 0 on PASS, 1 on FAIL."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="the server's WebSocket (%(default)s)")
    parser.add_argument("--text", default=SAMPLE_TEXT, help="the sentence to speak")
    parser.add_argument("--engine", choices=ENGINES, default="piper", help="TTS engine (%(default)s)")
    parser.add_argument("--max-wer", type=float, default=MAX_WER, help="pass threshold (%(default)s)")
    parser.add_argument("--fast", action="store_true", help="send the slices without real-time pacing")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        result = run_check(
            args.url, args.text, engine=args.engine, max_wer=args.max_wer, realtime=not args.fast
        )
    except (ClientError, TtsError) as e:
        print(f"FAIL: {e}")
        return 1
    print(f"said:  {args.text}")
    print(f"heard: {result.transcript}")
    latency = "" if result.final_after_eof is None else f", final {result.final_after_eof:.2f} s after eof"
    print(f"{result.audio_seconds:.1f} s of speech in {time.perf_counter() - started:.1f} s{latency}")
    print(f"{'PASS' if result.passed else 'FAIL'}: {result.reason}")
    return 0 if result.passed else 1


# --- under pytest -------------------------------------------------------------------------------
# `python test_transcription.py` needs only requirements.txt: nothing here imports pytest. The
# e2e mark is set only when pytest is the one importing this file (it is then in sys.modules).


def _e2e(test: Test) -> Test:
    """pytest's ``e2e`` mark when pytest collects this file; the function unchanged otherwise."""
    runner = sys.modules.get("pytest")
    return test if runner is None else runner.mark.e2e(test)


@_e2e
def test_transcription_end_to_end(tmp_path: Path) -> None:
    """The check above against a real server (real model, real ffmpeg) started on a free port:
    one take, no second chance (a retry would hide a sentence that loses its end)."""
    from wirescribe.devserver import start_server, stop_server

    server = start_server(tmp_path / "server.log")
    try:
        result = run_check(server.ws)
    finally:
        stop_server(server)
    assert result.passed, result.reason
    assert result.final_after_eof is not None and result.final_after_eof < 10


def test_no_server_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a server the check fails at once with "no server at URL"."""
    from wirescribe.devserver import free_port

    url = f"ws://127.0.0.1:{free_port()}/ws/transcribe"
    assert main(["--url", url, "--fast"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [out[0]] and out[0].startswith(f"FAIL: no server at {url}")


if __name__ == "__main__":
    sys.exit(main())
