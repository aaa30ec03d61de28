"""``cli.py stt`` and ``cli.py stream``: real model, real files, real server; plus the pure helpers.

The model is loaded once per session and handed to ``cli.main`` in-process (through
``cli.load_transcriber``); a few runs go through a real process to prove no traceback escapes.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, LiveServer, Utterance, free_port
from wirescribe.asr.model import Segment, Transcriber, Transcript, Word
from wirescribe.cli import files as cli_files
from wirescribe.cli import main as cli
from wirescribe.formats import FileTranscript, render, timestamp
from wirescribe.settings import Settings
from wirescribe.wer import word_error_rate

SPOKEN = (
    "Please remember to bring your umbrella tomorrow. "
    "The forecast says that it will rain for most of the afternoon."
)
LONG_SPOKEN = (
    "The library opens early on weekdays. Students often arrive before the doors are unlocked. "
    "Inside, the reading room is quiet and bright. Most people come here to study for their exams. "
    "In the evening, the lights are dimmed and the last visitors leave."
)
ROUND_TRIP_MAX_WER = 0.15
LIBRIVOX_MAX_WER = 0.30  # per file; measured 0.00-0.25 (one eight-word sentence loses two words)
LIBRIVOX_MAX_MEAN_WER = 0.10  # measured 0.061


@pytest.fixture(scope="session")
def transcriber() -> Transcriber:
    return Transcriber.load(Settings.from_env().model)


@pytest.fixture
def shared_model(monkeypatch: pytest.MonkeyPatch, transcriber: Transcriber) -> Transcriber:
    """Make ``cli.main`` use the session's model instead of loading its own."""
    monkeypatch.setattr(cli, "load_transcriber", lambda config: transcriber)
    return transcriber


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


def speak(text: str, path: Path) -> Path:
    if not path.exists():
        assert cli.main(["tts", text, "--output", str(path), "--quiet"]) == 0
    return path


