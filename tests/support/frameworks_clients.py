"""Voice-agent frameworks as their users run them, pointed at a server: LiveKit Agents' Deepgram
and OpenAI plugins and Pipecat's Deepgram and OpenAI Realtime speech-to-text services, each
driven through its own stream API with speech at real-time pace, in 20 ms frames.

With Deepgram Flux (``/v2/listen``): LiveKit's
``deepgram.STTv2`` (``livekit-flux``) and Pipecat's ``DeepgramFluxSTTService`` (``pipecat-flux``).

Run by the frameworks' own interpreter (``.venv-frameworks``: requirements-frameworks.txt says
why it is not the server's), never imported by the suite, so it imports neither ``tests`` nor
``wirescribe``::

    python tests/support/frameworks_clients.py CLIENT HTTP_URL AUDIO.raw [OPTIONS_JSON]

``AUDIO.raw`` is 16 kHz mono PCM16. Prints one JSON object a line for each event the framework
gives its application (``{"at": wall s, "audio_at": audio s sent, "type": ..., "text": ...}``)
and ends with ``{"type": "done"}``. Options: ``pause_at``/``pause`` (seconds of audio after which
the input stops for ``pause`` seconds, sending nothing: a muted track), ``linger`` (seconds after its last
audio frame that the stream stays open, its input ended, before it is closed: LiveKit's OpenAI
plugin waits so, sending nothing).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

RATE = 16000
FRAME = RATE // 50  # 20 ms
SETTLE_SECONDS = 10.0  # the most to wait after the audio for a turn still open to end


class Log:
    """The events in order, printed as they come; ``quiet`` is set while no speech is open."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.audio_at = 0.0
        self.last_audio = self.started  # monotonic time of the last audio frame sent
        self.quiet = asyncio.Event()
        self.quiet.set()

    def __call__(self, kind: str, text: str = "", **extra: Any) -> None:
        at = round(time.monotonic() - self.started, 3)
        event = {"at": at, "audio_at": round(self.audio_at, 3), "type": kind, "text": text, **extra}
        print(json.dumps(event), flush=True)
        if kind in ("speech_started", "interim"):
            self.quiet.clear()
        elif kind in ("final", "speech_stopped"):
            self.quiet.set()


async def send_real_time(
    log: Log, audio: np.ndarray, push: Callable[[np.ndarray], Awaitable[None]], options: dict[str, Any]
) -> None:
    """``audio`` in 20 ms frames at real-time pace (against the clock, so no drift), with the
    pause the options ask for; then silence, as a microphone goes on sending, until no turn is
    open (at most ``SETTLE_SECONDS`` more)."""
    pause_at = options.get("pause_at", -1.0)
    due = time.monotonic()

    async def send(frame: np.ndarray) -> None:
        nonlocal due
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        await push(frame)
        log.audio_at, log.last_audio = log.audio_at + len(frame) / RATE, time.monotonic()
        due += len(frame) / RATE

    for start in range(0, len(audio), FRAME):
        if 0 <= pause_at and start <= pause_at * RATE < start + FRAME:
            log("paused", seconds=options["pause"])
            due += options["pause"]
        await send(audio[start : start + FRAME])
    log("audio_sent")
    settled = time.monotonic() + SETTLE_SECONDS
    while not log.quiet.is_set():
        if time.monotonic() > settled:
            log("still_open")
            break
        await send(np.zeros(FRAME, dtype=audio.dtype))


async def livekit(client: str, http: str, audio: np.ndarray, options: dict[str, Any], log: Log) -> None:
    from livekit import rtc
    from livekit.agents import stt
    from livekit.agents.utils import http_context

    names = {
        stt.SpeechEventType.START_OF_SPEECH: "speech_started",
        stt.SpeechEventType.INTERIM_TRANSCRIPT: "interim",
        stt.SpeechEventType.PREFLIGHT_TRANSCRIPT: "preflight",
        stt.SpeechEventType.FINAL_TRANSCRIPT: "final",
        stt.SpeechEventType.END_OF_SPEECH: "speech_stopped",
    }
    async with http_context.open():  # what a LiveKit job gives its plugins
        engine: stt.STT
        if client == "livekit-deepgram":
            from livekit.plugins import deepgram

            engine = deepgram.STT(base_url=f"{http}/v1/listen", api_key="unused")
        elif client == "livekit-flux":
            from livekit.plugins import deepgram

            engine = deepgram.STTv2(base_url=f"ws{http[4:]}/v2/listen", api_key="unused")
        else:
            from livekit.plugins import openai

            engine = openai.STT(use_realtime=True, base_url=f"{http}/v1", api_key="unused")
        engine.on("error", lambda e: log("error", str(e.error), recoverable=e.recoverable))
        stream = engine.stream()

        async def read() -> None:
            try:
                async for event in stream:
                    if event.type in names:
                        text = event.alternatives[0].text if event.alternatives else ""
                        log(names[event.type], text)
            except Exception as e:  # noqa: BLE001 - the stream's failure is an event of the run
                log("stream_failed", repr(e))

        async def push(samples: np.ndarray) -> None:
            stream.push_frame(rtc.AudioFrame(samples.tobytes(), RATE, 1, len(samples)))

        reader = asyncio.create_task(read())
        await send_real_time(log, audio, push, options)
        stream.end_input()
        log("input_ended")
        linger = options.get("linger", SETTLE_SECONDS) - (time.monotonic() - log.last_audio)
        done, _ = await asyncio.wait({reader}, timeout=max(0.0, linger))
        if not done:
            log("stream_open")
        await stream.aclose()
        await engine.aclose()


