"""wirescribe.cluster.remote: the ingress's transcriber against a fake Serve handle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from wirescribe.asr.model import DecodeOptions, Segment, Transcript
from wirescribe.cluster.remote import ModelCallError, ModelInfo, Receipt, RemoteTranscriber

rx = pytest.importorskip("ray.exceptions")

INFO = ModelInfo("tiny.en", "cpu", "int8", ("en",), "en")
AUDIO = np.zeros(16000, dtype=np.float32)


def transcript(text: str) -> Transcript:
    return Transcript((Segment(0.0, 1.0, text),), "en", 1.0)


class Response:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def result(self, timeout_s: float | None = None) -> Any:
        if isinstance(outcome := self.outcome, BaseException):
            raise outcome
        return outcome


class FakeHandle:
    """``handle.transcribe.remote(audio, options, node)`` answering from a script."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[tuple[Any, ...]] = []
        self.transcribe = self

    def remote(self, *args: Any) -> Response:
        self.calls.append(args)
        return Response(self.outcomes.pop(0))


def receipt() -> Receipt:
    return Receipt("r1", "10.0.0.2:abcd", 2, ("10.0.0.1:aaaa", "10.0.0.2:bbbb"), 0.1)


def test_it_looks_like_the_local_transcriber() -> None:
    remote = RemoteTranscriber(FakeHandle(), INFO, "10.0.0.1:aaaa")
    assert (remote.name, remote.device, remote.compute_type) == ("tiny.en", "cpu", "int8")
    assert remote.supported_languages == ["en"] and remote.default_language == "en"


def test_a_window_goes_to_the_handle_with_the_sessions_node() -> None:
    handle = FakeHandle((transcript("hello"), receipt()))
    remote = RemoteTranscriber(handle, INFO, "10.0.0.1:aaaa")
    options = DecodeOptions(prompt="earlier")
    assert remote.transcribe(AUDIO, options).text == "hello"
    ((audio, sent, node),) = handle.calls
    assert audio is AUDIO and sent == options and node == "10.0.0.1:aaaa"
    assert remote.last_receipt == receipt()


def test_a_replica_that_died_costs_a_retry_not_the_window() -> None:
    handle = FakeHandle(
        rx.ActorDiedError(), rx.ActorUnavailableError("gone", None), (transcript("ok"), receipt())
    )
    remote = RemoteTranscriber(handle, INFO, "n", timeout=10)
    assert remote.transcribe(AUDIO).text == "ok"
    assert remote.retries == 2 and len(handle.calls) == 3


def test_the_models_own_error_is_not_retried() -> None:
    handle = FakeHandle(ValueError("bad window"), (transcript("never"), receipt()))
    remote = RemoteTranscriber(handle, INFO, "n")
    with pytest.raises(ValueError, match="bad window"):
        remote.transcribe(AUDIO)
    assert len(handle.calls) == 1


def test_no_replica_within_the_timeout_is_an_error() -> None:
    handle = FakeHandle(*[rx.ActorDiedError() for _ in range(100)])
    remote = RemoteTranscriber(handle, INFO, "n", timeout=0.5)
    with pytest.raises(ModelCallError):
        remote.transcribe(AUDIO)
    assert 1 <= len(handle.calls) <= 4
    handle = FakeHandle(TimeoutError())
    with pytest.raises(ModelCallError):
        RemoteTranscriber(handle, INFO, "n", timeout=0.5).transcribe(AUDIO)


def test_a_batch_sends_every_window_before_waiting() -> None:
    handle = FakeHandle((transcript("a"), receipt()), (transcript("b"), receipt()))
    remote = RemoteTranscriber(handle, INFO, "n")
    out = remote.transcribe_batch([(AUDIO, DecodeOptions()), (AUDIO, DecodeOptions())])
    assert [t.text for t in out] == ["a", "b"]