def stt(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``cli.py stt ARGS`` in-process; return stdout, asserting a clean stderr."""
    assert cli.main(["stt", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no progress bar when stderr is not a terminal
    return captured.out


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


CUE_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def parse_cues(text: str, *, vtt: bool) -> list[tuple[float, float, str]]:
    """Parse SRT or WebVTT strictly: numbering, time lines, non-empty text."""
    if vtt:
        assert text.startswith("WEBVTT\n\n")
        text = text[len("WEBVTT\n\n") :]
    cues = []
    for i, block in enumerate(text.strip().split("\n\n"), 1):
        lines = block.split("\n")
        if not vtt:
            assert lines.pop(0) == str(i)
        m = re.fullmatch(f"{CUE_TIME} --> {CUE_TIME}", lines[0])
        assert m, lines[0]
        assert ("." if vtt else ",") in lines[0]
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert lines[1:] and all(line.strip() for line in lines[1:])
        cues.append((start, end, " ".join(lines[1:])))
    return cues


def assert_monotonic(times: list[tuple[float, float]]) -> None:
    assert times
    for i, (start, end) in enumerate(times):
        assert start < end, times
        if i:
            assert start >= times[i - 1][1], times


# --- stt, end to end ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg", "webm", "flac"])
def test_tts_stt_round_trip(
    fmt: str, speech_dir: Path, shared_model: Transcriber, capsys: pytest.CaptureFixture[str]
) -> None:
    path = speak(SPOKEN, speech_dir / f"spoken.{fmt}")
    heard = stt(capsys, str(path))
    assert heard.count("\n") == 1
    assert word_error_rate(SPOKEN, heard) <= ROUND_TRIP_MAX_WER, heard


@pytest.mark.e2e
def test_librivox_matches_references(
    utterances: list[Utterance], shared_model: Transcriber, capsys: pytest.CaptureFixture[str]
) -> None:
    out = json.loads(stt(capsys, "--format", "json", *(str(u.wav) for u in utterances)))
    assert [item["file"] for item in out] == [str(u.wav) for u in utterances]
    rates = {
        u.name[-4:]: word_error_rate(u.text, item["text"]) for u, item in zip(utterances, out, strict=True)
    }
    mean = sum(rates.values()) / len(rates)
    assert max(rates.values()) <= LIBRIVOX_MAX_WER, rates
    assert mean <= LIBRIVOX_MAX_MEAN_WER, (mean, rates)


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_parse_and_run_forward(
    fmt: str,
    utterances: list[Utterance],
    speech_dir: Path,
    shared_model: Transcriber,
    capsys: pytest.CaptureFixture[str],
) -> None:
    long = speak(LONG_SPOKEN, speech_dir / "long.wav")
    cues = parse_cues(stt(capsys, "--format", fmt, str(long), str(utterances[1].wav)), vtt=fmt == "vtt")
    assert len(cues) >= 2
    assert_monotonic([(s, e) for s, e, _ in cues])
    assert word_error_rate(f"{LONG_SPOKEN} {utterances[1].text}", " ".join(t for *_, t in cues)) < 0.2
    assert cues[-1][0] >= 15  # the second file's cues come after the first file's ~20 s


@pytest.mark.e2e
def test_json_with_word_timestamps(
    speech_dir: Path, shared_model: Transcriber, capsys: pytest.CaptureFixture[str]
) -> None:
    path = speak(LONG_SPOKEN, speech_dir / "long.wav")
    out = json.loads(stt(capsys, "--format", "json", "--word-timestamps", str(path)))
    assert out["file"] == str(path) and out["language"] == "en" and out["duration"] > 10
    assert word_error_rate(LONG_SPOKEN, out["text"]) < 0.2
    assert_monotonic([(s["start"], s["end"]) for s in out["segments"]])
    words = [w for s in out["segments"] for w in s["words"]]
    assert len(words) >= 40
    assert all(w["start"] <= w["end"] and w["word"] for w in words)
    assert all(a["start"] <= b["start"] for a, b in itertools.pairwise(words))
    assert " ".join(w["word"] for w in words[:3]).lower().startswith("the library opens")


@pytest.mark.e2e
def test_several_files_to_one_output_file(
    utterances: list[Utterance], tmp_path: Path, shared_model: Transcriber, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.txt"
    names = [str(utterances[1].wav), str(utterances[4].wav)]
    assert stt(capsys, *names, "--no-vad", "--beam-size", "1", "--output", str(out)) == ""
    lines = out.read_text().splitlines()
    assert [line.split(": ", 1)[0] for line in lines] == names
    assert word_error_rate(utterances[4].text, lines[1].split(": ", 1)[1]) <= 0.2


# --- stt failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["{tmp}/missing.wav"], 1, "no such file: {tmp}/missing.wav"),
        (["{tmp}"], 1, "not a file"),
        (["{root}/cli.py", "-o", "/no/such/dir/out.txt"], 2, "cannot write /no/such/dir/out.txt"),
        (["{root}/cli.py", "-o", "{tmp}"], 2, "is a directory"),
    ],
)
def test_stt_bad_requests_before_the_model(
    args: list[str], code: int, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{root}", str(ROOT))

    assert cli.main(["stt", *map(fill, args)]) == code
    assert fill(words) in one_error_line(capsys.readouterr().err)


@pytest.mark.e2e
def test_stt_not_audio(tmp_path: Path, shared_model: Transcriber, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    for path in (ROOT / "cli.py", tmp_path / "empty.wav"):
        assert cli.main(["stt", str(path)]) == 1
        assert str(path) in one_error_line(capsys.readouterr().err)


@pytest.mark.e2e
def test_stt_unknown_language(
    utterances: list[Utterance], shared_model: Transcriber, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["stt", str(utterances[0].wav), "--language", "xx"]) == 2
    assert "language 'xx'" in one_error_line(capsys.readouterr().err)


def test_stt_model_that_cannot_load(
    utterances: list[Utterance], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty directory fails at once (no download), with the real loader."""
    assert cli.main(["stt", str(utterances[0].wav), "--model", str(tmp_path)]) == 1
    assert "cannot load model" in one_error_line(capsys.readouterr().err)


def test_stt_bad_environment(
    utterances: list[Utterance], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STT_CPU_THREADS", "many")
    assert cli.main(["stt", str(utterances[0].wav)]) == 2
    assert "STT_" in one_error_line(capsys.readouterr().err)


@pytest.mark.e2e
def test_stt_failures_in_a_real_process(tmp_path: Path) -> None:
    """What a user sees: one line, exit 1, no traceback — missing file and a text file."""
    for path in (tmp_path / "missing.mp3", ROOT / "cli.py"):
        proc = subprocess.run([sys.executable, "cli.py", "stt", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert str(path) in one_error_line(proc.stderr)
        assert proc.stdout == ""


# --- stream -------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["webm", "pcm16"])
def test_stream_to_a_live_server(
    fmt: str, live_server: LiveServer, utterances: list[Utterance], capsys: pytest.CaptureFixture[str]
) -> None:
    u = utterances[0]
    assert cli.main(["stream", str(u.wav), "--url", live_server.ws, "--format", fmt]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1 and "\x1b" not in captured.out  # not a terminal: just the final text
    assert word_error_rate(u.text, lines[0]) <= 0.2, lines[0]


def test_stream_without_a_server(utterances: list[Utterance], capsys: pytest.CaptureFixture[str]) -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws/transcribe"
    assert cli.main(["stream", str(utterances[0].wav), "--url", url]) == 1
    assert one_error_line(capsys.readouterr().err).startswith(f"error: no server at {url}")


def test_stream_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["stream", str(tmp_path / "nope.webm")]) == 1
    assert "no such file" in one_error_line(capsys.readouterr().err)


# --- the pure parts -----------------------------------------------------------------------------


def transcript(*segments: tuple[float, float, str], duration: float = 10.0) -> Transcript:
    return Transcript(
        tuple(
            Segment(s, e, f" {t}", tuple(Word(s, e, f" {w}", 0.9) for w in t.split()[:1]))
            for s, e, t in segments
        ),
        "en",
        duration,
    )


FIRST = FileTranscript("a.wav", transcript((0.0, 2.5, "Hello there."), (2.4, 4.0, "General."), duration=5))
SECOND = FileTranscript("b.wav", transcript((0.5, 1.5, "Bye."), (1.5, 1.5, "  "), duration=2))


def test_formats_for_one_file() -> None:
    assert render([FIRST], "text") == "Hello there. General.\n"
    data = json.loads(render([FIRST], "json", words=True))
    assert data["segments"][0] == {
        "id": 0, "start": 0.0, "end": 2.5, "text": "Hello there.",
        "words": [{"start": 0.0, "end": 2.5, "word": "Hello", "probability": 0.9}],
    }  # fmt: skip
    assert "words" not in json.loads(render([FIRST], "json"))["segments"][0]
    srt = render([FIRST], "srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:02,500 --> ")
    assert parse_cues(render([FIRST], "vtt"), vtt=True)[1] == (2.5, 4.0, "General.")


def test_formats_for_several_files() -> None:
    assert render([FIRST, SECOND], "text") == "a.wav: Hello there. General.\nb.wav: Bye.\n"
    assert [d["file"] for d in json.loads(render([FIRST, SECOND], "json"))] == ["a.wav", "b.wav"]
    cues = parse_cues(render([FIRST, SECOND], "srt"), vtt=False)
    assert [c[2] for c in cues] == ["Hello there.", "General.", "Bye."]  # the blank segment dropped
    assert cues[2][:2] == (5.5, 6.5)  # shifted by the first file's 5 s
    assert_monotonic([(s, e) for s, e, _ in cues])


def test_timestamps() -> None:
    assert timestamp(3723.4567) == "01:02:03,457"
    assert timestamp(59.9996, vtt=True) == "00:01:00.000"
    assert timestamp(-0.2) == "00:00:00,000"


def test_live_line_dims_the_tentative_tail() -> None:
    out = io.StringIO()
    line = cli.LiveLine(out, 40)
    line.show({"type": "ready"})
    line.show({"type": "transcript", "committed": "Hello ", "tentative": "world"})
    line.show(
        {"type": "transcript", "committed": "one two three four five six seven ", "tentative": "eight nine"}
    )
    line.close()
    first, second, last = out.getvalue().split("\r\x1b[K")[1:]
    assert first == "Hello \x1b[2mworld\x1b[0m"
    assert second.endswith("seven \x1b[2meight nine\x1b[0m") and second.startswith("…")
    assert len(second.replace("\x1b[2m", "").replace("\x1b[0m", "")) == 39
    assert last == ""


def test_progress_bar_counts_seconds_of_audio(capsys: pytest.CaptureFixture[str]) -> None:
    with cli_files.progress("long.wav", 60.0, show=True) as advance:
        for _ in range(61):  # the last block of a file may be short: the bar stops at the total
            advance(1.0)
    err = capsys.readouterr().err
    assert "long.wav" in err and "60/60 s" in err
    with cli_files.progress("long.wav", 60.0, show=False) as advance:
        advance(1.0)
    assert capsys.readouterr().err == ""


def test_query_parameters_are_added() -> None:
    assert cli._with_query("ws://h:1/ws/transcribe?token=t", format="pcm16") == (
        "ws://h:1/ws/transcribe?token=t&format=pcm16"
    )


@pytest.mark.parametrize(
    ("argv0", "prog"), [("/usr/local/bin/stt", "stt"), ("cli.py", "cli.py"), ("pytest", "cli.py")]
)
def test_help_names_the_command_as_typed(monkeypatch: pytest.MonkeyPatch, argv0: str, prog: str) -> None:
    monkeypatch.setattr(sys, "argv", [argv0])
    assert cli.build_parser().format_usage().startswith(f"usage: {prog} ")
