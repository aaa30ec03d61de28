"""api/hosts.py (the Host allow-list) and api/exposure.py (listening beyond loopback), as units."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from wirescribe.api import exposure
from wirescribe.api.hosts import HostPolicy, host_name


@pytest.mark.parametrize(
    ("header", "name"),
    [("localhost:8000", "localhost"), ("[::1]:8000", "::1"), ("LocalHost.", "localhost"),
     ("127.0.0.1", "127.0.0.1"), ("Example.COM:443", "example.com"), ("[::1", "[::1")],
)  # fmt: skip
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("configured", "header", "ok"),
    [
        ((), "localhost:8000", True),
        ((), "app.localhost", True),
        ((), "127.0.0.1:8000", True),
        ((), "192.168.1.20:8000", True),  # --host 0.0.0.0, a client using the machine's address
        ((), "[::1]:8000", True),
        ((), "mybox", True),  # this machine's name (given below)
        ((), "mybox.local:8000", True),
        ((), None, True),  # HTTP/1.0 without Host: not a browser
        ((), "attacker.example", False),  # DNS rebinding
        ((), "localhost.attacker.example", False),
        ((), "127.0.0.1.nip.io", False),
        ((), "", False),
        (("stt.example.com",), "STT.example.com:443", True),
        (("stt.example.com",), "evil.stt.example.com", False),
        (("*.example.com",), "a.example.com", True),
        (("*.example.com",), "example.com", False),
        (("*.example.com",), "a.example.com.evil", False),
        (("*",), "attacker.example", True),
    ],
)
def test_host_policy(configured: tuple[str, ...], header: str | None, ok: bool) -> None:
    assert HostPolicy.build(configured, machine=("mybox", "mybox.local")).allows(header) is ok


def test_beyond_loopback() -> None:
    given = [("127.0.0.1", 1), ("127.0.0.2", 2), ("::1", 3), ("::ffff:127.0.0.1", 4),
             ("0.0.0.0", 5), ("::", 6), ("192.168.1.20", 7)]  # fmt: skip
    assert exposure.beyond_loopback(given) == [("0.0.0.0", 5), ("::", 6), ("192.168.1.20", 7)]
    assert exposure.describe(("::", 8000)) == "[::]:8000"


def test_listening_addresses_sees_this_process_sockets() -> None:
    with socket.socket() as listening, socket.socket() as bound_only:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        bound_only.bind(("127.0.0.1", 0))
        found = exposure.listening_addresses()
        assert ("127.0.0.1", listening.getsockname()[1]) in found
        assert ("127.0.0.1", bound_only.getsockname()[1]) not in found


def test_warns_once_when_exposed_without_a_token(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(exposure, "listening_addresses", lambda: [("0.0.0.0", 8000)])
    with caplog.at_level(logging.WARNING, logger=exposure.__name__):
        asyncio.run(exposure.warn_when_exposed(has_token=True))
        assert caplog.records == []
        asyncio.run(exposure.warn_when_exposed(has_token=False))
    (record,) = caplog.records
    assert "0.0.0.0:8000 beyond loopback without STT_TOKEN" in record.getMessage()
    monkeypatch.setattr(exposure, "listening_addresses", lambda: [("127.0.0.1", 8000)])
    caplog.clear()
    asyncio.run(exposure.warn_when_exposed(has_token=False))
    assert caplog.records == []