async def pipecat(client: str, http: str, audio: np.ndarray, options: dict[str, Any], log: Log) -> None:
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import (
        EndFrame,
        Frame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        ProposedUserStartedSpeakingFrame,
        ProposedUserStoppedSpeakingFrame,
        TranscriptionFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.audio.vad_processor import VADProcessor
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.stt_service import STTService
    from pipecat.workers.runner import WorkerRunner

    class Collector(FrameProcessor):
        """The pipeline's end: what the application downstream of the STT service receives."""

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TranscriptionFrame):
                log("final", frame.text)
            elif isinstance(frame, InterimTranscriptionFrame):
                log("interim", frame.text)
            elif isinstance(frame, VADUserStartedSpeakingFrame):
                log("speech_started")
            elif isinstance(frame, VADUserStoppedSpeakingFrame):
                log("vad_stopped")  # the service finalizes (Deepgram) or commits (OpenAI) here
            elif isinstance(frame, ProposedUserStartedSpeakingFrame):
                log("speech_started")  # Flux's StartOfTurn
            elif isinstance(frame, ProposedUserStoppedSpeakingFrame):
                log("speech_stopped")  # Flux's EndOfTurn
            await self.push_frame(frame, direction)

    service: STTService
    vad: list[FrameProcessor] = [VADProcessor(vad_analyzer=SileroVADAnalyzer())]
    if client == "pipecat-flux":  # the turns are the server's: no VAD in the pipeline
        from pipecat.services.deepgram.flux.stt import DeepgramFluxSTTService

        service, vad = DeepgramFluxSTTService(api_key="unused", url=f"ws{http[4:]}/v2/listen"), []
    elif client == "pipecat-deepgram":
        from pipecat.services.deepgram.stt import DeepgramSTTService

        service = DeepgramSTTService(api_key="unused", base_url=http)
    else:
        from pipecat.services.openai.stt import OpenAIRealtimeSTTService

        # its default model, gpt-realtime-whisper, is not one this server answers to
        settings = OpenAIRealtimeSTTService.Settings(model=options.get("model", "gpt-4o-transcribe"))
        service = OpenAIRealtimeSTTService(
            api_key="unused", base_url=f"ws{http[4:]}/v1/realtime", settings=settings
        )
    # Silero in the pipeline, as Pipecat's own examples have it: it decides the turns
    worker = PipelineWorker(
        Pipeline([*vad, service, Collector()]), params=PipelineParams(audio_in_sample_rate=RATE),
        enable_rtvi=False, idle_timeout_secs=None,
    )  # fmt: skip

    @worker.event_handler("on_pipeline_error")
    async def on_error(_worker: Any, frame: Any) -> None:
        log("error", str(frame.error))

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())

    async def push(samples: np.ndarray) -> None:
        frame = InputAudioRawFrame(audio=samples.tobytes(), sample_rate=RATE, num_channels=1)
        await worker.queue_frame(frame)

    await send_real_time(log, audio, push, options)
    await worker.queue_frame(EndFrame())
    log("input_ended")
    await asyncio.wait_for(running, SETTLE_SECONDS)


def main() -> None:
    client, http, path = sys.argv[1:4]
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    audio = np.fromfile(path, dtype="<i2")
    run = livekit if client.startswith("livekit-") else pipecat

    async def go() -> None:
        await run(client, http, audio, options, Log())

    asyncio.run(go())
    print(json.dumps({"type": "done"}), flush=True)


if __name__ == "__main__":
    main()
