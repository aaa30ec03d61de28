"""The tables and the plot of ``stream_bench.py``, from the figures it saves as JSON.

Kept apart from the run so a saved ``bench/results/*.json`` can be reported again::

    python -c "import json, _stream_report as r; r.print_report(json.load(open('results/stream_bench.json')))"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _common import table


def print_report(data: dict[str, Any]) -> None:
    levels = data["levels"]
    print(f"\n## Streaming through the server ({data['stream_seconds']:.1f} s of speech per session, "
          f"WebM/Opus {data['slice']:.3f} s slices at real-time pace)\n")  # fmt: skip
    print(f"Offline reference point (each utterance on its own, beam 5): WER {data['offline_wer']:.3f}\n")
    rows = []
    for lv in levels:
        cl, fs, ef, lag = lv["commit_latency"], lv["first_seen_latency"], lv["eof_to_final"], lv["lag"]
        comp = lv["compute"] or {}
        rows.append([
            lv["streams"], f"{lv['wer_mean']:.3f}", f"{lv['wer_max']:.3f}", cl["median"], cl["p90"],
            fs["median"], ef["median"], ef["max"], lag["median"], lag["max"], lv["max_gap"],
            lv["updates_per_session"]["median"], comp.get("median"), comp.get("p90"), lv["utilisation"],
            lv["peak_rss_mib"], lv["failed_sessions"],
        ])  # fmt: skip
    print(table([
        "streams", "WER mean", "WER max", "commit lat. median (s)", "commit lat. p90 (s)",
        "first-seen lat. median (s)", "eof→final median (s)", "eof→final max (s)", "lag median (s)",
        "lag max (s)", "max gap between updates (s)", "updates/session", "compute/call median (s)",
        "compute/call p90 (s)", "model busy (calls at once)", "server peak RSS (MiB)", "failed",
    ], rows))  # fmt: skip
    print("\n### Fairness and where the model calls go\n")
    rows = []
    for lv in levels:
        sp = lv.get("session_p90") or {}
        tc, cc = lv.get("tentative_compute") or {}, lv.get("closing_compute") or {}
        rows.append([
            lv["streams"], lv["commit_latency"]["median"], lv["commit_latency"]["p90"], sp.get("median"),
            lv.get("worst_session_p90"), lv["lag"]["median"], lv["lag"]["p90"], lv["lag"]["max"],
            lv.get("closing_calls_per_s"), lv.get("tentative_calls_per_s"), cc.get("median"),
            tc.get("median"),
            (lv.get("server") or {}).get("stt_scheduler_deferred_total"),
            " ".join(f"{x:g}" for x in lv.get("loadavg_before", [])) or None,
        ])  # fmt: skip
    print(table([
        "streams", "commit lat. median (s)", "commit lat. p90 (s)", "sessions' p90, median (s)",
        "worst session's p90 (s)", "lag median (s)", "lag p90 (s)", "lag max (s)",
        "closing calls/s", "tentative calls/s", "closing call median (s)", "tentative call median (s)",
        "refreshes held back", "load avg before (1/5/15 min)",
    ], rows))  # fmt: skip
    b = data.get("baseline")
    if not b:
        return
    print(f"\n## The seed's literal design (in-process: whole buffer, every {b['slice']:g} s chunk, "
          "beam 5, full context, sequential)\n")  # fmt: skip
    if b["finished"]:
        ending = f"eof→final {b['eof_to_final']:.1f} s"
    else:
        backlog = b["backlog_chunks"]
        ending = (f"did not finish within {b['cap_seconds']:g} s after eof: backlog {backlog} "
                  f"of {b['chunks']} chunks ({backlog * b['slice']:.1f} s of audio)")  # fmt: skip
    print(table(["figure", "value"], [
        ["chunks transcribed", f"{b['calls_done']} of {b['chunks']}"],
        ["compute/update first (s)", b["compute_first"]],
        ["compute/update median (s)", b["compute"]["median"]],
        ["compute/update last (s)", b["compute_last"]],
        ["compute, whole buffer (s)", b["whole_buffer_compute"]],
        ["behind real time at eof (s of audio)", b["behind_at_eof"]],
        ["max lag (s)", b["max_lag"]],
        ["end", ending],
        ["first-seen latency median (s)", b["first_seen_latency"]["median"]],
        ["WER of its last output", b["wer_last_output"]],
        ["WER of the whole-buffer transcript", b["wer_whole_buffer"]],
    ]))  # fmt: skip
    one = levels[0]
    ratio = lambda a, c: (a / c) if a is not None and c else None  # noqa: E731
    ours_eof = one["eof_to_final"]["median"]
    base_eof = b["eof_to_final"] if b["finished"] else None
    eof_bound = f"< {max(ours_eof / b['cap_seconds'], 0.001):.3f}"  # the literal design never finished
    print(f"\n### Ours ({one['streams']} stream) vs the literal design\n")
    ours_comp, base_comp = (one["compute"] or {}).get("median"), b["compute"]["median"]
    ours_fs, base_fs = one["first_seen_latency"]["median"], b["first_seen_latency"]["median"]
    print(table(["figure", "ours", "literal", "ours / literal"], [
        ["compute per update, median (s)", ours_comp, base_comp, ratio(ours_comp, base_comp)],
        ["first-seen latency median (s)", ours_fs, base_fs, ratio(ours_fs, base_fs)],
        ["eof→final (s)", ours_eof, base_eof if base_eof is not None else f"> {b['cap_seconds']:g}",
         ratio(ours_eof, base_eof) if base_eof is not None else eof_bound],
        ["WER", one["wer_mean"], b["wer_whole_buffer"], None],
    ]))  # fmt: skip


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = data["levels"]
    ns = [lv["streams"] for lv in levels]
    b = data.get("baseline")
    fig, ax = plt.subplots(2, 2, figsize=(11, 8))
    a = ax[0][0]
    a.plot(ns, [lv["commit_latency"]["median"] for lv in levels], "o-", label="committed, median")
    a.plot(ns, [lv["commit_latency"]["p90"] for lv in levels], "o--", label="committed, p90")
    if all(lv.get("worst_session_p90") is not None for lv in levels):
        a.plot(ns, [lv["worst_session_p90"] for lv in levels], "^:", label="committed, worst session's p90")
    a.plot(ns, [lv["first_seen_latency"]["median"] for lv in levels], "s-", label="first seen, median")
    if b and b["first_seen_latency"]["median"] is not None:
        a.axhline(b["first_seen_latency"]["median"], color="r", ls=":", label="literal design, first seen")
        a.set_yscale("log")
    a.set(title="Word latency", xlabel="concurrent streams", ylabel="seconds")
    a.legend(fontsize=8)
    a = ax[0][1]
    a.plot(ns, [lv["wer_mean"] for lv in levels], "o-", label="streaming, mean")
    a.plot(ns, [lv["wer_max"] for lv in levels], "o--", label="streaming, max")
    a.axhline(data["offline_wer"], color="g", ls=":", label="offline, beam 5")
    if b:
        a.axhline(b["wer_whole_buffer"], color="r", ls=":", label="literal design (whole buffer)")
    a.set(title="Word error rate", xlabel="concurrent streams", ylabel="WER", ylim=(0, None))
    a.legend(fontsize=8)
    a = ax[1][0]
    a.plot(ns, [lv["eof_to_final"]["median"] for lv in levels], "o-", label="median")
    a.plot(ns, [lv["eof_to_final"]["max"] for lv in levels], "o--", label="max")
    if b:
        value = b["eof_to_final"] if b["finished"] else b["cap_seconds"]
        label = "literal design" if b["finished"] else f"literal design: not done after {value:g} s"
        a.axhline(value, color="r", ls=":", label=label)
        a.set_yscale("log")
    a.set(title="eof → final", xlabel="concurrent streams", ylabel="seconds")
    a.legend(fontsize=8)
    a = ax[1][1]
    a.plot(ns, [(lv["compute"] or {}).get("median") for lv in levels], "o-", label="compute/call median")
    a.plot(ns, [lv["lag"]["median"] for lv in levels], "s-", label="lag median")
    a.plot(ns, [lv["lag"]["max"] for lv in levels], "s--", label="lag max")
    if b:
        a.axhline(b["compute"]["median"], color="r", ls=":", label="literal design, compute/update")
        a.set_yscale("log")
    a.set(title="Per-update compute and lag", xlabel="concurrent streams", ylabel="seconds")
    a.legend(fontsize=8)
    for row in ax:
        for a in row:
            a.set_xticks(ns)
            a.grid(alpha=0.3)
    fig.suptitle(
        f"{data['stream_seconds']:.0f} s streams, {data['machine']['cpus']} CPUs, model {data['model']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
