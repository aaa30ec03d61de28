"""logging_setup: the session id on every line, from whichever task or module logs it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import ROOT
from wirescribe import logs as logging_setup
from wirescribe.settings import Settings, SettingsError


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure() on a string stream; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    for h in root.handlers[:]:
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_every_line_carries_the_session_of_the_task_that_logged_it(captured: io.StringIO) -> None:
    logging_setup.configure("debug", stream=captured)
    log = logging.getLogger("some.module")

    async def session(sid: str) -> None:
        logging_setup.session_id.set(sid)
        log.info("started")
        await asyncio.gather(asyncio.create_task(child()))  # tasks it creates inherit the id

    async def child() -> None:
        await asyncio.sleep(0)
        logging.getLogger("another.module").debug("from a child task")

    async def main() -> None:
        await asyncio.gather(session("abc123"), session("def456"))
        log.warning("between sessions")

    asyncio.run(main())
    lines = [line for line in captured.getvalue().splitlines() if " asyncio " not in line]
    assert len(lines) == 5
    assert sum("[session=abc123]" in line for line in lines) == 2
    assert sum("[session=def456]" in line for line in lines) == 2
    assert "[session=-]" in lines[-1] and "WARNING some.module" in lines[-1]
    assert any("DEBUG another.module [session=abc123] from a child task" in line for line in lines)


def test_json_lines_and_a_second_configure_replaces_the_first(captured: io.StringIO) -> None:
    logging_setup.configure("info", stream=io.StringIO())
    logging_setup.configure("info", "json", stream=captured)
    token = logging_setup.session_id.set("s1")
    try:
        logging.getLogger("x").info("hello %s", "there")
        logging.getLogger("x").debug("not at info")
    finally:
        logging_setup.session_id.reset(token)
    (line,) = captured.getvalue().splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["session"], record["message"]) == (
        "info",
        "x",
        "s1",
        "hello there",
    )
    assert record["time"].endswith("Z")


def test_bad_levels_and_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        logging_setup.configure("loud")
    with pytest.raises(ValueError, match="log format"):
        logging_setup.uvicorn_log_config("info", "xml")
    log = Settings.from_env({"STT_LOG_LEVEL": "DEBUG", "STT_LOG_FORMAT": "json"}).log
    assert (log.level, log.format) == ("debug", "json")
    assert (Settings.from_env({}).log.level, Settings.from_env({}).log.format) == ("info", "text")
    with pytest.raises(SettingsError, match="STT_LOG_LEVEL"):
        Settings.from_env({"STT_LOG_LEVEL": "loud"})


def test_uvicorn_config_puts_uvicorn_and_the_app_on_one_format() -> None:
    code = (
        "import logging, logging.config\n"
        "from wirescribe import logs as logging_setup\n"
        "logging.config.dictConfig(logging_setup.uvicorn_log_config('info'))\n"
        "logging_setup.session_id.set('abc')\n"
        "logging.getLogger('uvicorn.error').info('from uvicorn')\n"
        "logging.getLogger('server').info('from the app')\n"
        "logging.getLogger('server').debug('hidden')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stderr
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert "INFO uvicorn.error [session=abc] from uvicorn" in lines[0]
    assert "INFO server [session=abc] from the app" in lines[1]


def test_the_lifespan_helper_leaves_a_configured_root_alone(captured: io.StringIO) -> None:
    root = logging.getLogger()
    before = root.handlers[:]
    if before:  # pytest's own capture handlers count as configured
        assert logging_setup.configure_unless_configured() is None
        assert root.handlers == before
    for h in before:
        root.removeHandler(h)
    try:
        handler = logging_setup.configure_unless_configured()
        assert handler is not None and root.handlers == [handler]
        assert logging_setup.configure_unless_configured() is None
    finally:
        for h in before:
            root.addHandler(h)
