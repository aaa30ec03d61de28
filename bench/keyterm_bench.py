"""Keyterms (protocol 1.1): does naming uncommon words help, and does it hurt the rest?

For each utterance of ``tests/data/keyterms/`` (synthetic speech with uncommon names and jargon,
see its README) it transcribes the audio twice — without keyterms and with the utterance's
terms — and reports, per utterance and in all:

* term accuracy: how many of the utterance's terms the transcript has (a term counts as right
  when it appears as whole words, case, accents and punctuation ignored: "Dvořák" = "dvorak,",
  but "pg Bouncer" is not "pgBouncer");
* WER of the transcript against the reference (``wirescribe.wer``).

By default the audio goes through a real server's WebSocket, streamed at real-time pace as
WebM/Opus slices (as a browser sends it), ``?format=auto`` and, for "with",
``&keyterms=Term1,Term2``; the server is started on a free port (``bench/_server.py``) unless
``--server`` names a running one. A server before protocol 1.1 ignores the unknown parameter,
so there "with" equals "without" (the ``ready`` message's ``protocol`` is printed).
``--direct`` runs faster-whisper itself instead (``hotwords=``, beam sizes from ``--beam``),
no server: the effect the server should reproduce.

    python bench/keyterm_bench.py                      # start a server, stream every utterance
    python bench/keyterm_bench.py --server 127.0.0.1:8000
    python bench/keyterm_bench.py --direct --beam 1,5  # faster-whisper directly
    python bench/keyterm_bench.py --all-terms          # every utterance gets every term

Prints markdown tables; ``--json PATH`` also writes the transcripts and figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
import _server

from wirescribe.audio.decode import SAMPLE_RATE, decode_file
from wirescribe.client import ClientError, StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "tests" / "data" / "keyterms" / "manifest.json"


@dataclass(frozen=True)
class Utterance:
    name: str  # the file's stem
    audio: np.ndarray  # 16 kHz mono float32
    text: str  # the reference transcript
    terms: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


@dataclass
class Row:
    name: str
    terms: list[str]  # the utterance's own terms (scored)
    given: list[str]  # the terms sent "with" (the utterance's, or all of them with --all-terms)
    without: str
    with_terms: str

    def hits(self, text: str) -> int:
        return sum(term_found(t, text) for t in self.terms)

    def figures(self, reference: str) -> dict[str, Any]:
        return {
            "hits_without": self.hits(self.without),
            "hits_with": self.hits(self.with_terms),
            "wer_without": word_error_rate(reference, self.without),
            "wer_with": word_error_rate(reference, self.with_terms),
        }


def load(manifest: Path = MANIFEST) -> list[Utterance]:
    items = json.loads(manifest.read_text(encoding="utf-8"))
    return [
        Utterance(
            Path(i["file"]).stem, decode_file(manifest.parent / i["file"]), i["text"], tuple(i["terms"])
        )
        for i in items
    ]


def _fold(text: str) -> str:
    """Lower case, accents and punctuation gone, single spaces: the form terms are matched in."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]|_", " ", text.lower()).split())


def term_found(term: str, transcript: str) -> bool:
    """``term`` appears in ``transcript`` as whole words (case, accents, punctuation ignored)."""
    return f" {_fold(term)} " in f" {_fold(transcript)} "


# -- the two ways to transcribe -----------------------------------------------------------------

Transcribe = Callable[[Utterance, list[str]], str]  # (utterance, terms or []) -> transcript


def load_model() -> Any:
    """The embedded model in faster-whisper, as the server loads it on a CPU (int8)."""
    from faster_whisper import WhisperModel

    from wirescribe.asr.model import EMBEDDED_MODEL, resolve_model_source

    return WhisperModel(resolve_model_source(EMBEDDED_MODEL)[1], device="cpu", compute_type="int8")


def direct(model: Any, beam_size: int) -> Transcribe:
    """faster-whisper's own ``transcribe``, ``hotwords`` = the terms joined by ", "."""

    def run(u: Utterance, terms: list[str]) -> str:
        segments, _ = model.transcribe(
            u.audio, language="en", beam_size=beam_size, hotwords=", ".join(terms) or None
        )
        return " ".join(s.text.strip() for s in segments)

    return run


def session_url(base: str, terms: list[str]) -> str:
    """``base`` (``ws://host:port/ws/transcribe``) with ``format=auto`` and, given terms,
    ``keyterms=`` (comma-separated, URL-encoded)."""
    query = {"format": "auto"}
    if terms:
        query["keyterms"] = ",".join(terms)
    return f"{base}?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"


class ServerRun:
    """Streams each utterance through ``/ws/transcribe`` at real-time pace."""

    def __init__(self, base: str, slice_s: float, timeout: float, token: str | None) -> None:
        self.base = base
        self.slice_s = slice_s
        self.timeout = timeout
        self.headers = {"Authorization": f"Bearer {token}"} if token else None
        self.protocol: Any = None  # the ready message's protocol version

    def session(self, audio: np.ndarray, terms: list[str], interval: float | None) -> StreamResult:
        chunks = webm_slices(audio, self.slice_s)
        return asyncio.run(
            stream(session_url(self.base, terms), chunks, interval=interval, timeout=self.timeout,
                   headers=self.headers)
        )  # fmt: skip

    def __call__(self, u: Utterance, terms: list[str], warm_up: bool = False) -> str:
        r = self.session(u.audio, terms, None if warm_up else self.slice_s)
        ready = r.of_type("ready")
        if ready:
            self.protocol = ready[0].get("protocol")
        if r.errors:
            print(f"  {u.name}: server error(s) {r.errors}", file=sys.stderr, flush=True)
        if r.final is None:
            raise RuntimeError(
                f"{u.name}: no final transcript (close code {r.close_code}, errors {r.errors})"
            )
        return str(r.final["text"])


