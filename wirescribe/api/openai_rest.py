"""OpenAI-compatible files and models: ``POST /v1/audio/transcriptions``,
``POST /v1/audio/translations`` (English text from speech in any language) and ``GET /v1/models``.

Shaped like OpenAI's endpoint (:mod:`openai_format`), so OpenAI's own clients work unchanged::

    client = OpenAI(base_url="http://localhost:8000/v1", api_key=STT_TOKEN or "unused")
    client.audio.transcriptions.create(model="whisper-1", file=open("talk.mp3", "rb"))

The ``model`` field names one of the loaded models (``GET /v1/models``); OpenAI's own names
(``whisper-1``, …) stand for the default model, or for a multilingual one when the default
speaks English only and the request asks for another language or a translation. A model that
is not loaded is OpenAI's 404 ``model_not_found``; nothing is ever loaded for a request. The
file goes through the same scheduler in chunks of at most 30 s (:mod:`file_transcription`), so
an upload takes turns with the live sessions instead of holding the model for the length of
the file.

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
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

from fastapi import APIRouter, Request, Response
from prometheus_client import Gauge
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Message

from wirescribe import logs as logging_setup
from wirescribe.api import language_choice, security
from wirescribe.api.deps import State
from wirescribe.api.language_choice import Choice
from wirescribe.api.openai_format import (
    GRANULARITIES,
    RESPONSE_FORMATS,
    ApiError,
    invalid,
    parse_request,
    render,
    temperatures,
)
from wirescribe.api.session_options import OptionError
from wirescribe.api.state import AppState
from wirescribe.api.tokens import Grant, TokenRefused
from wirescribe.asr.model import DecodeOptions, Transcript
from wirescribe.asr.scheduler import SchedulerClosed
from wirescribe.audio.decode import DecodeError, DecoderFailure, FfmpegStreamDecoder
from wirescribe.streaming.errors import decoder_problem
from wirescribe.streaming.files import AudioTooLong, ChunkOptions, capped, transcribe_blocks

log = logging.getLogger(__name__)

T = TypeVar("T")
_COPY_BYTES = 1 << 20


router = APIRouter()

_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "audio in any format ffmpeg reads"},
        "model": {"type": "string", "description": "a loaded model (GET /v1/models); whisper-1: the default"},
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
async def create_transcription(request: Request, state: State) -> Response:
    """Transcribe the uploaded ``file`` with the model its ``model`` field names."""
    return await _file_request(request, state, "transcribe")


_TRANSLATION_SCHEMA = {
    **_FORM_SCHEMA,
    "properties": {k: v for k, v in _FORM_SCHEMA["properties"].items() if k != "language"},  # type: ignore[attr-defined]
}


@router.post(
    "/v1/audio/translations",
    summary="Translate speech in any language into English text (OpenAI-compatible)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _TRANSLATION_SCHEMA}}}
    },
)
async def create_translation(request: Request, state: State) -> Response:
    """English text from the uploaded ``file``, whatever its language (a multilingual model)."""
    return await _file_request(request, state, "translate")


@router.get("/v1/models", summary="The loaded models (OpenAI-compatible)")
async def list_models(request: Request, state: State) -> dict[str, Any]:
    """The models this server has loaded, as OpenAI's ``client.models.list()`` reads them."""
    _authorize(request, state)
    return language_choice.model_list(state.transcriber)


async def _file_request(request: Request, state: AppState, task: str) -> Response:
    turns = state.file_turns
    metrics = state.metrics
    context = logging_setup.session_id.set(f"file-{uuid.uuid4().hex[:8]}")
    admitted = False
    try:
        _admit(request, state)
        turns.admitted += 1
        admitted = True
        with _gauge(metrics.file_transcriptions_waiting):
            await turns.semaphore.acquire()  # before the body is read: a waiting upload holds no file
        try:
            with _gauge(metrics.file_transcriptions_in_progress):
                return await _transcribe_request(request, state, task)
        finally:
            turns.semaphore.release()
    except ApiError as e:
        log.info("refused (%d): %s", e.status, e.message)
        metrics.count_error(e.metric)
        return e.response()
    except SchedulerClosed:
        metrics.count_error("busy")
        return ApiError(503, "the server is shutting down", kind="server_error").response()
    except ClientDisconnect:
        log.info("the client went away; its transcription was stopped")
        return Response(status_code=499)  # nobody reads it (nginx's "client closed request")
    except Exception as e:  # the boundary: logged with its traceback, answered in OpenAI's shape
        log.exception("file transcription failed")
        metrics.count_error("internal")
        return ApiError(500, f"internal error ({type(e).__name__})", kind="server_error").response()
    finally:
        if admitted:
            turns.admitted -= 1
        logging_setup.session_id.reset(context)


def _authorize(request: Request, state: AppState) -> Grant | None:
    """The origin and the token (401/403 in OpenAI's shape); the grant to spend, if any."""
    origin = request.headers.get("origin")
    if not security.origin_allowed(state.settings.allowed_origins, origin):  # as on the WebSocket
        message = f"origin {origin!r} is not allowed"
        raise ApiError(403, message, code="origin_not_allowed", metric="unauthorized")
    presented = security.presented_token(request.headers, request.query_params)
    try:
        return security.authorize(state.settings.token, state.tokens, presented, origin)
    except security.AccessDenied as e:
        reason = str(e)
        if reason == security.TOKEN_REQUIRED:
            reason += ": Authorization: Bearer TOKEN (an OpenAI client's api_key)"
        raise ApiError(
            401, reason, code="invalid_api_key", metric="unauthorized", headers={"WWW-Authenticate": "Bearer"}
        ) from None


