"""The model deployment: owns one faster-whisper model and decodes windows from every session of
the cluster in batches (``@serve.batch``, the adapter's batch path).

Windows arrive one per call from the ingress replicas' schedulers; Serve's batcher gathers
those that wait (up to ``batch_size``, at most ``batch_wait_s`` for more) into one call of
:meth:`~wirescribe.asr.model.Transcriber.transcribe_batch`, run in a thread so the replica
keeps taking windows meanwhile. A batch that fails is run again window by window, so an error
reaches only the window that caused it (as the single server's scheduler does). Each window's
answer carries a :class:`~wirescribe.cluster.remote.Receipt`: replica, node, batch size and the
nodes of the batch's sessions; :meth:`WhisperModel.ledger` sums them up for tests and benches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import numpy as np
from ray import serve

from wirescribe import logs
from wirescribe.asr.model import DecodeOptions, ModelConfig, Transcriber, Transcript
from wirescribe.cluster.nodes import node_label
from wirescribe.cluster.remote import ModelInfo, Receipt
from wirescribe.settings import LogSettings

log = logging.getLogger(__name__)

Window = tuple[np.ndarray, DecodeOptions, str]  # audio, options, the node holding the session
Outcome = tuple[Transcript, Receipt] | Exception


class WhisperModel:
    """One model replica (wrapped by ``serve.deployment`` in :mod:`wirescribe.cluster.serve`)."""

    def __init__(
        self, config: ModelConfig, batch_size: int, batch_wait_s: float, log_settings: LogSettings
    ) -> None:
        logs.configure_unless_configured(log_settings.level, log_settings.format)
        self.transcriber = Transcriber.load(config)
        self.decode.set_max_batch_size(batch_size)  # type: ignore[attr-defined]
        self.decode.set_batch_wait_timeout_s(batch_wait_s)  # type: ignore[attr-defined]
        self.replica = serve.get_replica_context().replica_tag
        self.node = node_label()
        self._windows = 0
        self._sizes: Counter[int] = Counter()
        self._by_node: Counter[str] = Counter()  # windows by the node holding their session
        self._mixed = 0  # batches with windows of sessions held on different nodes
        log.info("model replica %s on %s: batches of up to %d windows", self.replica, self.node, batch_size)

    def describe(self) -> ModelInfo:
        t = self.transcriber
        return ModelInfo(t.name, t.device, t.compute_type, tuple(t.supported_languages), t.default_language)

    async def transcribe(
        self, audio: np.ndarray, options: DecodeOptions, caller: str
    ) -> tuple[Transcript, Receipt]:
        """One window (from an ingress replica's scheduler); batched with whatever waits."""
        outcome = await self.decode((audio, options, caller))
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.005)  # set per deployment in __init__
    async def decode(self, windows: list[Window]) -> list[Outcome]:
        items = [(audio, options) for audio, options, _ in windows]
        started = time.perf_counter()
        outcomes: list[Transcript | Exception]
        try:
            outcomes = list(await asyncio.to_thread(self.transcriber.transcribe_batch, items))
        except Exception as e:  # noqa: BLE001 - each window is run alone, its own error kept
            log.warning("a batch of %d windows failed (%s); running them one by one", len(items), e)
            outcomes = await asyncio.to_thread(self._one_by_one, items)
        callers = tuple(sorted({caller for *_, caller in windows}))
        receipt = Receipt(self.replica, self.node, len(items), callers, time.perf_counter() - started)
        self._count(windows, callers)
        return [o if isinstance(o, Exception) else (o, receipt) for o in outcomes]

    def _one_by_one(self, items: list[tuple[np.ndarray, DecodeOptions]]) -> list[Transcript | Exception]:
        outcomes: list[Transcript | Exception] = []
        for audio, options in items:
            try:
                outcomes.append(self.transcriber.transcribe(audio, options))
            except Exception as e:  # noqa: BLE001 - handed to the window's own caller
                outcomes.append(e)
        return outcomes

    def _count(self, windows: list[Window], callers: tuple[str, ...]) -> None:
        self._windows += len(windows)
        self._sizes[len(windows)] += 1
        self._by_node.update(caller for *_, caller in windows)
        self._mixed += len(callers) > 1

    def ledger(self) -> dict[str, Any]:
        """What this replica has served: windows, model calls by size, mixed-node batches."""
        return {
            "replica": self.replica,
            "node": self.node,
            "windows": self._windows,
            "batch_sizes": dict(self._sizes),
            "windows_by_session_node": dict(self._by_node),
            "mixed_node_batches": self._mixed,
        }
