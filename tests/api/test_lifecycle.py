"""lifecycle.py: draining live sessions, and the signal hook in front of the server's handler."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType

from wirescribe.api.lifecycle import SHUTDOWN, LiveConnection, ShutdownHook, drain


async def fake_session(connection: LiveConnection, finish_in: float, log: list[str]) -> None:
    """Stands in for the server's session: on a stop request, finish after ``finish_in`` s."""
    reason = await connection.stop_requested()
    await asyncio.sleep(finish_in)
    log.append(f"{connection.session_id}:{reason}")
    connection.mark_done()


def test_drain_stops_every_session_and_waits_for_them() -> None:
    async def main() -> tuple[int, list[str]]:
        log: list[str] = []
        conns = [LiveConnection(f"s{i}") for i in range(3)]
        tasks = [asyncio.create_task(fake_session(c, 0.05 * i, log)) for i, c in enumerate(conns)]
        left = await drain(conns, grace=5)
        await asyncio.gather(*tasks)
        return left, log

    left, log = asyncio.run(main())
    assert left == 0
    assert sorted(log) == [f"s{i}:{SHUTDOWN}" for i in range(3)]


def test_drain_gives_up_after_the_grace_period() -> None:
    async def main() -> tuple[int, float]:
        slow = LiveConnection("slow")
        task = asyncio.create_task(fake_session(slow, 10, []))
        loop = asyncio.get_running_loop()
        started = loop.time()
        left = await drain([slow], grace=0.2)
        took = loop.time() - started
        task.cancel()
        return left, took

    left, took = asyncio.run(main())
    assert left == 1 and took < 2


def test_drain_with_nothing_live_returns_at_once() -> None:
    assert asyncio.run(drain([], grace=10)) == 0


def test_first_stop_reason_wins() -> None:
    async def main() -> str:
        c = LiveConnection("x")
        c.request_stop("wall_limit")
        c.request_stop(SHUTDOWN)
        return await c.stop_requested()

    assert asyncio.run(main()) == "wall_limit"


def test_hook_drains_before_forwarding_the_signal() -> None:
    """SIGTERM reaches the previous (server's) handler only after the drain finished; a second
    signal during the drain is forwarded at once."""
    events: list[str] = []

    def server_handler(sig: int, frame: FrameType | None) -> None:
        events.append(f"server:{signal.Signals(sig).name}")

    async def before_exit() -> None:
        events.append("drain:start")
        await asyncio.sleep(0.2)
        events.append("drain:end")

    async def main() -> None:
        hook = ShutdownHook(before_exit)
        assert hook.install()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)  # impatient: forwarded at once
            await asyncio.sleep(0.5)
        finally:
            hook.uninstall()
        assert signal.getsignal(signal.SIGTERM) is server_handler

    previous = {s: signal.signal(s, server_handler) for s in ShutdownHook.SIGNALS}
    try:
        asyncio.run(main())
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    assert events == ["drain:start", "server:SIGINT", "drain:end"]


def test_hook_stays_out_of_the_way_of_default_handlers() -> None:
    async def main() -> bool:
        hook = ShutdownHook(asyncio.sleep)  # type: ignore[arg-type]
        installed = hook.install()
        hook.uninstall()
        return installed

    previous = {s: signal.signal(s, signal.SIG_DFL) for s in ShutdownHook.SIGNALS}
    try:
        assert asyncio.run(main()) is False
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
