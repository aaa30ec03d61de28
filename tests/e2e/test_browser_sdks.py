"""End to end in a real browser with the vendors' own JavaScript SDKs: examples/browser-sdk's
pages, bundled from npm (``@deepgram/sdk``, ``openai``), in Debian's Chromium, its microphone fed
from a WAV of the LibriVox speech, each page with a temporary token from its backend.

* ``deepgram.html``: ``@deepgram/sdk``'s ``listen.v1`` socket (MediaRecorder's WebM/Opus) to
  ``/v1/listen``, the token as the SDK's ``accessToken`` (``Sec-WebSocket-Protocol: bearer, …``).
* ``openai.html``: ``openai``'s ``OpenAIRealtimeWebSocket``, a transcription session (PCM16 at
  24 kHz from an AudioWorklet) to ``/v1/realtime`` through a TLS front (the SDK opens ``wss://``
  only), the token as the API key (``Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.…``).

The fake microphone plays the file in real time, so each session lasts about as long as the
speech (~30 s). The bundles come from the committed lockfile (``npm ci``) on first use; the
tests skip, saying why, only where npm, Chromium or openssl cannot be had.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from tests.support import ROOT, LiveServer, Utterance, free_port, start_server, stop_server
from tests.support.browser import (
    CHROMIUM,
    chromium_args,
    ensure_bundles,
    ensure_chromium,
    self_signed,
    tls_front,
    write_speech_wav,
)
from wirescribe.wer import word_error_rate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),  # the first test may install Chromium (apt) and the bundles (npm); each < 40 s
]

PAGES = ROOT / "examples" / "browser-sdk"
SECRET = "long-lived-Sdk_Token_7"
# The bar of the project's own browser demo (tests/e2e/test_browser.py) and the WebM/PCM streams.
MAX_WER = 0.15


@pytest.fixture(scope="module")
def bundles() -> Path:
    """examples/browser-sdk/dist, built from the lockfile (npm ci + esbuild) where needed."""
    reason = ensure_bundles(PAGES, ("deepgram.js", "openai.js"))
    if reason is not None:
        print(f"\nskipping the SDK browser tests: {reason}")
        pytest.skip(reason)
    return PAGES / "dist"


@pytest.fixture(scope="module")
def speech_wav(
    tmp_path_factory: pytest.TempPathFactory, utterances: list[Utterance]
) -> tuple[Path, float, str]:
    path = tmp_path_factory.mktemp("browser-sdk") / "speech.wav"
    duration, reference = write_speech_wav(path, utterances)
    return path, duration, reference


@pytest.fixture(scope="module")
def browser(speech_wav: tuple[Path, float, str]) -> Iterator[Browser]:
    reason = ensure_chromium()
    if reason is not None:
        print(f"\nskipping the SDK browser tests: {reason}")
        pytest.skip(reason)
    with sync_playwright() as pw:
        launched = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=chromium_args(speech_wav[0])
        )
        print(f"\nChromium {launched.version}")
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server that needs a token (STT_TOKEN): the pages connect with temporary ones."""
    running = start_server(tmp_path_factory.mktemp("sdk-server"), env={"STT_TOKEN": SECRET})
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def wss_port(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The server behind TLS (a self-signed certificate for 127.0.0.1), as a proxy would put it."""
    certificate = self_signed(tmp_path_factory.mktemp("tls"))
    if isinstance(certificate, str):
        pytest.skip(certificate)
    with tls_front(certificate, server.port) as port:
        yield port


@pytest.fixture(scope="module")
def backend(bundles: Path, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """examples/browser-sdk/serve.py: the pages, and POST /token minting temporary tokens."""
    port = free_port()
    log = tmp_path_factory.mktemp("backend") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(PAGES / "serve.py"), "--port", str(port)],
            env={**os.environ, "STT_TOKEN": SECRET, "STT_SERVER": server.http},
            stdout=subprocess.PIPE,
            stderr=out,
        )
    try:
        assert process.stdout is not None and b"serving" in process.stdout.readline(), log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _page(browser: Browser, url: str, problems: list[str]) -> Page:
    # ignore_https_errors: the TLS front's certificate is self-signed (WebSockets included).
    page = browser.new_context(ignore_https_errors=True).new_page()
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if _is_problem(m) else None)
    page.goto(url)
    return page


def _is_problem(message: ConsoleMessage) -> bool:
    # A refused WebSocket is logged by the browser itself; the page reports it too.
    return message.type == "error" and not message.text.startswith("WebSocket connection to")


def _texts(page: Page, selector: str) -> list[str]:
    return [li.text_content() or "" for li in page.locator(selector).all()]


def _events(page: Page) -> list[str]:
    return [e.split(" ")[0] for e in _texts(page, "#events li")]


def _record(page: Page, server_url: str, duration: float) -> tuple[list[str], float]:
    """Start, let the fake microphone play all the speech, Stop, wait for the end; the final
    transcripts seen before Stop, and the seconds from Stop to the end."""
    page.fill("#url", server_url)
    page.click("#start")
    started = time.monotonic()
    page.wait_for_selector("#status[data-state=recording]", timeout=15_000)
    page.wait_for_timeout(max(0.0, duration + 1.5 - (time.monotonic() - started)) * 1000)
    before_stop = _texts(page, "#finals li")
    page.click("#stop")
    stopped = time.monotonic()
    page.wait_for_selector("#status:is([data-state=done], [data-state=error])", timeout=20_000)
    return before_stop, time.monotonic() - stopped


def test_deepgram_sdk_in_the_browser_streams_the_microphone(
    browser: Browser, backend: str, server: LiveServer, speech_wav: tuple[Path, float, str]
) -> None:
    _, duration, reference = speech_wav
    problems: list[str] = []
    page = _page(browser, f"{backend}/deepgram.html", problems)
    before_stop, drained = _record(page, f"ws://127.0.0.1:{server.port}", duration)
    final = page.evaluate("finalText()")
    events = _events(page)
    wer = word_error_rate(reference, final)
    print(f"Deepgram SDK: {len(before_stop)} finals before Stop, done {drained:.2f} s after it; "
          f"WER {wer:.3f}; events {events}\nfinal: {final}")  # fmt: skip
    assert _texts(page, "#errors li") == [] and page.text_content("#status") == "done", problems
    assert _texts(page, "#events li")[0] == "open bearer"  # the subprotocol the server selected
    assert len(before_stop) >= 3  # live, not one answer at the end
    assert events.count("SpeechStarted") >= 3 and events.count("UtteranceEnd") >= 3, events
    assert "speech_final" in events and events[-1] == "Metadata", events
    assert wer <= MAX_WER, (wer, final)
    assert SECRET not in page.content()
    assert problems == []
    page.context.close()


def test_openai_sdk_in_the_browser_streams_the_microphone(
    browser: Browser, backend: str, wss_port: int, speech_wav: tuple[Path, float, str]
) -> None:
    _, duration, reference = speech_wav
    problems: list[str] = []
    page = _page(browser, f"{backend}/openai.html", problems)
    before_stop, drained = _record(page, f"https://127.0.0.1:{wss_port}/v1", duration)
    final = page.evaluate("finalText()")
    events = _events(page)
    wer = word_error_rate(reference, final)
    print(f"OpenAI SDK: {len(before_stop)} transcripts before Stop, done {drained:.2f} s after it; "
          f"WER {wer:.3f}; events {events}\nfinal: {final}")  # fmt: skip
    assert _texts(page, "#errors li") == [] and page.text_content("#status") == "done", problems
    assert _texts(page, "#events li")[0] == "open realtime"  # the subprotocol the server selected
    assert len(before_stop) >= 3  # live, not one answer at the end
    started, stopped = events.count("speech_started"), events.count("speech_stopped")
    assert started >= 3 and stopped >= started - 1, events  # the last turn may end at Stop's commit
    assert events.count("completed") >= started, events
    assert wer <= MAX_WER, (wer, final)
    assert SECRET not in page.content()
    assert problems == []
    page.context.close()


@pytest.mark.parametrize("vendor", ["deepgram", "openai"])
def test_sdk_pages_are_refused_with_a_forged_token(
    browser: Browser, backend: str, server: LiveServer, wss_port: int, vendor: str
) -> None:
    """A token the server did not sign opens nothing: Deepgram's SDK gets the handshake's 401,
    OpenAI's an ``error`` event (invalid_api_key) and the close."""
    problems: list[str] = []
    page = _page(browser, f"{backend}/{vendor}.html", problems)

    def forged(route: Route) -> None:
        route.fulfill(json={"token": "wst1.eyJpZCI6ImZvcmdlZCJ9.c2lnbmF0dXJl", "expires_at": 0})

    page.route("**/token", forged)
    url = f"ws://127.0.0.1:{server.port}" if vendor == "deepgram" else f"https://127.0.0.1:{wss_port}/v1"
    page.fill("#url", url)
    page.click("#start")
    page.wait_for_selector("#status[data-state=error]", timeout=15_000)
    errors = _texts(page, "#errors li")
    print(f"{vendor}: {errors}; status {page.text_content('#status')}")
    expected = "invalid_api_key: " if vendor == "openai" else "connection: cannot connect"
    assert len(errors) == 1 and errors[0].startswith(expected), errors
    if vendor == "deepgram":  # the page cannot see why; the server refused the token with 401
        handshakes = [
            line for line in server.log.read_text().splitlines() if '"WebSocket /v1/listen?' in line
        ]
        assert handshakes[-1].endswith(" 401"), handshakes[-1:]
    assert page.is_enabled("#start") and not page.is_enabled("#stop")
    assert _texts(page, "#finals li") == []
    page.context.close()
