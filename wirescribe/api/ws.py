"""``/ws/transcribe``: the WebSocket edge of a live session (the protocol: docs/protocol.md).

Per connection: one receive loop here (the only socket reader), one session task
(:class:`~wirescribe.streaming.session.LiveSession`) that decodes, transcribes and sends; the
connection's ``finally`` cancels and awaits both. Every error sent to the client, the audio it
sends and the session itself are counted in the app's metrics here, at the edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from fastapi import WebSocket, WebSocketDisconnect

from wirescribe import logs
from wirescribe.api import protocol, security
from wirescribe.api.deps import State
from wirescribe.api.lifecycle import SHUTDOWN, WALL_LIMIT, LiveConnection, release_free_memory
from wirescribe.api.limits import AudioFloor, AudioFloorWatch, AudioRate, AudioRateGate
from wirescribe.api.metrics import Metrics
from wirescribe.api.outbox import Outbox
from wirescribe.api.protocol import ProtocolError
from wirescribe.asr.scheduler import SchedulerClosed
from wirescribe.audio.decode import DecodeError, DecoderFailure, open_decoder
from wirescribe.audio.vad import VoiceActivity
from wirescribe.settings import Settings
from wirescribe.streaming.errors import decoder_error
from wirescribe.streaming.policy import FinalTranscript, StreamingPolicy
from wirescribe.streaming.session import LiveSession

log = logging.getLogger(__name__)


class _AudioMeter:
    """Counts a session's decoded audio into the metrics as it grows (not only at its end)."""

    def __init__(self, session: LiveSession, metrics: Metrics) -> None:
        self._session = session
        self._metrics = metrics
        self._counted = 0.0

    @property
    def counted(self) -> float:
        return self._counted

    def update(self) -> None:
        now = self._session.decoded_seconds
        self._metrics.count_audio(now - self._counted, "live")
        self._counted = now


async def transcribe_ws(websocket: WebSocket, state: State) -> None:
    await websocket.accept()
    settings = state.settings
    session_id = uuid.uuid4().hex[:12]
    logs.session_id.set(session_id)  # this task and the ones it starts log with the id
    outbox = Outbox(websocket, settings.send_timeout, session_id, on_error=state.metrics.count_error)
    try:
        grant = security.check_websocket(websocket, settings, state.tokens)  # before anything else
        params = protocol.parse_params(
            websocket.query_params, state.transcriber.supported_languages, state.transcriber.default_language
        )
        if state.draining:
            raise ProtocolError("busy", "the server is shutting down")
        if state.at_capacity:
            raise ProtocolError("busy", f"the server is at its limit of {settings.max_sessions} sessions")
        client = websocket.client.host if websocket.client else None  # the peer (or --proxy-headers')
        if state.client_at_capacity(client):
            limit = settings.max_sessions_per_client
            raise ProtocolError("busy", f"this address has {limit} sessions open already (the limit)")
        security.spend_websocket(state.tokens, grant)  # last: a refused session does not use one up
    except ProtocolError as e:
        await outbox.fail(e)
        return
    connection = LiveConnection(session_id, client)
    state.sessions[session_id] = connection
    state.metrics.sessions_opened.inc()
    log.info("session opened: format %s, language %s", params.format, params.language or "auto")
    meter: _AudioMeter | None = None
    try:
        policy = StreamingPolicy(VoiceActivity(state.vad_probability), language=params.language)
        decoder = await open_decoder(params.format, params.sample_rate)
        # From here the session owns the decoder: leaving the block reaps it, however it is left.
        async with LiveSession(
            decoder, policy, state.scheduler, outbox.send,
            language=params.language, max_seconds=settings.max_session_seconds,
            context_seconds=settings.encoder_context if settings.encoder_context < 30 else None,
            decode_timeout=settings.decode_timeout, session_id=session_id,
            min_input_bitrate=settings.min_input_bitrate if params.format == "auto" else 0.0,
        ) as session:  # fmt: skip
            meter = _AudioMeter(session, state.metrics)
            await outbox.send(protocol.ready_message(session_id, state.transcriber.name, params))
            await _serve(websocket, session, connection, settings, outbox, meter)
    except WebSocketDisconnect:
        log.info("client went away")
    except ProtocolError as e:
        await outbox.fail(e)
    except (DecodeError, DecoderFailure) as e:  # open_decoder: ffmpeg would not start
        await outbox.fail(decoder_error(e))
    except SchedulerClosed as e:
        await outbox.fail(ProtocolError("internal", str(e)))
    finally:
        if meter is not None:
            meter.update()
        state.sessions.pop(session_id, None)
        log.info("session closed after %.1f s of audio", meter.counted if meter is not None else 0.0)
        connection.mark_done()
        if not state.sessions:
            await release_free_memory()


