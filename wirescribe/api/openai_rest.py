"""OpenAI-compatible file transcription: ``POST /v1/audio/transcriptions``.

Shaped like OpenAI's endpoint (:mod:`openai_format`), so OpenAI's own clients work unchanged::

    client = OpenAI(base_url="http://localhost:8000/v1", api_key=STT_TOKEN or "unused")
    client.audio.transcriptions.create(model="whisper-1", file=open("talk.mp3", "rb"))

The ``model`` field is accepted (any value) and never loads another model: the server's own
model answers, the one the live sessions share. The file goes through the same scheduler in
chunks of at most 30 s (:mod:`file_transcription`), so an upload takes turns with the live
sessions instead of holding the model for the length of the file.

The request body is limited (``STT_MAX_UPLOAD_BYTES``: 413, counted while it arrives) and never
held in memory: Starlette's multipart parser spools the file to a temporary file, which is
copied to a private path for ffmpeg to read — a path, not a pipe, because MP4/M4A files keep
their index at the end and ffmpeg cannot decode those from a pipe. A client that goes away stops
its transcription. With ``STT_TOKEN`` set, the token is required (the client's ``api_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from wirescribe import logs as logging_setup
from wirescribe.api import metrics, security
from wirescribe.api.openai_format import (
    GRANULARITIES,
    RESPONSE_FORMATS,
    ApiError,
    invalid,
    parse_request,
    render,
    temperatures,
)
from wirescribe.asr.model import DecodeOptions, Transcript
from wirescribe.asr.scheduler import SchedulerClosed
from wirescribe.audio.decode import DecodeError, DecoderFailure, FfmpegStreamDecoder
from wirescribe.streaming.files import ChunkOptions, transcribe_blocks

log = logging.getLogger(__name__)

T = TypeVar("T")
_COPY_BYTES = 1 << 20


class FileApiConfigError(ValueError):
    """An ``STT_*`` setting of the file endpoint holds a value that cannot be used."""


@dataclass(frozen=True)
class FileApiConfig:
    """``STT_MAX_UPLOAD_BYTES``, ``STT_MAX_FILE_JOBS``, ``STT_MAX_FILE_QUEUE``,
    ``STT_FILE_CHUNK_SECONDS``, ``STT_FILE_BEAM_SIZE``."""

    max_upload_bytes: int = 100 << 20  # the whole request body; past it: 413
    # Files transcribed at once. One keeps live sessions' updates waiting for at most one file
    # chunk: the scheduler is FIFO and an upload has one chunk queued or running at a time.
    max_jobs: int = 1
    max_queue: int = 16  # requests waiting for their turn (their bodies not yet read); past it: 429
    chunk_seconds: float = 30.0  # the longest model call an upload makes (≤ 30: Whisper's window)
    beam_size: int = 5  # as the CLI's stt: the same file gives the same text either way

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FileApiConfig:
        env = os.environ if env is None else env

        def number(name: str, default: float, kind: type, lo: float, hi: float = math.inf) -> Any:
            raw = env.get(f"STT_{name}", "").strip()
            if not raw:
                return default
            try:
                value = kind(raw)
            except ValueError as e:
                raise FileApiConfigError(f"STT_{name} must be a number, not {raw!r}") from e
            if not lo <= value <= hi:
                raise FileApiConfigError(f"STT_{name} must be from {lo:g} to {hi:g}, not {raw!r}")
            return value

        return cls(
            max_upload_bytes=number("MAX_UPLOAD_BYTES", cls.max_upload_bytes, int, 1),
            max_jobs=number("MAX_FILE_JOBS", cls.max_jobs, int, 1),
            max_queue=number("MAX_FILE_QUEUE", cls.max_queue, int, 0),
            chunk_seconds=number("FILE_CHUNK_SECONDS", cls.chunk_seconds, float, 5, 30),
            beam_size=number("FILE_BEAM_SIZE", cls.beam_size, int, 1, 20),
        )


class _FileApi:
    """The endpoint's state in one app: its settings, and the turns of the uploads."""

    def __init__(self, config: FileApiConfig) -> None:
        self.config = config
        self.turns = asyncio.Semaphore(config.max_jobs)  # FIFO: waiting requests go in order
        self.admitted = 0  # waiting or transcribing


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Read the settings at startup, so a bad one stops the server like the rest of its config
    (tests may put a :class:`FileApiConfig` on ``app.state.file_api_config`` first)."""
    app.state.file_api = _FileApi(getattr(app.state, "file_api_config", None) or FileApiConfig.from_env())
    yield


router = APIRouter(lifespan=_lifespan)

_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "audio in any format ffmpeg reads"},
        "model": {"type": "string", "description": "accepted and ignored: the server's own model answers"},
        "language": {"type": "string", "description": "ISO-639-1 code, e.g. en (default: detected)"},
        "prompt": {"type": "string", "description": "text to guide spelling and style"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS), "default": "json"},
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"type": "string", "enum": list(GRANULARITIES)},
        },
    },
}


@router.post(
    "/v1/audio/transcriptions",
    summary="Transcribe an audio file (OpenAI-compatible)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM_SCHEMA}}}
    },
)
async def create_transcription(request: Request) -> Response:
    """Transcribe the uploaded ``file`` with the server's model (``model`` is ignored)."""
    api: _FileApi = request.app.state.file_api
    context = logging_setup.session_id.set(f"file-{uuid.uuid4().hex[:8]}")
    admitted = False
    try:
        _admit(request, api)
        api.admitted += 1
        admitted = True
        with _gauge(request.app, "file_transcriptions_waiting"):
            await api.turns.acquire()  # before the body is read: a waiting upload holds no file
        try:
            with _gauge(request.app, "file_transcriptions_in_progress"):
                return await _transcribe_request(request, api.config)
        finally:
            api.turns.release()
    except ApiError as e:
        log.info("refused (%d): %s", e.status, e.message)
        metrics.count_error(request.app, e.metric)
        return e.response()
    except SchedulerClosed:
        metrics.count_error(request.app, "busy")
        return ApiError(503, "the server is shutting down", kind="server_error").response()
    except DecoderFailure as e:
        log.error("the audio decoder failed: %s", e)
        metrics.count_error(request.app, "internal")
        return ApiError(500, f"the audio decoder failed: {e}", kind="server_error").response()
    except ClientDisconnect:
        log.info("the client went away; its transcription was stopped")
        return Response(status_code=499)  # nobody reads it (nginx's "client closed request")
    except Exception as e:  # the boundary: logged with its traceback, answered in OpenAI's shape
        log.exception("file transcription failed")
        metrics.count_error(request.app, "internal")
        return ApiError(500, f"internal error ({type(e).__name__})", kind="server_error").response()
    finally:
        if admitted:
            api.admitted -= 1
        logging_setup.session_id.reset(context)


