"""The ``Host`` allow-list: a defence against DNS rebinding.

A web page at ``http://attacker.example`` can make its own name resolve to 127.0.0.1 (or a LAN
address) a moment after it loaded; the browser then lets the page talk to this server as if it
were its own origin — same-origin, so neither CORS nor the Origin check sees anything foreign.
What the browser cannot hide is the name it thinks it is talking to: the request carries
``Host: attacker.example``. So every request and WebSocket whose Host is not one of ours is
refused before any route sees it: HTTP 400, and a WebSocket handshake is answered with the same
400 instead of being accepted (there is no session to send a protocol error on; the page gets
nothing it could read).

Allowed by default, whatever ``STT_ALLOWED_HOSTS`` adds:

* any IP address literal (``127.0.0.1``, ``192.168.1.20``, ``[::1]``): a rebinding page is served
  under a name, so an address in Host means the client really addressed this machine — and
  ``uvicorn server:app --host 0.0.0.0`` keeps working for clients that use the machine's address;
* ``localhost`` and names under ``.localhost`` (RFC 6761: they never leave the machine);
* this machine's own host name (and ``NAME.local``): a page can only be served under that name by
  this machine.

``STT_ALLOWED_HOSTS`` adds names (``stt.example.com``), suffixes (``*.example.com``: the
subdomains, not the name itself) or ``*`` (any Host: the check is off, e.g. behind a proxy that
checks it). A request without a Host header (HTTP/1.0) passes: browsers always send one.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from wirescribe.logsafe import escape_controls

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost",)


def host_name(header: str) -> str:
    """The name or address of a ``Host`` header: port, brackets and a final dot removed,
    lower-cased (``[::1]:8000`` → ``::1``, ``LocalHost.:80`` → ``localhost``)."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def own_names() -> tuple[str, ...]:
    """This machine's host name, bare and as its mDNS ``.local`` name (without a DNS lookup)."""
    name = socket.gethostname().strip().lower().rstrip(".")
    if not name:
        return ()
    short = name.split(".")[0]
    return tuple(dict.fromkeys((name, short, f"{short}.local")))


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` values this server answers (see the module's docstring)."""

    names: frozenset[str] = frozenset()  # exact names, lower case
    suffixes: tuple[str, ...] = ()  # ".example.com" from "*.example.com"
    any_host: bool = False

    @classmethod
    def build(cls, configured: Iterable[str], machine: Iterable[str] | None = None) -> HostPolicy:
        """The defaults plus ``configured`` (``STT_ALLOWED_HOSTS``' entries, lower case)."""
        names = {*LOOPBACK_NAMES, *(own_names() if machine is None else machine)}
        suffixes = [".localhost"]
        any_host = False
        for entry in configured:
            if entry == "*":
                any_host = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                names.add(entry.rstrip("."))
        return cls(frozenset(names), tuple(suffixes), any_host)

    def allows(self, header: str | None) -> bool:
        """Whether a request with this ``Host`` header (None: none sent) may be answered."""
        if self.any_host or header is None:
            return True
        host = host_name(header)
        if not host:
            return False
        return host in self.names or is_ip_literal(host) or host.endswith(self.suffixes)


def _host_header(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return str(value.decode("latin-1"))
    return None


class HostGate:
    """ASGI middleware: answers 400 to an HTTP request or WebSocket handshake whose ``Host`` the
    policy refuses, before any route (or the docs gate, or the lifespan's state) is involved.

    The policy is read per request through ``policy``, so the app's settings (built in the
    lifespan) decide; while they are not known yet (None) the defaults apply."""

    def __init__(self, app: ASGIApp, policy: Callable[[], HostPolicy | None] = lambda: None) -> None:
        self.app = app
        self.policy = policy
        self.defaults = HostPolicy.build(())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = _host_header(scope)
            if not (self.policy() or self.defaults).allows(header):
                log.warning(
                    "refused a request for host %r (not in STT_ALLOWED_HOSTS)", escape_controls(header or "")
                )
                await _refuse(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse("invalid Host header\n", status_code=400)
    if scope["type"] == "http":
        await response(scope, receive, send)
    elif "websocket.http.response" in scope.get("extensions", {}):
        # The handshake's HTTP answer (ASGI's WebSocket Denial Response): no WebSocket is opened.
        await response(scope, receive, send)
    else:  # a server without the extension answers a close before accept with 403
        await send({"type": "websocket.close", "code": 1008})
