"""Replay speech through the streaming policy and the real model, paced as if in real time.

No server: each update starts when the previous one has finished (its measured compute time)
or when the next 250 ms slice arrives, exactly as one live session would see it. Prints WER,
commit latency and the number of model calls; used to tune ``StreamingOptions``.

    python bench/policy_sim.py [--slice 0.25] [--pause 0.6]
"""

from __future__ import annotations

import argparse
import difflib
import statistics
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber  # noqa: E402
from wirescribe.audio.decode import SAMPLE_RATE, decode_file  # noqa: E402
from wirescribe.audio.vad import VoiceActivity, silero_probability  # noqa: E402
from wirescribe.streaming.events import CloseReason  # noqa: E402
from wirescribe.streaming.policy import StreamingOptions, StreamingPolicy, Window  # noqa: E402
from wirescribe.streaming.session import live_decode_options  # noqa: E402
from wirescribe.wer import normalize_words, word_error_rate  # noqa: E402


def load_speech(pause: float = 1.0) -> tuple[np.ndarray, str]:
    data = ROOT / "tests" / "data" / "librivox"
    parts, refs = [], []
    for wav in sorted(data.glob("*.wav")):
        parts += [decode_file(wav), np.zeros(int(pause * SAMPLE_RATE), dtype=np.float32)]
        refs.append(wav.with_suffix(".txt").read_text().strip())
    return np.concatenate(parts), " ".join(refs)


args_verbose = False
fixed_cost = 0.0


tentative_beam = 1


def live_options(window: Window, context: float | None) -> DecodeOptions:
    options = live_decode_options(window, "en", context)
    if not window.closes_utterance and tentative_beam > 1:
        options = replace(options, beam_size=tentative_beam)
    return options


def simulate(
    model: Transcriber,
    audio: np.ndarray,
    opts: StreamingOptions,
    slice_s: float = 0.25,
    context: float | None = None,
):
    policy = StreamingPolicy(VoiceActivity(silero_probability()), opts, language="en")
    step = int(slice_s * SAMPLE_RATE)
    clock, fed, calls = 0.0, 0, 0
    commits: list[tuple[float, str]] = []  # (wall time, committed text)
    compute: list[float] = []
    while fed < len(audio):
        # deliver every slice that has arrived by `clock`
        while fed < len(audio) and fed + step <= clock * SAMPLE_RATE + 1:
            policy.insert_audio(audio[fed : fed + step])
            fed += step
            update = policy.settle()  # a held closing pass commits once its pause is complete
            if update is not None:
                commits.append((max(clock, fed / SAMPLE_RATE), update.committed))
        window = policy.next_window()
        if window is None:
            clock = max(clock, (fed + step) / SAMPLE_RATE)  # wait for the next slice
            continue
        t = time.perf_counter()
        result = model.transcribe(window.audio, live_options(window, context))
        took = time.perf_counter() - t
        compute.append(took)
        if args_verbose and took > 1.0:
            print(f"slow call: {took:.2f}s window {len(window.audio) / SAMPLE_RATE:.1f}s -> {result.text!r}")
        calls += 1
        clock += fixed_cost or took
        # The audio that arrived while the model worked is in the session before its result is
        # (as in the server, where decoding goes on beside the model call).
        while fed < len(audio) and fed + step <= clock * SAMPLE_RATE + 1:
            policy.insert_audio(audio[fed : fed + step])
            fed += step
        update = policy.apply(window, result)
        if update is not None:
            commits.append((clock, update.committed))
    policy.drain(CloseReason.EOF, lambda w: model.transcribe(w.audio, live_options(w, context)))
    final = policy.finish()
    return final, commits, calls, compute


def commit_latencies(model: Transcriber, audio: np.ndarray, commits: list[tuple[float, str]]) -> list[float]:
    """Seconds from each word's end in the audio to its arrival in `committed`."""
    truth = [
        w
        for s in model.transcribe(audio, DecodeOptions(language="en", beam_size=5)).segments
        for w in s.words
    ]
    truth_words = [" ".join(normalize_words(w.text)) for w in truth]
    arrival: list[float] = []
    for at, text in commits:
        n = len(normalize_words(text))
        arrival += [at] * (n - len(arrival))
    final_words = normalize_words(commits[-1][1]) if commits else []
    out = []
    for block in difflib.SequenceMatcher(
        a=truth_words, b=final_words[: len(arrival)], autojunk=False
    ).get_matching_blocks():
        for k in range(block.size):
            out.append(arrival[block.b + k] - truth[block.a + k].end)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--slice", type=float, default=0.25)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--fixed-cost", type=float, default=0.0, help="pretend each model call takes this long")
    p.add_argument("--context", type=float, default=12.0, help="encoder context seconds (30: full)")
    p.add_argument("--tentative-beam", type=int, default=1, help="beam size of the tentative updates")
    for f in fields(StreamingOptions):
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=None)
    args = p.parse_args()
    opts = replace(
        StreamingOptions(),
        **{
            f.name: getattr(args, f.name)
            for f in fields(StreamingOptions)
            if getattr(args, f.name) is not None
        },
    )
    global args_verbose, fixed_cost, tentative_beam
    args_verbose = args.verbose
    tentative_beam = args.tentative_beam
    fixed_cost = args.fixed_cost
    model = Transcriber.load(ModelConfig())
    audio, reference = load_speech()
    final, commits, calls, compute = simulate(model, audio, opts, args.slice, args.context)
    lat = commit_latencies(model, audio, commits)
    if args.verbose:
        for at, text in commits:
            print(f"{at:6.2f} {text[-70:]}")
    print(opts)
    wer = word_error_rate(reference, final.text)
    print(f"WER {wer:.3f}  calls {calls}  compute median {statistics.median(compute):.2f}s")
    if lat:
        lat.sort()
        print(f"commit latency median {statistics.median(lat):.2f}s  p90 {lat[int(0.9 * len(lat))]:.2f}s")
    print(final.text)


if __name__ == "__main__":
    main()
