"""A live session's turn-taking: the audio the end-of-turn model hears, the model called once per
pause, and the state machine (:mod:`~wirescribe.streaming.turn_taking`) told what happened.

The model runs off the event loop (its scorer's business, ``asr/turn_model.py``); the machine
and the policy are only touched here, on the loop. The policy learns the machine's verdict
through :attr:`~wirescribe.streaming.policy.StreamingPolicy.turn_hint`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import numpy as np

from wirescribe.streaming.events import Event, SessionConfig
from wirescribe.streaming.planner import TurnHint
from wirescribe.streaming.policy import SR, StreamingPolicy
from wirescribe.streaming.turn_taking import TurnTaker

log = logging.getLogger(__name__)

MODEL_SECONDS = 8.0  # the most audio the end-of-turn model hears (Smart Turn: 8 s)
LEAD_IN = 0.2  # seconds before the turn's speech kept in what the model hears


class TurnScorer(Protocol):
    """The end-of-turn model, as the session sees it."""

    async def score(self, audio: np.ndarray) -> float:
        """The probability that the speaker's turn is complete at the end of ``audio`` (16 kHz)."""


class LiveTurns:
    """Turn-taking for one live session."""

    def __init__(self, config: SessionConfig, scorer: TurnScorer | None) -> None:
        self.taker = TurnTaker(config)
        self._scorer = scorer
        self._blocks: deque[np.ndarray] = deque()
        self._kept = 0  # samples in _blocks

    @classmethod
    def reconfigured(
        cls,
        turns: LiveTurns | None,
        config: SessionConfig,
        scorer: TurnScorer | None,
        policy: StreamingPolicy,
    ) -> LiveTurns | None:
        """A session's turn-taking after ``configure``: started when turns were turned on mid-session
        (OpenAI's ``session.update`` comes after the session began), dropped when turned off."""
        if not config.turns:
            policy.turn_hint = TurnHint.NONE
            return None
        if turns is None:
            return cls(config, scorer)
        turns.taker.configure(config)
        return turns

    async def after_block(self, block: np.ndarray, policy: StreamingPolicy) -> bool:
        """A block of audio is in the policy: kept for the model, the pause judged; when that
        changed the policy's hint, the policy has settled on it and True says so (a closing pass
        may be due: the session wakes its loop)."""
        self.push(block)
        total, taker, before = policy.total_samples, self.taker, policy.turn_hint
        taker.tick(total, policy.last_speech_end(), SR)
        if taker.needs_score(total, SR):
            end = taker.speech_end
            assert end is not None
            policy.turn_hint = TurnHint.JUDGING
            probability = await self._score(total)
            taker.scored(probability, end, policy.total_samples, SR)
            if log.isEnabledFor(logging.DEBUG):  # the verdict is built only for the log
                log.debug("turn pause at %.2f s scored %s at %.2f s: hint %s, %s", end / SR, probability,
                          policy.total_samples / SR, taker.hint.value, taker.verdict())  # fmt: skip
        policy.turn_hint = taker.hint
        if policy.turn_hint is before:
            return False
        policy.settle()
        return True

    def push(self, block: np.ndarray) -> None:
        """Decoded audio, in order: the last :data:`MODEL_SECONDS` are kept."""
        self._blocks.append(block)
        self._kept += len(block)
        limit = int(MODEL_SECONDS * SR)
        while self._blocks and self._kept - len(self._blocks[0]) >= limit:
            self._kept -= len(self._blocks.popleft())

    def observe(self, events: Iterable[Event], policy: StreamingPolicy) -> list[Event]:
        """The session's events with the turn events they imply, in order; the policy's hint
        follows the machine (a turn that ended no longer hurries its utterance)."""
        for event in events:
            self.taker.observe(event)
        policy.turn_hint = self.taker.hint
        return self.taker.take()

    async def _score(self, total: int) -> float | None:
        if self._scorer is None:
            return None
        start = total - int(MODEL_SECONDS * SR)
        if (began := self.taker.turn_start) is not None:
            start = max(start, int((began - LEAD_IN) * SR))
        audio = self._recent(total, start)
        try:
            return await self._scorer.score(audio)
        except Exception:  # the turn model failed: the transcript and the silence decide
            log.exception("the end-of-turn model failed; this pause is judged without it")
            return None

    def _recent(self, total: int, start: int) -> np.ndarray:
        audio = np.concatenate(list(self._blocks)) if self._blocks else np.zeros(0, np.float32)
        return audio[max(0, len(audio) - (total - start)) :]
