"""The application's state, one typed object built by the lifespan and handed to the routes.

Routes get it through the :data:`wirescribe.api.deps.State` dependency, never by reading
attributes off ``app.state``; per-connection state lives in the connection's own objects.
"""

from __future__ import annotations

import asyncio
import os
import socket
from dataclasses import dataclass, field

from wirescribe.api.admission import Admission, AdmissionLimits, AdmissionState
from wirescribe.api.hosts import HostPolicy
from wirescribe.api.lifecycle import LiveConnection
from wirescribe.api.metrics import Metrics
from wirescribe.api.tokens import TemporaryTokens
from wirescribe.asr.scheduler import Scheduler
from wirescribe.asr.types import ModelBackend
from wirescribe.audio.vad import ProbabilityFn
from wirescribe.settings import Settings
from wirescribe.streaming.live_turns import TurnScorer


class FileTurns:
    """Uploads' turns: ``max_jobs`` transcribed at once, FIFO; ``admitted`` counts those waiting
    or running, so the line can be refused (429) before a body is read."""

    def __init__(self, max_jobs: int) -> None:
        self.semaphore = asyncio.Semaphore(max_jobs)
        self.admitted = 0


def default_node() -> str:
    """This server process, as ``ready.node`` names it: host name and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class AppState:
    """What every route of one app shares: settings, the model and its scheduler, metrics."""

    settings: Settings  # resolved: no "auto" left
    transcriber: ModelBackend  # the loaded Transcriber, or a stand-in (the cluster's)
    scheduler: Scheduler
    vad_probability: ProbabilityFn
    metrics: Metrics
    file_turns: FileTurns
    turn_scorer: TurnScorer | None = None  # the end-of-turn model (None: not installed)
    sessions: dict[str, LiveConnection] = field(default_factory=dict)
    node: str = field(default_factory=lambda: default_node())  # ready.node: who holds the session
    draining: bool = False  # shutting down: new sessions and uploads are refused
    hosts: HostPolicy = field(init=False)  # the Host names answered (STT_ALLOWED_HOSTS + defaults)
    tokens: TemporaryTokens | None = field(init=False)  # temporary tokens (None: no STT_TOKEN)
    admission: Admission = field(init=False)  # whether one more live session fits (STT_ADMISSION)

    def __post_init__(self) -> None:
        # Derived from the settings here, so every AppState (tests' too) has them consistent.
        self.hosts = HostPolicy.build(self.settings.allowed_hosts)
        token, ttl = self.settings.token, self.settings.temp_token_max_ttl
        self.tokens = TemporaryTokens(token, ttl) if token is not None else None
        s = self.settings
        mode = (
            s.admission if s.admission != "auto" else "fixed" if s.max_sessions else "measured"
        )  # unresolved
        limits = AdmissionLimits(s.max_sessions, max(1, s.scheduler_workers), mode)
        # Read lazily: the scheduler's stats and the metrics' recent commit latencies.
        self.admission = Admission(
            limits, lambda: self.scheduler.stats(), lambda within: self.metrics.commit_lag_p90(within)
        )

    def admission_state(self) -> AdmissionState:
        """Whether one more live session is admitted now, and the load that says so."""
        return self.admission.state(len(self.sessions))

    def refusal(self) -> str | None:
        """Why a new live session is refused now (``busy``), or None: it is admitted."""
        return self.admission_state().reason

    @property
    def at_capacity(self) -> bool:
        return self.refusal() is not None

    def client_at_capacity(self, client: str | None) -> bool:
        """``client`` (an address; None: unknown, never limited) holds as many live sessions as
        ``STT_MAX_SESSIONS_PER_CLIENT`` allows (0: no limit), so one client cannot take every slot."""
        limit = self.settings.max_sessions_per_client
        if not limit or client is None:
            return False
        return sum(1 for c in self.sessions.values() if c.client == client) >= limit
