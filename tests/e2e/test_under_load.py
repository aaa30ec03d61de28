"""End to end under load: more real-time streams than model workers, on dense speech (short gaps
between utterances). Every session commits words while it streams, none waits for ``eof``; the
fairness metrics count what happened."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support import LiveServer, Utterance, join_utterances, parse_metrics, start_server, stop_server
from wirescribe.audio.decode import SAMPLE_RATE
from wirescribe.client import StreamResult, stream, webm_slices
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e

STREAMS = 4  # on one model worker


@pytest.fixture(scope="module")
def one_worker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("load"),
        env={"STT_SCHEDULER_WORKERS": "1", "STT_CPU_THREADS": "1", "STT_MAX_SESSIONS_PER_CLIENT": "0"},
    )
    yield server
    stop_server(server)


def first_commit_at(result: StreamResult) -> float | None:
    return next((r.at for r in result.messages if r.message.get("committed")), None)


def test_more_streams_than_workers_all_commit_before_eof(
    one_worker_server: LiveServer, utterances: list[Utterance], tmp_path: Path
) -> None:
    audio, reference = join_utterances(utterances[:3], pause=0.5)  # dense: 0.5 s gaps, ~20 s
    chunks = webm_slices(audio)

    async def together() -> list[StreamResult]:
        return list(await asyncio.gather(*(stream(one_worker_server.ws, chunks) for _ in range(STREAMS))))

    results = asyncio.run(together())
    seconds = len(audio) / SAMPLE_RATE
    for result in results:
        assert result.final is not None and result.eof_at is not None and result.close_code == 1000
        first = first_commit_at(result)
        # Words commit while the session streams, long before eof: no session waits for the end.
        assert first is not None and first < result.eof_at - seconds / 2, (first, result.eof_at)
        committed_at_eof = [r.message["committed"] for r in result.messages
                            if r.message.get("type") == "transcript" and r.at <= result.eof_at]  # fmt: skip
        # Most of the text is committed before eof (the last utterance's words may wait for it).
        assert len(committed_at_eof[-1].split()) >= 0.6 * len(result.final["text"].split())
        final_at = next(r.at for r in result.messages if r.message.get("type") == "final")
        assert final_at - result.eof_at < 3.0
    # Accuracy is the policy's business (tests/e2e/test_e2e_stream.py, lost utterances
    # tests/e2e/test_no_loss.py); here a sanity bound. Measured with the rebuilt core (4 runs, 16
    # sessions): 0.000-0.136 per session, mean 0.068-0.108, tiny.en's "old supposed" for "ill
    # disposed" twice being 0.091. (The bound was 0.25 while a gap shorter than the endpointing
    # lost "do for them. He was" under this load: that loss with the usual slips is 9/44 > 0.2.)
    wers = [word_error_rate(reference, r.final["text"]) for r in results if r.final]
    assert np.mean(wers) <= 0.12 and max(wers) <= 0.2, [r.final["text"] for r in results if r.final]
    with urllib.request.urlopen(f"{one_worker_server.http}/metrics") as reply:
        metrics = parse_metrics(reply.read().decode())
    words = sum(len(r.final["text"].split()) for r in results if r.final)
    assert metrics["stt_commit_latency_seconds_count"] >= 0.8 * words
    assert metrics["stt_session_lag_seconds_count"] >= STREAMS * 10
    assert metrics['stt_model_windows_total{kind="closing"}'] >= STREAMS
    latency = np.array([metrics[f'stt_commit_latency_seconds_bucket{{le="{le}"}}'] for le in ("4.0", "+Inf")])
    assert latency[0] >= 0.9 * latency[1]  # 90 % of the words committed within 4 s
