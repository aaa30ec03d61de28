"""Command line: ``tts`` (text to an audio file), ``stt`` (audio files to text), ``stream``
(a file to a running server, the way a browser streams it).

    python cli.py tts "Hello world" --output output.mp3
    python cli.py stt output.mp3 --format srt
    python cli.py stream output.mp3 --url ws://localhost:8000/ws/transcribe --realtime

Every failure is one ``error: ...`` line on stderr and an exit code: 2 for a wrong request
(usage, empty text, unwritable output, unknown format), 1 for everything that went wrong while
doing it (missing or undecodable input, model, network, server).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import urllib.parse
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from wirescribe.asr.base_model import BASE_MODEL
from wirescribe.asr.model import DecodeOptions, ModelConfig, ModelLoadError, Transcriber
from wirescribe.audio.decode import (
    ENCODINGS,
    DecodeError,
    DecoderFailure,
    decode_file,
    encode_audio,
    use_ffmpeg,
)
from wirescribe.audio.vad import silero_probability
from wirescribe.cli.files import FileJob, always_speech, transcribe_file
from wirescribe.cli.tts import DEFAULT_ENGINE, ENGINES, TtsError, TtsOptions, TtsUsageError, synthesize
from wirescribe.client import ClientError, pcm16_slices, stream, webm_slices
from wirescribe.formats import FORMATS, FileTranscript, render
from wirescribe.settings import Settings, SettingsError
from wirescribe.streaming.files import ChunkOptions

log = logging.getLogger("cli")

USAGE_ERROR = 2


class CliError(Exception):
    """A failure to report as one line, with the exit code it maps to."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- shared helpers ---------------------------------------------------------------------------


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written before doing the work."""
    if path.is_dir():
        raise CliError(f"cannot write {path}: it is a directory", USAGE_ERROR)
    parent = path.parent
    if not parent.is_dir():
        raise CliError(f"cannot write {path}: no such directory {parent}", USAGE_ERROR)
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CliError(f"cannot write {path}: permission denied", USAGE_ERROR)


def _write(dest: str, data: bytes | str) -> None:
    """Write audio bytes or text (UTF-8) to a file, or to stdout for ``-``."""
    if dest == "-":
        if isinstance(data, str):
            sys.stdout.write(data)
        else:
            sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        Path(dest).write_bytes(data.encode() if isinstance(data, str) else data)
    except OSError as e:
        raise CliError(f"cannot write {dest}: {e.strerror or e}", USAGE_ERROR) from e


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise CliError(f"no such file: {path}")
    if not path.is_file():
        raise CliError(f"not a file: {path}")
    if not os.access(path, os.R_OK):
        raise CliError(f"cannot read {path}: permission denied")
    return path


# --- tts --------------------------------------------------------------------------------------


def _read_text(args: argparse.Namespace) -> str:
    if args.file is not None and args.text is not None:
        raise CliError("give the text or --file, not both", USAGE_ERROR)
    if args.file is not None:
        try:
            return _existing_file(Path(args.file)).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CliError(f"cannot read {args.file}: {e}") from e
    if args.text == "-":
        return sys.stdin.read()
    if args.text is None:
        raise CliError("no text to speak: give it as an argument, - for stdin, or --file FILE", USAGE_ERROR)
    return str(args.text)


def _audio_format(output: str, fmt: str | None) -> str:
    """The container: ``--format`` when given, else the output file's extension."""
    known = ", ".join(ENCODINGS)
    if fmt is not None:
        if fmt not in ENCODINGS:
            raise CliError(f"unknown audio format {fmt!r} (known: {known})", USAGE_ERROR)
        return fmt
    if output == "-":
        return "wav"
    ext = Path(output).suffix.lower().lstrip(".")
    if ext not in ENCODINGS:
        what = f"extension .{ext}" if ext else "no extension"
        raise CliError(f"cannot tell the audio format of {output} ({what}; known: {known})", USAGE_ERROR)
    return ext


def cmd_tts(args: argparse.Namespace) -> int:
    """Speak text into an audio file (or stdout)."""
    text = _read_text(args)
    if not text.strip():
        raise CliError("no text to speak (the text is empty)", USAGE_ERROR)
    if args.output == "-":
        if sys.stdout.isatty():
            raise CliError(
                "refusing to write audio to a terminal: redirect stdout or use --output", USAGE_ERROR
            )
    else:
        _check_writable(Path(args.output))
    fmt = _audio_format(args.output, args.format)
    options = TtsOptions(args.engine, args.voice, args.lang, args.speed, args.timeout)
    speech = synthesize(text, options)
    # audio_decode's "m4a" (ipod muxer) needs a seekable output and fails on its pipe; AAC in
    # fragmented MP4 is the same audio in a container every m4a player reads.
    container = "mp4" if fmt == "m4a" else fmt
    _write(args.output, encode_audio(speech.samples, container, speech.sample_rate))
    if args.output != "-" and not args.quiet:
        print(f"wrote {args.output} ({speech.duration:.1f} s of speech, {args.engine})", file=sys.stderr)
    return 0