def _admit(request: Request, state: AppState) -> None:
    """Origin, token, shutdown and the length of the line, checked before the body is read."""
    grant = _authorize(request, state)
    files = state.settings.files
    if state.draining:
        raise ApiError(503, "the server is shutting down", kind="server_error", metric="busy")
    if state.file_turns.admitted >= files.max_jobs + files.max_queue:
        raise ApiError(
            429,
            f"{state.file_turns.admitted} files are being transcribed or waiting already; try again later",
            kind="rate_limit_error",
            code="busy",
            metric="busy",
            headers={"Retry-After": "5"},  # OpenAI's clients wait this long, then retry
        )
    if grant is not None and state.tokens is not None:  # last: a refused upload does not use one up
        try:
            state.tokens.use(grant)
        except TokenRefused as e:
            raise ApiError(401, str(e), code="invalid_api_key", metric="unauthorized") from None


async def _transcribe_request(request: Request, state: AppState, task: str) -> Response:
    config = state.settings.files
    form = await _read_form(request, config.max_upload_bytes)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise invalid(
                "the audio file is missing: send it as the multipart field 'file'", "file", "missing_file"
            )
        choice = _choose(form, state, task)
        req = parse_request(form, choice.model.supported_languages)
        options = DecodeOptions(
            language=choice.language,
            task=choice.task,
            model=choice.name,
            prompt=req.prompt,
            beam_size=config.beam_size,
            word_timestamps=req.words,
            temperature=temperatures(req.temperature),
        )
        started = time.perf_counter()
        work = _transcribe_upload(state, upload, options, ChunkOptions(max_seconds=config.chunk_seconds))
        transcript = await _unless_disconnected(request, work)
    finally:
        await form.close()
    name = upload.filename or "upload"
    log.info(
        "transcribed %s: %.1f s of audio in %.1f s", name, transcript.duration, time.perf_counter() - started
    )
    state.metrics.count_audio(transcript.duration, "file")
    state.metrics.file_transcriptions.inc()
    return render(transcript, req, name)


def _choose(form: FormData, state: AppState, task: str) -> Choice:
    """The model, language and task of the request (OpenAI's errors for a bad one)."""
    language = None if task == "translate" else form.get("language")  # translations: detected
    try:
        return language_choice.choose_openai(state.transcriber, form.get("model"), language, task)
    except language_choice.UnknownModelName as e:
        raise ApiError(404, str(e), param="model", code="model_not_found", metric="bad_request") from e
    except OptionError as e:
        param = "model" if "translate" in str(e) else "language"
        raise invalid(str(e), param, "unsupported_language") from e


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
    state: AppState, upload: UploadFile, options: DecodeOptions, chunking: ChunkOptions
) -> Transcript:
    with tempfile.TemporaryDirectory(prefix="stt-upload-") as tmp:
        path = Path(tmp) / "upload"  # no extension: ffmpeg goes by the content alone
        await asyncio.to_thread(_copy, upload.file, path)
        files = state.settings.files
        try:
            decoder = await FfmpegStreamDecoder.start(path)
            try:  # both caps stop reading ffmpeg's output; aclose() then kills it
                async with contextlib.aclosing(capped(decoder, files.max_seconds)) as blocks:
                    work = transcribe_blocks(
                        blocks, state.scheduler.transcribe, options, state.vad_probability, chunking
                    )
                    return await _within(work, files.max_wall_seconds)
            finally:
                await decoder.aclose()
        except (DecodeError, DecoderFailure) as e:
            raise _decoder_api_error(e, path) from e
        except AudioTooLong as e:
            raise ApiError(
                400, f"{e} (STT_MAX_FILE_SECONDS); send a shorter file",
                param="file", code="audio_too_long", metric="too_large",
            ) from e  # fmt: skip
        except _OverBudget as e:
            raise ApiError(
                400, f"the file took longer than this server's limit of {files.max_wall_seconds:g} s to"
                " transcribe (STT_MAX_FILE_WALL_SECONDS); send a shorter file",
                param="file", code="transcription_timeout", metric="timeout",
            ) from e  # fmt: skip


class _OverBudget(Exception):
    """An upload's transcription ran past ``STT_MAX_FILE_WALL_SECONDS``."""


async def _within(work: Awaitable[T], seconds: float) -> T:
    """``work``, cancelled after ``seconds`` (0: no limit) with :class:`_OverBudget` — its own
    exception, so a timeout raised inside the work is not taken for the budget's."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds or None)
    if task in done:
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise _OverBudget


def _decoder_api_error(error: DecodeError | DecoderFailure, path: Path) -> ApiError:
    """The decoder's error in OpenAI's shape: the file's fault (400) or the server's (500)."""
    problem = decoder_problem(error, paths=[path])
    if problem.client_fault:
        message = f"the file could not be decoded as audio: {problem.reason}"
        return ApiError(400, message, param="file", code="invalid_file", metric="bad_audio")
    log.error("%s", problem.message)
    return ApiError(500, problem.message, kind="server_error", metric="internal")


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
def _gauge(gauge: Gauge) -> Iterator[None]:
    """One more on ``gauge`` while the block runs."""
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()
