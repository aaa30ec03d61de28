"""Credentials in ``Sec-WebSocket-Protocol``: how the vendors' browser SDKs authenticate a
WebSocket, and the subprotocol the server must select for the browser to open it.

A browser's ``WebSocket`` cannot set headers, so the vendors' browser clients put the key in the
list of subprotocols they offer:

* Deepgram (``@deepgram/sdk`` 5 in a browser): ``token, KEY`` for an API key, ``bearer, TOKEN``
  for a temporary token, followed by ``x-deepgram-session-id, UUID``: four items, in pairs.
* OpenAI (the ``openai`` package's Realtime WebSocket in a browser, and OpenAI's documented
  browser way): ``realtime, openai-insecure-api-key.KEY``, maybe with
  ``openai-organization.ORG``, ``openai-project.PROJECT``; the package's older beta client adds
  ``openai-beta.realtime-v1``, a browser's way of sending ``OpenAI-Beta: realtime=v1`` (it then
  speaks the beta dialect).

A browser fails the handshake when it offered subprotocols and the server selected none
(Chromium: "Sent non-empty 'Sec-WebSocket-Protocol' header but no response was received"), so
the server selects what each service selects: the scheme word (``token`` or ``bearer``, as
offered) for Deepgram, ``realtime`` for OpenAI. A credential is never selected: that would echo
it into the response. The native ``/ws/transcribe`` protocol has no subprotocols (its browsers
use ``?token=``).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["credential", "offered", "openai_beta", "selected"]

Scope = Mapping[str, Any]  # a WebSocket's ASGI scope (``websocket.scope``)

DEEPGRAM = "deepgram"  # the dialects' names (wirescribe.api.compat.dialects)
OPENAI = "openai-realtime"
DEEPGRAM_SCHEMES = ("token", "bearer")  # API key, temporary token
OPENAI_PROTOCOL = "realtime"
OPENAI_KEY_PREFIX = "openai-insecure-api-key."
OPENAI_BETA = "openai-beta.realtime-v1"  # a browser's OpenAI-Beta: realtime=v1 (the beta client)


def offered(scope: Scope) -> tuple[str, ...]:
    """The subprotocols a WebSocket client offered, in its order (the ASGI scope has them
    parsed from every ``Sec-WebSocket-Protocol`` header)."""
    return tuple(str(p).strip() for p in scope.get("subprotocols") or ())


def _deepgram_pair(protocols: Sequence[str]) -> tuple[str, str] | None:
    """(scheme as offered, credential): the first ``token``/``bearer`` item and the one after it."""
    for scheme, value in itertools.pairwise(protocols):
        if scheme.lower() in DEEPGRAM_SCHEMES and value:
            return scheme, value
    return None


def credential(dialect: str, scope: Scope) -> str | None:
    """The key or token a browser client of ``dialect`` put among its subprotocols, if any."""
    protocols = offered(scope)
    if dialect == DEEPGRAM:
        pair = _deepgram_pair(protocols)
        return pair[1] if pair else None
    if dialect == OPENAI:
        keys = [p[len(OPENAI_KEY_PREFIX) :] for p in protocols if p.startswith(OPENAI_KEY_PREFIX)]
        return keys[0] if keys and keys[0] else None
    return None


def selected(dialect: str, scope: Scope) -> str | None:
    """The subprotocol to answer the handshake with: the one ``dialect``'s service selects
    when its browser clients offer it, else None (none was offered that the service knows)."""
    protocols = offered(scope)
    if dialect == DEEPGRAM:
        pair = _deepgram_pair(protocols)
        return pair[0] if pair else None
    if dialect == OPENAI and OPENAI_PROTOCOL in protocols:
        return OPENAI_PROTOCOL
    return None


def openai_beta(scope: Scope) -> bool:
    """Whether an OpenAI browser client asked for the beta dialect (``openai-beta.realtime-v1``,
    what the ``OpenAI-Beta: realtime=v1`` header says for clients that can set headers)."""
    return OPENAI_BETA in offered(scope)