def _admit(request: Request, api: _FileApi) -> None:
    """Token, shutdown and the length of the line, checked before the body is read."""
    state = request.app.state
    expected = getattr(getattr(state, "config", None), "token", None)
    if not security.token_matches(expected, security.presented_token(request.headers, request.query_params)):
        raise ApiError(
            401,
            "a valid access token is required: Authorization: Bearer TOKEN (an OpenAI client's api_key)",
            code="invalid_api_key",
            metric="unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if getattr(state, "draining", False):
        raise ApiError(503, "the server is shutting down", kind="server_error", metric="busy")
    if api.admitted >= api.config.max_jobs + api.config.max_queue:
        raise ApiError(
            429,
            f"{api.admitted} files are being transcribed or waiting already; try again later",
            kind="rate_limit_error",
            code="busy",
            metric="busy",
            headers={"Retry-After": "5"},  # OpenAI's clients wait this long, then retry
        )


async def _transcribe_request(request: Request, config: FileApiConfig) -> Response:
    state = request.app.state
    form = await _read_form(request, config.max_upload_bytes)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid(
                "the audio file is missing: send it as the multipart field 'file'", "file", "missing_file"
            )
        req = parse_request(form, state.transcriber.supported_languages)
        options = DecodeOptions(
            language=req.language or state.transcriber.default_language,
            prompt=req.prompt,
            beam_size=config.beam_size,
            word_timestamps=req.words,
            temperature=temperatures(req.temperature),
        )
        started = time.perf_counter()
        work = _transcribe_upload(request, upload, options, ChunkOptions(max_seconds=config.chunk_seconds))
        transcript = await _unless_disconnected(request, work)
    finally:
        await form.close()
    name = upload.filename or "upload"
    log.info(
        "transcribed %s: %.1f s of audio in %.1f s", name, transcript.duration, time.perf_counter() - started
    )
    metrics.count_audio(request.app, transcript.duration, "file")
    if (m := metrics.of(request.app)) is not None:
        m.file_transcriptions.inc()
    return render(transcript, req, name)


async def _read_form(request: Request, limit: int) -> FormData:
    """Parse the multipart body, counting its bytes as they arrive: past ``limit``, 413 at once
    (uvicorn discards the rest of the body, so the client still reads the answer)."""
    too_large = ApiError(
        413,
        f"the request is larger than this server's limit of {limit} bytes (STT_MAX_UPLOAD_BYTES)",
        code="file_too_large",
        metric="too_large",
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = 0
    receive = request.receive

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise too_large
        return message

    try:
        return await Request(request.scope, counting_receive).form(max_files=1, max_fields=64)
    except HTTPException as e:  # Starlette's answer to a malformed multipart body
        raise ApiError(400, f"the request body is not valid multipart/form-data: {e.detail}") from e


async def _transcribe_upload(
    request: Request, upload: UploadFile, options: DecodeOptions, chunking: ChunkOptions
) -> Transcript:
    state = request.app.state
    with tempfile.TemporaryDirectory(prefix="stt-upload-") as tmp:
        path = Path(tmp) / "upload"  # no extension: ffmpeg goes by the content alone
        await asyncio.to_thread(_copy, upload.file, path)
        decoder = await FfmpegStreamDecoder.start(path)
        try:
            return await transcribe_blocks(
                decoder, state.scheduler.transcribe, options, state.vad_probability, chunking
            )
        except DecodeError as e:
            reason = str(e).replace(f"file:{path}", "the file").replace(str(path), "the file")
            message = f"the file could not be decoded as audio: {reason}"
            raise ApiError(400, message, param="file", code="invalid_file", metric="bad_audio") from e
        finally:
            await decoder.aclose()


def _copy(source: IO[bytes], path: Path) -> None:
    source.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(source, out, _COPY_BYTES)


async def _unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Run ``work``, cancelled if the client goes away: an abandoned upload stops taking turns
    on the model (the scheduler drops its queued chunk)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.create_task(_until_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            raise ClientDisconnect
        return task.result()
    finally:
        for t in (task, watcher):
            t.cancel()
        for t in (task, watcher):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


async def _until_disconnected(request: Request) -> None:
    """Returns once the client has gone (the body is read: nothing else can arrive before)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


@contextlib.contextmanager
def _gauge(app: Any, name: str) -> Iterator[None]:
    """One more on the app's gauge ``name`` while the block runs (nothing without metrics)."""
    gauge = getattr(metrics.of(app), name, None)
    if gauge is not None:
        gauge.inc()
    try:
        yield
    finally:
        if gauge is not None:
            gauge.dec()
