"""Helpers for the hardening tests: raw WebSocket exchanges, /health, server process figures."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import websockets
from websockets.typing import Origin

from tests.support import LiveServer
from wirescribe.client import Received, StreamResult

PROTOCOL_TYPES = {"ready", "transcript", "final", "error"}
# Error codes that end the session, and their close codes (PROTOCOL.md); ``bad_message`` does
# not end it, ``timeout`` (idle) ends it with a final and 1000.
CLOSE_FOR = {"bad_request": 1008, "unauthorized": 1008, "bad_audio": 1003, "too_large": 1009,
             "busy": 1013, "internal": 1011}  # fmt: skip
ERROR_CODES = {*CLOSE_FOR, "bad_message", "timeout"}


async def exchange(
    url: str,
    frames: Sequence[bytes | str],
    *,
    interval: float | None = None,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    timeout: float = 30.0,
    close: bool = False,
) -> StreamResult:
    """Send ``frames`` as they are (``interval`` s apart; no automatic eof) and collect every
    reply until the server closes (or, with ``close``, close the connection after the last
    frame); the whole exchange must end within ``timeout`` s."""
    result = StreamResult()
    start = time.perf_counter()

    async def run() -> None:
        async with websockets.connect(
            url,
            max_size=None,
            additional_headers=headers,
            origin=Origin(origin) if origin is not None else None,
            open_timeout=10,
        ) as ws:

            async def reader() -> None:
                try:
                    async for raw in ws:
                        result.messages.append(Received(json.loads(raw), time.perf_counter() - start))
                except websockets.ConnectionClosed:
                    pass

            reading = asyncio.create_task(reader())
            try:
                for i, frame in enumerate(frames):
                    if interval:
                        await asyncio.sleep(max(0.0, start + i * interval - time.perf_counter()))
                    await ws.send(frame)
            except websockets.ConnectionClosed:
                pass
            if close:
                await ws.close()
            await reading
        result.close_code = ws.close_code

    await asyncio.wait_for(run(), timeout)
    return result


def final_of(result: StreamResult) -> dict[str, Any]:
    """The exchange's final message (the test fails here if there was none)."""
    assert result.final is not None, [r.message for r in result.messages][-3:]
    return result.final


def health(server: LiveServer) -> dict[str, Any]:
    with urllib.request.urlopen(server.http + "/health", timeout=5) as reply:
        state: dict[str, Any] = json.loads(reply.read())
        return state


def wait_until_idle(server: LiveServer, timeout: float = 15.0) -> dict[str, Any]:
    """Poll until the server holds no session and no ffmpeg child; returns the last /health."""
    deadline = time.monotonic() + timeout
    while True:
        state = health(server)
        children = server.ffmpeg_children()
        if (state["sessions"] == 0 and not children) or time.monotonic() > deadline:
            return {**state, "ffmpeg_children": children}
        time.sleep(0.05)  # polling the server's state, not waiting for readiness


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def assert_well_formed(result: StreamResult, client_closed: bool = False) -> None:
    """Every reply is a protocol message; errors carry a known code and end with their close code;
    a final comes last and is followed by 1000 (or 1001 on shutdown). When the client closed
    first (``client_closed``) the close code is its own echo and not checked."""
    kinds = [r.message.get("type") for r in result.messages]
    assert set(kinds) <= PROTOCOL_TYPES, kinds
    assert not any("Traceback" in json.dumps(r.message) for r in result.messages)
    for m in result.errors:
        assert m["code"] in ERROR_CODES and isinstance(m["message"], str), m
    fatal = [m["code"] for m in result.errors if m["code"] in CLOSE_FOR]
    if fatal:
        assert len(fatal) == 1 and result.final is None, kinds
        assert client_closed or result.close_code == CLOSE_FOR[fatal[0]], (fatal, result.close_code)
    elif "final" in kinds:
        assert kinds[-1] == "final" and kinds.count("final") == 1, kinds
        assert client_closed or result.close_code in (1000, 1001), result.close_code
