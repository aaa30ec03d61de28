"""A server of any checkout, and the dense speech of ``tests/support/dense.py``, for the loss benchmark.

Not a test module and not part of the server: ``bench/loss_bench.py`` imports it as ``_dense``
(``bench/`` is the script directory, so it is on ``sys.path``).
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _server import _log_config  # noqa: E402

from tests.support.dense import (  # noqa: E402
    DENSE_GAPS,
    Clip,
    DenseSpeech,
    Placed,
    build_dense,
    clips,
    speech_end,
)
from wirescribe.audio.decode import SAMPLE_RATE  # noqa: E402
from wirescribe.client import StreamResult  # noqa: E402
from wirescribe.devserver import RunningServer, start_server  # noqa: E402
from wirescribe.wer import match_utterances, word_error_rate  # noqa: E402

__all__ = [
    "DENSE_GAPS", "Clip", "DenseSpeech", "Placed", "build_dense", "clips", "server_python",
    "session_figures", "speech_end", "start_root_server",
]  # fmt: skip


def server_python(root: Path) -> str:
    """The checkout's own ``.venv`` interpreter if it has one, else this one (a worktree made
    for a before/after comparison shares the main checkout's environment)."""
    venv = root / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def start_root_server(
    root: Path, folder: Path, *, env: dict[str, str] | None = None, timeout: float = 120
) -> RunningServer:
    """``uvicorn server:app`` run from ``root`` (its own ``wirescribe`` first on the path), with
    the session logger at DEBUG into ``folder/server.log``; returns once ``/health`` answers.

    (``wirescribe.devserver.start_server``, with the root's own interpreter and log config.)"""
    folder.mkdir(parents=True, exist_ok=True)
    config, log = _log_config(folder)
    environ = {"PYTHONPATH": str(root), "STT_MAX_SESSIONS_PER_CLIENT": "0", **(env or {})}
    server = start_server(folder / "server.out", uvicorn_args=["--log-config", str(config)], env=environ,
                          timeout=timeout, root=root, python=server_python(root))  # fmt: skip
    return replace(server, log=log)


# -- one session's figures -------------------------------------------------------------------

_WINDOW = re.compile(r"^session (\w+): window ([\d.]+)-([\d.]+)")


def session_log(log: Path, session_id: str | None, wall0: float) -> list[tuple[float, float, float, str]]:
    """The server's per-window debug lines of one session: (seconds since the stream started,
    window start, window end, message), for the evidence around a lost utterance."""
    if session_id is None or not log.exists():
        return []
    out = []
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and (m := _WINDOW.match(parts[3])) and m[1] == session_id:
            out.append((float(parts[0]) - wall0, float(m[2]), float(m[3]), parts[3]))
    return out


def _overlaps(a: float, b: float, lo: float, hi: float) -> bool:
    return a <= hi and b >= lo


def end_delays(
    result: StreamResult, speech: DenseSpeech, slice_s: float, endpointing: float
) -> dict[str, Any]:
    """Each ``utterance_end`` sent before ``eof``, matched to the clip whose speech its last word
    ends (the last clip begun by then); its delay is its arrival on the microphone's clock (a
    slice counts as spoken once its ``slice_s`` have passed: + one slice) minus that clip's
    speech end; ``after_sent``: the same from the moment the slice holding that speech end was
    sent (slices go out ``slice_s`` apart from the stream's start, so up to one slice less).
    An end that falls more than 0.5 s before the clip's speech end split the clip.
    ``missed``: clips followed by a pause (speech end to the next clip) longer than
    ``endpointing`` + 0.2 s without an end of their own; ``after_next``: ends that arrived once
    the next clip's speech had begun."""
    eof = result.eof_at if result.eof_at is not None else float("inf")
    delays: list[float] = []
    sent: list[float] = []  # the same from when the slice holding the speech end was sent
    ended: set[int] = set()
    splits = after_next = 0
    for rec in result.messages:
        m = rec.message
        if m.get("type") != "utterance_end" or rec.at >= eof or not m.get("text", "").strip():
            continue
        begun = [k for k, p in enumerate(speech.placed) if p.seconds[0] <= m["end"] + 0.1]
        if not begun:
            continue
        k = begun[-1]
        end = speech.placed[k].seconds[1]
        if m["end"] < end - 0.5:
            splits += 1
            continue
        ended.add(k)
        delays.append(rec.at + slice_s - end)
        sent.append(rec.at - (end // slice_s) * slice_s)
        if k + 1 < len(speech.placed) and rec.at + slice_s > speech.placed[k + 1].seconds[0]:
            after_next += 1
    pauses = [(b.first - a.speech_end) / SAMPLE_RATE for a, b in itertools.pairwise(speech.placed)]
    long_pauses = [k for k, pause in enumerate(pauses) if pause >= endpointing + 0.2]
    return {
        "delays": delays,
        "after_sent": sent,
        "splits": splits,
        "after_next": after_next,
        "missed": len([k for k in long_pauses if k not in ended]),
        "long_pauses": len(long_pauses),
    }


def session_figures(
    result: StreamResult, speech: DenseSpeech, *, slice_s: float, endpointing: float, wall0: float, log: Path
) -> dict[str, Any]:
    """WER, lost utterances (with the evidence around each), lost tails, ``utterance_end``
    delays and whether the ends' texts make the final text."""
    ready = result.of_type("ready")
    sid = ready[0].get("session_id") if ready else None
    out: dict[str, Any] = {"session_id": sid, "seed": speech.seed, "errors": result.errors,
                           "close_code": result.close_code}  # fmt: skip
    final = result.final
    if final is None:
        return {**out, "failed": True}
    text = final["text"]
    matches = match_utterances(speech.texts, text)
    ends = result.of_type("utterance_end")
    lines = session_log(log, sid, wall0)
    lost = []
    for m in matches:
        if not m.lost():
            continue
        p = speech.placed[m.index]
        lo, hi = p.first / SAMPLE_RATE, p.end / SAMPLE_RATE
        lost.append({
            "index": m.index, "clip": p.clip.name,
            "audio": [round(lo, 2), round(p.speech_end / SAMPLE_RATE, 2)],
            "reference": m.reference, "found": m.found, "words": m.words, "between": m.between,
            "heard": m.heard,
            "prev_reference": speech.texts[m.index - 1] if m.index else None,
            "segments": [s for s in final.get("segments", [])
                         if _overlaps(s["start"], s["end"], lo - 1, hi + 1)],
            "utterance_ends": [{k: e[k] for k in ("start", "end", "text")} for e in ends
                               if _overlaps(e["start"], e["end"], lo - 1, hi + 1)],
            "windows": [f"{t:7.2f}s {msg}" for t, a, b, msg in lines if _overlaps(a, b, lo - 0.5, hi + 0.5)],
        })  # fmt: skip
    out.update({
        "failed": False,
        "wer": word_error_rate(speech.reference, text),
        "lost": lost,
        "tails": [{"index": m.index, "reference": m.reference, "missing_tail": m.missing_tail,
                   "heard": m.heard} for m in matches if not m.lost() and m.missing_tail >= 3],
        "utterances": len(matches),
        "eof_to_final": next(r.at for r in result.messages if r.message.get("type") == "final")
        - (result.eof_at or 0.0),
        "final_text": text,
    })  # fmt: skip
    if ready and ready[0].get("protocol") == 1.1 and ends:
        out["ledger_ok"] = "".join(e["text"] for e in ends) == text
        out["ends"] = end_delays(result, speech, slice_s, endpointing)
    return out