# --- stt --------------------------------------------------------------------------------------


def load_transcriber(config: ModelConfig) -> Transcriber:
    """Load the model (tests replace this to share one model across calls)."""
    return Transcriber.load(config)


def cmd_stt(args: argparse.Namespace) -> int:
    """Transcribe one or more audio files."""
    paths = [_existing_file(Path(f)) for f in args.files]
    if args.output != "-":
        _check_writable(Path(args.output))
    flags = {"model": args.model, "device": args.device, "compute_type": args.compute_type}
    config = replace(args.settings.model, **{k: v for k, v in flags.items() if v is not None})
    language = None if args.language in (None, "", "auto") else args.language.lower()
    task = "translate" if args.translate else "transcribe"
    other = task == "translate" or language not in (None, "en")  # more than English-only can do
    if args.model is None and config.model.endswith(".en") and other:
        config = replace(config, model=BASE_MODEL)  # English-only by default: the multilingual model
    transcriber = load_transcriber(config)
    if transcriber.default_language is not None and other:
        what = "translate" if task == "translate" else f"transcribe language {language!r}"
        raise CliError(f"model {transcriber.name} speaks English only and cannot {what}: use --model base",
                       USAGE_ERROR)  # fmt: skip
    if language and language not in transcriber.supported_languages:
        raise CliError(f"model {transcriber.name} does not know language {language!r}", USAGE_ERROR)
    options = DecodeOptions(
        language=language, task=task, beam_size=args.beam_size, word_timestamps=args.word_timestamps
    )
    files = FileJob(
        silero_probability() if args.vad else always_speech,
        ChunkOptions(max_seconds=args.settings.files.chunk_seconds),
    )
    results = [
        FileTranscript(str(p), transcribe_file(transcriber, p, options, files, args.quiet)) for p in paths
    ]
    _write(args.output, render(results, args.format, words=args.word_timestamps))
    return 0


# --- stream -----------------------------------------------------------------------------------


class LiveLine:
    """One terminal line rewritten in place: committed text plain, the tentative tail dimmed."""

    DIM, RESET, CLEAR = "\x1b[2m", "\x1b[0m", "\r\x1b[K"

    def __init__(self, out: TextIO, width: int) -> None:
        self._out, self._width, self._shown = out, max(20, width - 1), False

    def show(self, message: dict[str, Any]) -> None:
        if message.get("type") != "transcript":
            return
        committed, tentative = str(message.get("committed", "")), str(message.get("tentative", ""))
        text, split = committed + tentative, len(committed)
        if len(text) > self._width:  # keep the newest words: cut from the left
            drop = len(text) - self._width + 1
            text, split = "…" + text[drop:], max(0, split - drop) + 1
        committed, tentative = text[:split], text[split:]
        self._out.write(f"{self.CLEAR}{committed}{self.DIM}{tentative}{self.RESET}")
        self._out.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self._out.write(self.CLEAR)
            self._out.flush()


def _with_query(url: str, **params: str) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.update(params)
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def cmd_stream(args: argparse.Namespace) -> int:
    """Stream a file to a running server and print the live and final transcript."""
    audio = decode_file(_existing_file(Path(args.file)))
    asked = {"language": args.language, "model": args.model, "task": "translate" if args.translate else None}
    params = {k: v for k, v in asked.items() if v}
    if args.format == "pcm16":
        chunks, interval, params["format"] = pcm16_slices(audio), 0.02, "pcm16"
    else:
        chunks, interval = webm_slices(audio), 0.25
    live = LiveLine(sys.stdout, os.get_terminal_size(sys.stdout.fileno()).columns) if (
        sys.stdout.isatty() and not args.quiet
    ) else None  # fmt: skip
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    try:
        result = asyncio.run(
            stream(
                _with_query(args.url, **params) if params else args.url,
                chunks,
                interval=interval if args.realtime else None,
                on_message=live.show if live else None,
                timeout=args.timeout,
                headers=headers,
            )
        )
    finally:
        if live is not None:
            live.close()
    final = result.final
    if final is not None:
        print(final.get("text", "").strip())
    if result.errors:
        error = result.errors[0]
        raise CliError(f"server: {error.get('message', '')} ({error.get('code', '?')})")
    if final is None:
        raise CliError(f"the server closed the session (code {result.close_code}) without a final transcript")
    return 0


