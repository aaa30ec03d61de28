"""What the pass that closes an utterance should be: decode options against WER and time.

Each of the project's LibriVox utterances is decoded the way a closing window holds it (the
utterance alone, 0.4 s of lead-in, the previous utterance's text as the prompt), with each
candidate set of options, ``--rounds`` times; the table shows the WER over the utterances and
the median and worst time per call. The live server uses the row marked "closing pass".

    python bench/closing_pass.py            # ~1 min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project's modules
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench helpers
from _common import SAMPLE_RATE, librivox, machine, table

from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber
from wirescribe.streaming.events import CloseReason
from wirescribe.streaming.policy import StreamingOptions, Window
from wirescribe.streaming.session import live_decode_options
from wirescribe.streaming.window import WindowKind
from wirescribe.wer import word_error_rate

FALLBACK = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def candidates(context: float) -> dict[str, dict[str, object]]:
    """Option sets (beyond language, prompt and token budget) to compare."""
    one = {"without_timestamps": True, "single_pass": True}
    greedy = {"beam_size": 1, "temperature": (0.0,)}
    beam = {"beam_size": 5, "temperature": FALLBACK}
    return {
        "greedy, short context (a live update)": {**greedy, "context_seconds": context, **one},
        "greedy, full context": {**greedy, "context_seconds": None, **one},
        "beam 5, full context, fallback": {**beam, "context_seconds": None, **one},
        "beam 5, full context, timestamps, seek loop": {**beam, "context_seconds": None},
        "beam 5, short context, fallback": {**beam, "context_seconds": context, **one},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="timed decodes of each utterance per option set")
    p.add_argument("--context", type=float, default=8.0, help="the server's encoder context (s)")
    args = p.parse_args(argv)
    model = Transcriber.load(ModelConfig())
    utterances = librivox()
    lead = np.zeros(int(StreamingOptions().lead_in * SAMPLE_RATE), dtype=np.float32)
    inputs = []
    for i, (audio, text) in enumerate(utterances):
        prompt = utterances[i - 1][1] if i else ""
        window = Window(np.concatenate([lead, audio]), 0, prompt, WindowKind.CLOSE, CloseReason.PAUSE)
        inputs.append((window, text))
    model.transcribe(inputs[0][0].audio, DecodeOptions(language="en"))  # warm up
    served = live_decode_options(inputs[0][0], "en", args.context)
    rows = []
    for label, extra in candidates(args.context).items():
        times: list[float] = []
        errors: list[float] = []
        for window, text in inputs:
            options = DecodeOptions(
                language="en", prompt=window.prompt or None, max_new_tokens=int(16 + 8 * window.seconds),
                **extra,  # type: ignore[arg-type]
            )  # fmt: skip
            for r in range(args.rounds):
                started = time.perf_counter()
                result = model.transcribe(window.audio, options)
                times.append(time.perf_counter() - started)
                if r == 0:
                    errors.append(word_error_rate(text, result.text))
        same = (served.beam_size, served.context_seconds, served.temperature) == (
            extra["beam_size"], extra["context_seconds"], extra["temperature"],
        ) and "single_pass" in extra  # fmt: skip
        rows.append([label + (" ← closing pass" if same else ""), float(np.mean(errors)) * 100,
                     float(np.median(times)), max(times)])  # fmt: skip
    print(f"machine {machine()}; {len(inputs)} utterances, {args.rounds} timed decodes each\n")
    print(table(["options", "WER %", "median s", "max s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
