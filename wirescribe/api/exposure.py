"""One warning at start-up when the server listens beyond loopback without an access token.

The app is not told uvicorn's ``--host``: ASGI's lifespan carries no address, uvicorn binds its
sockets only after the lifespan has started (and gunicorn, ``--fd`` or systemd hand them in
already bound), and reading ``sys.argv`` would guess at one server's command line. What does not
guess is the process itself: the TCP sockets it listens on. So the lifespan starts
:func:`warn_when_exposed`, which looks at this process's listening sockets until it finds some
(right after uvicorn binds them) and logs one warning if any is bound beyond loopback while no
``STT_TOKEN`` is set. A Unix socket (``--uds``) is local and finds nothing to warn about.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import stat
from collections.abc import Iterable

log = logging.getLogger(__name__)

_FD_DIRS = ("/proc/self/fd", "/dev/fd")  # Linux; macOS and the BSDs


def listening_addresses() -> list[tuple[str, int]]:
    """(address, port) of every TCP socket this process listens on; empty where the process's
    descriptors cannot be listed."""
    fd_dir = next((d for d in _FD_DIRS if os.path.isdir(d)), None)
    if fd_dir is None:
        return []
    found: list[tuple[str, int]] = []
    for name in os.listdir(fd_dir):
        try:
            fd = int(name)
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: closing it leaves ours open
                if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
                    continue
                if not sock.getsockopt(socket.SOL_SOCKET, getattr(socket, "SO_ACCEPTCONN", 30)):
                    continue
                host, port = sock.getsockname()[:2]
                found.append((str(host), int(port)))
        except (ValueError, OSError):  # not a number, closed meanwhile, not inspectable
            continue
    return found


def beyond_loopback(addresses: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The addresses among ``addresses`` that other machines may reach (0.0.0.0, ::, a LAN IP)."""
    out = []
    for host, port in addresses:
        try:
            ip = ipaddress.ip_address(host.split("%")[0])
        except ValueError:
            out.append((host, port))
            continue
        mapped = getattr(ip, "ipv4_mapped", None)
        if not (ip.is_loopback or (mapped is not None and mapped.is_loopback)):
            out.append((host, port))
    return out


def describe(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def warn_when_exposed(has_token: bool, *, interval: float = 0.05, patience: float = 10.0) -> None:
    """Wait (up to ``patience`` s) for the server's listening sockets; warn once if any is
    reachable beyond loopback and there is no token. Run as a task of the lifespan."""
    if has_token:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while True:
        addresses = await asyncio.to_thread(listening_addresses)
        if addresses or loop.time() >= deadline:
            break
        await asyncio.sleep(interval)  # uvicorn binds right after the lifespan's start-up returns
    exposed = beyond_loopback(addresses)
    if exposed:
        log.warning(
            "listening on %s beyond loopback without STT_TOKEN: anyone who can reach the port can use "
            "the server; set STT_TOKEN (and STT_ALLOWED_ORIGINS), see docs/security.md",
            ", ".join(describe(a) for a in exposed),
        )