# --- the parser and the boundary ----------------------------------------------------------------


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of the three commands."""
    # The installed command is "stt"; run from a clone (or in-process by the tests) it is cli.py.
    prog = "stt" if Path(sys.argv[0]).name == "stt" else "cli.py"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (stderr)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{tts,stt,stream}")

    p = sub.add_parser("tts", help="speak text into an audio file")
    p.add_argument("text", nargs="?", help="the text; - reads stdin")
    p.add_argument("--file", metavar="PATH", help="read the text from a UTF-8 file")
    p.add_argument("-o", "--output", default="output.mp3",
                   help="audio file, format from its extension (%(default)s); - for stdout")  # fmt: skip
    p.add_argument("--format", choices=list(ENCODINGS), help="container (default: extension; wav on stdout)")
    p.add_argument("--engine", choices=ENGINES, default=DEFAULT_ENGINE,
                   help="piper: offline (default); gtts: Google's service, needs internet")  # fmt: skip
    p.add_argument("--voice", help="piper: .onnx voice file; gtts: Google domain for the accent (co.uk…)")
    p.add_argument("--lang", help="gtts: language code (en, de…); piper: must match the voice")
    p.add_argument("--speed", "--rate", type=_positive(float), default=1.0,
                   help="speaking speed, 1 normal, 0.8 slower (gtts: below 1 = slow)")  # fmt: skip
    p.add_argument("--timeout", type=_positive(float), default=5.0, help="gtts network timeout (s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line on stderr")
    p.set_defaults(run=cmd_tts)

    p = sub.add_parser(
        "stt", help="transcribe audio files",
        epilog="Several files make one output: text prefixes each with its name, json is a list, "
               "srt/vtt put the files one after another on one timeline.",
    )  # fmt: skip
    p.add_argument("files", nargs="+", metavar="FILE", help="any file ffmpeg reads")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format (%(default)s)")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    p.add_argument("--model", help="model name or directory (STT_MODEL; default the embedded tiny.en)")
    p.add_argument("--language", help="language code, or auto (default: the model's own, else detected)")
    p.add_argument("--translate", action="store_true", help="English text from any language (model: base)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="STT_DEVICE (default auto)")
    p.add_argument("--compute-type", help="STT_COMPUTE_TYPE: int8, float16… (default auto)")
    p.add_argument("--beam-size", type=_positive(int), default=5, help="beam size (%(default)s)")
    p.add_argument("--vad", action=argparse.BooleanOptionalAction, default=True,
                   help="cut in pauses and skip silence with Silero VAD (default on; "
                        "off: fixed chunks, nothing skipped)")  # fmt: skip
    p.add_argument("--word-timestamps", action="store_true", help="word times in json output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=cmd_stt)

    p = sub.add_parser("stream", help="stream a file to a running server, as a browser would")
    p.add_argument("file", metavar="FILE", help="any file ffmpeg reads")
    p.add_argument("--url", default="ws://localhost:8000/ws/transcribe", help="server (%(default)s)")
    p.add_argument("--format", choices=["webm", "pcm16"], default="webm",
                   help="webm: WebM/Opus in 250 ms slices (default); pcm16: raw 20 ms frames")  # fmt: skip
    p.add_argument("--realtime", action="store_true", help="pace the slices at the speed of speech")
    p.add_argument("--language", help="language query parameter (a code, or auto)")
    p.add_argument("--model", help="one of the server's models (GET /v1/models)")
    p.add_argument("--translate", action="store_true", help="task=translate: English text from any language")
    p.add_argument("--token", help="access token (sent as Authorization: Bearer)")
    p.add_argument("--timeout", type=_positive(float), default=120.0,
                   help="seconds to wait for the final transcript after the last slice")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no live line, only the final text")
    p.set_defaults(run=cmd_stream)
    return parser


_EXIT_CODES: dict[type[Exception], int] = {
    TtsUsageError: USAGE_ERROR,
    TtsError: 1,
    FileNotFoundError: 1,
    DecodeError: 1,
    DecoderFailure: 1,
    ModelLoadError: 1,
    ClientError: 1,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return its exit code (argparse exits 2 itself on usage errors)."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        args.settings = Settings.from_env()  # every STT_* setting checked: one line for a bad one
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE_ERROR
    use_ffmpeg(args.settings.ffmpeg_binary)
    try:
        return int(args.run(args))
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except tuple(_EXIT_CODES) as e:
        print(f"error: {e}", file=sys.stderr)
        return next(code for kind, code in _EXIT_CODES.items() if isinstance(e, kind))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