# -- the report ---------------------------------------------------------------------------------


def measure(utterances: list[Utterance], transcribe: Transcribe, all_terms: bool, verbose: bool) -> list[Row]:
    everything = list(dict.fromkeys(t for u in utterances for t in u.terms))
    rows: list[Row] = []
    for u in utterances:
        given = everything if all_terms else list(u.terms)
        row = Row(u.name, list(u.terms), given, transcribe(u, []), transcribe(u, given))
        rows.append(row)
        if verbose:
            print(f"  {u.name} ({u.seconds:.1f} s)\n    ref    : {u.text}\n    without: {row.without}\n"
                  f"    with   : {row.with_terms}", flush=True)  # fmt: skip
    return rows


def table(title: str, utterances: list[Utterance], rows: list[Row]) -> tuple[str, dict[str, Any]]:
    """A markdown table (one line per utterance and a total) and its figures."""
    lines = [
        f"### {title}",
        "",
        "| utterance | terms | terms right without | with | WER without | with |",
        "|---|---|---|---|---|---|",
    ]
    per: list[dict[str, Any]] = []
    for u, r in zip(utterances, rows, strict=True):
        f = r.figures(u.text)
        per.append({**asdict(r), **f, "reference": u.text})
        n = len(r.terms)
        lines.append(f"| {r.name} | {', '.join(r.terms)} | {f['hits_without']}/{n} | {f['hits_with']}/{n} "
                     f"| {f['wer_without']:.3f} | {f['wer_with']:.3f} |")  # fmt: skip
    n_terms = sum(len(r.terms) for r in rows)
    total = {
        "terms": n_terms,
        "hits_without": sum(p["hits_without"] for p in per),
        "hits_with": sum(p["hits_with"] for p in per),
        "wer_without": float(np.mean([p["wer_without"] for p in per])) if per else 0.0,
        "wer_with": float(np.mean([p["wer_with"] for p in per])) if per else 0.0,
        "hurt": [
            p["name"] for p in per if p["wer_with"] > p["wer_without"] or p["hits_with"] < p["hits_without"]
        ],
    }
    lines.append(f"| **all** ({len(rows)}) | | **{total['hits_without']}/{n_terms}** "
                 f"| **{total['hits_with']}/{n_terms}** "
                 f"| **{total['wer_without']:.3f}** | **{total['wer_with']:.3f}** |")  # fmt: skip
    lines.append("")
    lines.append("WER: mean over utterances. Worse with terms: " + (", ".join(total["hurt"]) or "none"))
    return "\n".join(lines), {"title": title, "total": total, "utterances": per}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", type=Path, default=MANIFEST, help="the utterances (manifest.json)")
    p.add_argument("--direct", action="store_true", help="faster-whisper directly (hotwords=), no server")
    p.add_argument("--beam", default="1,5", help="--direct: beam sizes, comma-separated")
    p.add_argument("--server", help="HOST:PORT (or a ws:// URL) of a running server; default: start one")
    p.add_argument("--token", help="the server's API token, if it has one")
    p.add_argument("--slice", type=float, default=0.25, help="WebM slice and send interval (s)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-session wait for the final (s)")
    p.add_argument("--all-terms", action="store_true",
                   help="'with' gives each utterance all the manifest's terms, not just its own")  # fmt: skip
    p.add_argument("--json", type=Path, help="also write the transcripts and figures here")
    p.add_argument("-v", "--verbose", action="store_true", help="print each transcript")
    args = p.parse_args(argv)

    utterances = load(args.manifest)
    seconds = sum(u.seconds for u in utterances)
    terms = "all terms" if args.all_terms else "own terms"
    print(f"{len(utterances)} utterances, {seconds:.1f} s of speech, {terms}", flush=True)
    reports: list[dict[str, Any]] = []

    def report(title: str, rows: list[Row]) -> None:
        text, figures = table(title, utterances, rows)
        print("\n" + text + "\n", flush=True)
        reports.append(figures)

    if args.direct:
        model = load_model()
        for beam in (int(b) for b in args.beam.split(",") if b.strip()):
            t = time.perf_counter()
            rows = measure(utterances, direct(model, beam), args.all_terms, args.verbose)
            report(f"direct faster-whisper, beam {beam}, {terms} ({time.perf_counter() - t:.0f} s)", rows)
    else:
        folder = None if args.server else Path(tempfile.mkdtemp(prefix="keyterm_bench_"))
        server = None if folder is None else _server.start(folder, timed=False)
        if server is not None:
            print(f"server pid {server.pid} on port {server.port}, log {server.log}", flush=True)
        base = server.ws if server is not None else _ws_base(args.server)
        try:
            run = ServerRun(base, args.slice, args.timeout, args.token)
            run(utterances[0], [], warm_up=True)  # the first model call and decoder start
            rows = measure(utterances, run, args.all_terms, args.verbose)
        except (RuntimeError, ClientError) as e:
            where = f" (the server's output: {folder})" if folder is not None else ""
            print(f"keyterm_bench: {e}{where}", file=sys.stderr)
            return 1
        finally:
            if server is not None:
                _server.stop(server)
        report(f"server {base} (protocol {run.protocol}), streamed at real time, {terms}", rows)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _ws_base(server: str) -> str:
    if "://" in server:
        return server.split("?")[0]
    return f"ws://{server}/ws/transcribe"


if __name__ == "__main__":
    sys.exit(main())
