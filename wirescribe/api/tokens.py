"""Temporary tokens: short-lived, signed, for browsers — so ``STT_TOKEN`` never has to reach one.

A backend that holds ``STT_TOKEN`` asks ``POST /v1/auth/token`` for a token (:mod:`auth`), hands
it to its page, and the page connects with it (``?token=`` or ``Authorization: Bearer``). The
token is stateless: ``wst1.<claims>.<signature>``, the claims a base64url JSON object, the
signature HMAC-SHA256 over ``wst1.<claims>`` with a key derived from ``STT_TOKEN`` (never the
token itself: the key is for this one purpose). Nothing is stored at minting, so any number of
tokens cost the server nothing, and restarting the server with another ``STT_TOKEN`` voids them
all.

Claims: ``id`` (random), ``exp`` (Unix seconds: the token opens sessions until then; a session
already open runs on), optionally ``origin`` (the one browser ``Origin`` allowed to use it) and
``max`` (how many sessions it may open). The count is the one piece of state: a small map of
token ids to uses, bounded (:data:`MAX_COUNTED`), its entries dropped when their token expires.
It lives in the server process, so a restart (or another process behind a balancer) forgets it:
with ``max`` the token is good for at most ``max`` sessions per process within its short life.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = "wst1."
DEFAULT_TTL = 60.0  # seconds a page has to connect: enough to load and ask for the microphone
MAX_COUNTED = 4096  # token ids whose uses are counted at once
_KEY_LABEL = b"wirescribe temporary token signing key v1"


class TokenRefused(Exception):
    """A temporary token that cannot be used; the message says why (it holds no secret)."""


@dataclass(frozen=True)
class Grant:
    """What a valid temporary token allows."""

    id: str
    expires_at: float  # Unix seconds
    origin: str | None = None  # the only Origin it may be used from
    max_sessions: int | None = None  # sessions it may open (None: any number until it expires)

    def claims(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "exp": self.expires_at}
        if self.origin is not None:
            out["origin"] = self.origin
        if self.max_sessions is not None:
            out["max"] = self.max_sessions
        return out


def is_temporary(token: str) -> bool:
    """Whether ``token`` has the shape of a temporary token (not whether it is valid)."""
    return token.startswith(PREFIX)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TemporaryTokens:
    """Mints and checks the temporary tokens of one server (one ``STT_TOKEN``)."""

    def __init__(
        self,
        secret: str,
        max_ttl: float,
        *,
        clock: Callable[[], float] = time.time,
        max_counted: int = MAX_COUNTED,
    ) -> None:
        self._key = hmac.new(secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.max_ttl = max_ttl
        self._clock = clock
        self._max_counted = max_counted
        self._uses: dict[str, tuple[int, float]] = {}  # token id -> (sessions opened, expires at)

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def mint(
        self, ttl: float = DEFAULT_TTL, origin: str | None = None, max_sessions: int | None = None
    ) -> tuple[str, Grant]:
        """A new token valid for ``ttl`` seconds (the caller has checked the arguments)."""
        if not 0 < ttl <= self.max_ttl:
            raise ValueError(f"ttl must be from 1 to {self.max_ttl:g} seconds")
        grant = Grant(secrets.token_hex(12), round(self._clock() + ttl, 3), origin, max_sessions)
        claims = _b64(json.dumps(grant.claims(), separators=(",", ":")).encode())
        body = PREFIX + claims
        return f"{body}.{self._sign(body)}", grant

    def verify(self, token: str, origin: str | None) -> Grant:
        """The grant of a valid ``token`` presented with this ``Origin`` header (None: none), or
        :class:`TokenRefused`. Uses are not counted here: see :meth:`use`."""
        body, _, signature = token.rpartition(".")
        if not body.startswith(PREFIX) or not hmac.compare_digest(
            signature.encode(), self._sign(body).encode()
        ):
            raise TokenRefused("the temporary token is not valid (bad signature, or another server's)")
        try:  # signed by us: the claims are ours, but read them defensively all the same
            claims = json.loads(_unb64(body[len(PREFIX) :]))
            grant = Grant(str(claims["id"]), float(claims["exp"]), claims.get("origin"), claims.get("max"))
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise TokenRefused("the temporary token is not valid (malformed)") from e
        if self._clock() >= grant.expires_at:
            raise TokenRefused("the temporary token has expired: ask for a new one")
        if grant.origin is not None and (origin or "").strip().rstrip("/").lower() != grant.origin:
            raise TokenRefused("the temporary token is bound to another origin")
        return grant

    def use(self, grant: Grant) -> None:
        """Count one session opened with ``grant``; :class:`TokenRefused` once it has opened
        ``max_sessions``. Synchronous: check and count cannot interleave with another's."""
        if grant.max_sessions is None:
            return
        now = self._clock()
        used, _ = self._uses.get(grant.id, (0, grant.expires_at))
        if used >= grant.max_sessions:
            raise TokenRefused(f"the temporary token has opened its {grant.max_sessions} session(s) already")
        if grant.id not in self._uses:
            self._prune(now)
            if len(self._uses) >= self._max_counted:
                raise TokenRefused("too many counted temporary tokens are in use: try again shortly")
        self._uses[grant.id] = (used + 1, grant.expires_at)

    def _prune(self, now: float) -> None:
        for token_id in [k for k, (_, expires) in self._uses.items() if expires <= now]:
            del self._uses[token_id]

    @property
    def counted(self) -> int:
        """Token ids whose uses are held now (expired ones go at the next new id)."""
        return len(self._uses)
