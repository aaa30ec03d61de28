"""logsafe.py: control characters escaped and credentials redacted in every log record."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from wirescribe import logsafe
from wirescribe.logs import TEXT_FORMAT, SessionIdFilter

TOKEN = "s3cret-Token_42"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("next\x85line", "next\\x85line"),  # NEL: a line break to str.splitlines
        ("a\u2028b", "a\\u2028b"),
        ("abc\u202egnp.exe", "abc\\u202egnp.exe"),  # right-to-left override
        ("tab\tand\x00nul\x7f", "tab\\tand\\x00nul\\x7f"),
        ("plain ünïcode and \\n as text", "plain ünïcode and \\n as text"),
    ],
)
def test_escape_controls(raw: str, escaped: str) -> None:
    assert logsafe.escape_controls(raw) == escaped


@pytest.mark.parametrize(
    "text",
    [
        f"/ws/transcribe?token={TOKEN}&format=auto",
        f"/ws/transcribe?format=auto&%74oken={TOKEN}",
        f"/ws/transcribe?%74%6F%6B%65%6E={TOKEN}",
        f"/x?%2574oken={TOKEN}",
        f"/x?TOKEN={TOKEN}",
        f"/x?access_token={TOKEN}",
        f"/x?api_key={TOKEN}",
        f"> Authorization: Bearer {TOKEN}",
        f"> authorization: {TOKEN}",
        f"> Sec-WebSocket-Protocol: token, {TOKEN}",
        f"[(b'authorization', b'Bearer {TOKEN}'), (b'host', b'x')]",
        f"'query_string': b'format=auto&token={TOKEN}'",
        f"curl -H 'Authorization: Basic {TOKEN}'",
    ],
)
def test_redact_every_spelling(text: str) -> None:
    cleaned = logsafe.redact(text)
    assert TOKEN not in cleaned and "***" in cleaned, cleaned


def test_redact_leaves_other_parameters() -> None:
    assert logsafe.redact("/ws/transcribe?format=pcm16&keyterms=a,b&mytoken=x") == (
        "/ws/transcribe?format=pcm16&keyterms=a,b&mytoken=x"
    )


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """A logger writing the server's text format to a buffer, with the factory installed."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SessionIdFilter())
    logger = logging.getLogger("logsafe-test")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    remove = logsafe.install()
    try:
        yield out
    finally:
        remove()
        logger.removeHandler(handler)


def test_records_cannot_forge_lines_or_leak_tokens(text_log: io.StringIO) -> None:
    log = logging.getLogger("logsafe-test")
    log.info("transcribed %s: 1.0 s", "x.wav\n2099-01-01 00:00:00,000 INFO forged [session=-] hi")
    log.info("uvicorn: %s", f"GET /ws?%74oken={TOKEN}")
    log.info(f"no args: Authorization: Bearer {TOKEN}\nforged")
    log.debug("%(name)s", {"name": "a\rb"})
    try:
        raise ValueError(f"bad\n2099 INFO forged token={TOKEN}")
    except ValueError:
        log.exception("failed")
    text = text_log.getvalue()
    assert TOKEN not in text
    for line in text.splitlines():  # every line is a record, or an indented traceback line
        assert line.startswith(("  ", "20")) and "forged" not in line.split(" INFO ")[0], line
    assert not any(line.startswith("2099") or line.startswith("forged") for line in text.splitlines())
    assert "x.wav\\n2099" in text and "a\\rb" in text


def test_install_nests_and_restores_the_factory() -> None:
    before = logging.getLogRecordFactory()
    first, second = logsafe.install(), logsafe.install()
    assert logsafe.installed()
    first()
    first()  # a second call of the same remover changes nothing
    assert logsafe.installed()
    second()
    assert not logsafe.installed() and logging.getLogRecordFactory() is before
