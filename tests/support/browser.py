"""What the tests of the vendors' JavaScript SDKs in a browser need around Chromium: Debian's
Chromium (installed with apt where it is missing and we may), its fake microphone's WAV, the
SDK pages' bundles (``npm ci`` + esbuild from the committed lockfile), and a TLS front for the
server (OpenAI's SDK opens ``wss://`` only).

Each ``ensure_*`` returns None when done, else why it cannot be, for the test to skip with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support.speech import Utterance, join_utterances
from wirescribe.audio.decode import SAMPLE_RATE

CHROMIUM = Path("/usr/bin/chromium")
CAPTURE_RATE = 48000  # the rate Chromium's fake capture device reads the file at
LEAD_IN = 0.5  # seconds of silence before the speech, so the first word is not clipped

# Chromium's own background traffic (updates, sync, QUIC probes) has no place in a test.
QUIET_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-extensions",
]


def chromium_args(wav: Path) -> list[str]:
    """Headless flags: the microphone granted without a prompt, playing ``wav`` once."""
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
        *QUIET_FLAGS,
    ]


def _run(
    steps: list[tuple[list[str], int]], cwd: Path | None = None, env: dict[str, str] | None = None
) -> str | None:
    """Run each command within its time limit; None when all succeed, else the first failure."""
    for cmd, limit in steps:
        try:
            subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, timeout=limit, check=True)
        except subprocess.TimeoutExpired:
            return f"{' '.join(cmd)} took over {limit} s"
        except (subprocess.CalledProcessError, OSError) as e:
            output = getattr(e, "stderr", None) or getattr(e, "stdout", None) or str(e).encode()
            tail = output.decode(errors="replace").strip().splitlines()[-1:] if output else []
            return f"{' '.join(cmd)} failed: {' '.join(tail)}"
    return None


def ensure_chromium() -> str | None:
    """Debian's chromium package, installed with apt when missing and we are root."""
    if CHROMIUM.exists():
        return None
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)"
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    failed = _run([(["apt-get", "update"], 180), (["apt-get", "install", "-y", "chromium"], 420)], env=env)
    if failed is not None:
        return failed
    return None if CHROMIUM.exists() else f"apt installed chromium but {CHROMIUM} is not there"


def ensure_bundles(pages: Path, entries: tuple[str, ...]) -> str | None:
    """The pages' JavaScript bundles in ``pages/dist``: ``npm ci`` from the committed lockfile
    when ``node_modules`` is missing or older than it (exact versions, integrity-checked, no
    install scripts), then ``npm run build`` (esbuild, under a second)."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is missing: the SDK pages are built with npm (apt-get install npm)"
    lock, installed = pages / "package-lock.json", pages / "node_modules" / ".package-lock.json"
    steps: list[tuple[list[str], int]] = []
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        steps.append(([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], 300))
    steps.append(([npm, "run", "build"], 120))
    failed = _run(steps, cwd=pages)
    if failed is not None:
        return failed
    missing = [e for e in entries if not (pages / "dist" / e).exists()]
    return f"npm run build made no {', '.join(missing)}" if missing else None


def write_speech_wav(path: Path, utterances: list[Utterance]) -> tuple[float, str]:
    """The utterances with 1 s pauses after a short lead-in, as the 48 kHz mono 16-bit WAV
    Chromium's fake capture device reads; the duration in seconds and the reference text."""
    audio, reference = join_utterances(utterances, pause=1.0)
    audio = np.concatenate([np.zeros(int(LEAD_IN * SAMPLE_RATE), dtype=np.float32), audio])
    ratio = CAPTURE_RATE // SAMPLE_RATE
    upsampled = np.interp(np.arange(len(audio) * ratio) / ratio, np.arange(len(audio)), audio)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(CAPTURE_RATE)
        w.writeframes((np.clip(upsampled, -1, 1) * 32767).astype("<i2").tobytes())
    return len(audio) / SAMPLE_RATE, reference


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(folder: Path) -> Certificate | str:
    """A certificate for 127.0.0.1 that lives a day, made with the openssl command; else why not."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return "openssl is missing: it makes the TLS front's certificate"
    cert, key = folder / "cert.pem", folder / "key.pem"
    failed = _run([([
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
    ], 30)])  # fmt: skip
    return failed if failed is not None else Certificate(cert, key)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()


@contextlib.contextmanager
def tls_front(certificate: Certificate, backend_port: int) -> Iterator[int]:
    """TLS terminated on a free loopback port and the bytes passed on to ``backend_port`` (the
    plain server), as a reverse proxy in front of it would; yields the TLS port. The server is
    then reached both ways: ``ws://`` directly, ``wss://`` through here. Its event loop runs in a
    thread of its own (Playwright's sync API holds one in the test's thread)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def stop(server: asyncio.Server) -> None:
        server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    started = asyncio.run_coroutine_threadsafe(asyncio.start_server(relay, "127.0.0.1", 0, ssl=context), loop)
    server = started.result(10)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        asyncio.run_coroutine_threadsafe(stop(server), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
