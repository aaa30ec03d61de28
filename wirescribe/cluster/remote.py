"""A transcriber that looks like the local one to the app, and sends each window to the model
deployment through its Serve handle.

The ingress replica's scheduler calls :meth:`RemoteTranscriber.transcribe` from its worker
threads, one window per call, exactly as it calls a local model: fairness, freshness and one
window in flight per session stay where they are. Batching happens on the other side, where a
model replica gathers windows from every ingress replica of the cluster (``@serve.batch``).

A model replica that dies mid-call (killed, its node lost, a redeploy) costs the window a
retry on another replica, not the session: :meth:`transcribe` sends it again until
``timeout`` runs out. An error raised by the model itself is the caller's and is not retried.
Nothing here imports ``ray`` at module level; the handle is any object with Serve's
``method.remote(...).result(timeout_s=...)`` shape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wirescribe.asr.model import BatchItem, DecodeOptions, Transcript

log = logging.getLogger(__name__)

_DEFAULT_OPTIONS = DecodeOptions()
RETRY_PAUSE = 0.2  # between attempts after a replica went away: Serve reroutes meanwhile


@dataclass(frozen=True)
class ModelInfo:
    """What the model deployment says about its model (the attributes the app reads)."""

    name: str
    device: str
    compute_type: str
    supported_languages: tuple[str, ...]
    default_language: str | None


@dataclass(frozen=True)
class Receipt:
    """How one window was served: by which model replica, on which node, in what batch."""

    replica: str
    node: str  # the model replica's node
    batch_size: int  # windows in the model call
    batch_nodes: tuple[str, ...]  # the nodes holding the sessions of those windows
    seconds: float  # the model call's duration


class ModelCallError(Exception):
    """No model replica answered the window within the call timeout."""


def _replica_gone_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a replica that died or cannot be reached (imported only when used)."""
    from ray import exceptions as rx

    return (rx.RayActorError, rx.ActorUnavailableError, rx.ObjectLostError)


class RemoteTranscriber:
    """Stands in for :class:`~wirescribe.asr.model.Transcriber` on an ingress replica."""

    load_seconds: float | None = None  # nothing is loaded here

    def __init__(self, handle: Any, info: ModelInfo, node: str, timeout: float = 60.0) -> None:
        self._handle = handle
        self._node = node
        self._timeout = timeout
        self.name = info.name
        self.device = info.device
        self.compute_type = info.compute_type
        self.supported_languages = list(info.supported_languages)
        self.default_language = info.default_language
        self.retries = 0  # windows sent again after a replica went away
        self.last_receipt: Receipt | None = None

    def transcribe(self, audio: np.ndarray, options: DecodeOptions = _DEFAULT_OPTIONS) -> Transcript:
        """Blocking (a scheduler worker thread): the window's transcript from a model replica."""
        transcript, receipt = self._call(audio, options)
        self.last_receipt = receipt
        return transcript

    def transcribe_batch(self, items: Sequence[BatchItem]) -> list[Transcript]:
        """Several windows at once, each its own call (the model replicas batch them with
        windows of other sessions); results in the order of ``items``."""
        responses = [self._send(audio, options) for audio, options in items]
        return [self._wait(response, audio, options)[0] for response, (audio, options) in zip(
            responses, items, strict=True
        )]  # fmt: skip

    def _send(self, audio: np.ndarray, options: DecodeOptions) -> Any:
        return self._handle.transcribe.remote(audio, options, self._node)

    def _call(self, audio: np.ndarray, options: DecodeOptions) -> tuple[Transcript, Receipt]:
        return self._wait(self._send(audio, options), audio, options)

    def _wait(self, response: Any, audio: np.ndarray, options: DecodeOptions) -> tuple[Transcript, Receipt]:
        gone = _replica_gone_errors()
        deadline = time.monotonic() + self._timeout
        while True:
            left = deadline - time.monotonic()
            try:
                result: tuple[Transcript, Receipt] = response.result(timeout_s=max(left, 0.01))
                return result
            except gone as e:
                if time.monotonic() + RETRY_PAUSE >= deadline:
                    raise ModelCallError(f"no model replica answered in {self._timeout:g} s: {e}") from e
                self.retries += 1
                log.warning("a model replica went away (%s); sending the window again", type(e).__name__)
                time.sleep(RETRY_PAUSE)  # a worker thread: Serve's router drops the dead replica
                response = self._send(audio, options)
            except TimeoutError as e:
                raise ModelCallError(f"no model replica answered in {self._timeout:g} s") from e