async def _serve(
    websocket: WebSocket,
    session: LiveSession,
    connection: LiveConnection,
    settings: Settings,
    outbox: Outbox,
    meter: _AudioMeter,
) -> None:
    """Run the receive loop beside the session task until one ends (or the server stops the
    session: shutdown, wall-clock limit); then finish both and send the final."""
    stopping = asyncio.Event()  # the receiver's own stop check: wait_for (3.11) may swallow a cancel
    receiver = asyncio.create_task(_receive(websocket, session, settings, outbox, stopping, meter))
    worker = asyncio.create_task(session.run())
    stopper = asyncio.create_task(connection.stop_requested())
    floor = asyncio.create_task(_watch_audio_floor(session, settings))
    tasks = (receiver, worker, stopper, floor)
    try:
        done, _ = await asyncio.wait(
            tasks, timeout=settings.max_session_wall_seconds or None, return_when=asyncio.FIRST_COMPLETED
        )
        close_code = protocol.NORMAL
        if worker in done:  # after eof or at the audio limit (the receiver still watches the socket)
            pass
        elif receiver in done:
            if receiver.result() == "idle":  # result() raises: gone, bad frame
                await outbox.send(
                    protocol.error_message("timeout", f"no audio for {settings.idle_timeout:g} s")
                )
        elif floor in done:  # a trickle: frames arrive, audio does not
            await outbox.send(protocol.error_message("timeout", floor.result()))
            stopping.set()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        else:  # stopped by the server (shutdown, wall clock): audio already received still counts
            reason = stopper.result() if stopper in done else WALL_LIMIT
            log.info("ending (%s)", reason)
            close_code = protocol.GOING_AWAY if reason == SHUTDOWN else protocol.NORMAL
            stopping.set()
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiver
        await session.end_input()
        final: FinalTranscript = await worker
        await outbox.send(protocol.final_message(final))
        await outbox.close(close_code)
    finally:
        stopping.set()
        await _cancel_all(tasks)


async def _watch_audio_floor(session: LiveSession, settings: Settings) -> str:
    """Returns (the message for the client) once the session decodes less audio than
    ``STT_MIN_AUDIO_RATE`` over a window of ``STT_AUDIO_RATE_WINDOW`` seconds; never when off.
    The first window starts at the client's first byte (before it, the idle timeout applies)."""
    floor = AudioFloor(settings.min_audio_rate, settings.audio_rate_window)
    if floor.rate <= 0:
        await asyncio.Event().wait()  # no floor: wait to be cancelled with the session
    loop = asyncio.get_running_loop()
    tick = min(1.0, floor.window / 10)
    while not session.bytes_fed:
        await asyncio.sleep(tick)
    watch = AudioFloorWatch(floor, loop.time())
    while True:
        await asyncio.sleep(tick)
        gained = watch.shortfall(session.decoded_seconds, loop.time())
        if gained is not None:
            log.info("ending: %.1f s of audio in the last %g s", gained, floor.window)
            return (
                f"only {gained:.1f} s of audio decoded in the last {floor.window:g} s: a session must"
                f" send at least {floor.rate:g} s of audio per second (silence counts)"
            )


async def _cancel_all(tasks: tuple[asyncio.Task[object], ...]) -> None:
    """Cancel ``tasks`` and wait for them. Cancels again while one runs on: Python 3.11's
    ``wait_for`` drops a cancellation that arrives as its awaitable completes."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: the session's outcome was handled already


async def _receive(
    websocket: WebSocket,
    session: LiveSession,
    settings: Settings,
    outbox: Outbox,
    stopping: asyncio.Event,
    meter: _AudioMeter,
) -> str:
    """Feed binary frames to the session until ``eof``; the only socket reader. Returns "idle"
    when no frame came for the idle timeout. After ``eof`` it only watches for the client going
    away (raising :class:`WebSocketDisconnect`), so a vanished client's final is not computed.

    Audio beyond the rate limit is not refused but waited for: while the gate says so, nothing
    is read from the socket, so the client's sends block (TCP backpressure)."""
    loop = asyncio.get_running_loop()
    gate = AudioRateGate(AudioRate(settings.max_audio_rate, settings.audio_burst_seconds), loop.time())
    ended = False
    while not stopping.is_set():
        try:
            message = await asyncio.wait_for(
                websocket.receive(), None if ended else settings.idle_timeout or None
            )
        except asyncio.TimeoutError:
            return "idle"
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        if ended:
            continue  # frames after eof are ignored
        data = message.get("bytes")
        if data is not None:
            if len(data) > settings.max_frame_bytes:
                raise ProtocolError(
                    "too_large", f"frame of {len(data)} bytes is over the limit of {settings.max_frame_bytes}"
                )
            await session.feed(data)
            meter.update()
            pause = gate.delay(session.decoded_seconds, loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
            continue
        try:
            protocol.parse_control(message.get("text") or "")
        except ProtocolError as e:
            await outbox.send(e.to_message())
            continue
        await session.end_input()
        ended = True
    return "stopped"
