"""Deepgram Flux (``/v2/listen``) end to end: the official, unmodified ``deepgram-sdk``
``listen.v2`` client against a real server (real model, real end-of-turn model), streaming real
speech at real-time pace: TurnInfo events in Flux's order, each turn's EndOfTurn text, ForceEndTurn,
Configure, and the refusals Flux gives bad settings (docs/compatibility.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.support import DATA, LiveServer, Utterance, join_utterances
from tests.support.compat_clients import SAMPLE_RATE, chunks, to_pcm16
from wirescribe.wer import word_error_rate

pytestmark = pytest.mark.e2e
WER_BOUND = 0.15  # as for the other SDKs' real-time streams of the same speech
PAUSE = 3.0  # seconds of silence after each utterance: more than the turns' eot_timeout_ms below
Cue = tuple[float, Callable[[Any], Awaitable[None]]]  # (audio clock seconds, what the client sends)


@dataclass(frozen=True)
class Received:
    at: float  # seconds on the audio clock
    sdk_type: str  # the class the SDK parsed the message into
    message: dict[str, Any]


@dataclass
class FluxRun:
    messages: list[Received] = field(default_factory=list)
    close_code: int | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r.message for r in self.messages if r.message.get("type") == kind]

    def events(self, *kinds: str) -> list[dict[str, Any]]:
        return [m for m in self.of_type("TurnInfo") if not kinds or m["event"] in kinds]


async def flux(
    http_base: str, audio: bytes, *, bytes_per_second: int, cues: tuple[Cue, ...] = (),
    chunk_seconds: float = 0.1, ends_before_close: int = 0, timeout: float = 180.0, **options: Any,
) -> FluxRun:  # fmt: skip
    """``AsyncDeepgramClient.listen.v2.connect`` pointed at this server, ``options`` as its
    query; ``audio`` in real time, each cue sent once the audio clock passes its time, then
    (once ``ends_before_close`` turns have ended) ``CloseStream``; every message until the
    server closes."""
    from deepgram import AsyncDeepgramClient
    from deepgram.environment import DeepgramClientEnvironment

    ws_base = "ws" + http_base.removeprefix("http")
    env = DeepgramClientEnvironment(base=http_base, production=ws_base, agent=ws_base, agent_rest=http_base)
    client = AsyncDeepgramClient(api_key="unused", environment=env)
    run = FluxRun()
    async with client.listen.v2.connect(model="flux-general-en", **options) as conn:
        t0 = time.monotonic()

        async def receive() -> None:
            async for message in conn:
                if not isinstance(message, bytes):
                    data = (
                        message.model_dump(exclude_unset=True) if hasattr(message, "model_dump") else message
                    )
                    run.messages.append(Received(time.monotonic() - t0, type(message).__name__, dict(data)))

        receiver = asyncio.create_task(receive())
        pending = sorted(cues, key=lambda c: c[0])
        for i, piece in enumerate(chunks(audio, bytes_per_second, chunk_seconds)):
            await asyncio.sleep(max(0.0, t0 + (i + 1) * chunk_seconds - time.monotonic()))
            await conn.send_media(piece)
            while pending and pending[0][0] <= (i + 1) * chunk_seconds:
                await pending.pop(0)[1](conn)
        for _, send in pending:
            await send(conn)
        deadline = time.monotonic() + timeout
        while len(run.events("EndOfTurn")) < ends_before_close and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the client waits for the answer, as an agent would
        await conn.send_close_stream()
        await asyncio.wait_for(receiver, timeout)  # ends when the server closes
        run.close_code = conn._websocket.close_code  # the SDK keeps the socket here
    return run


def check_flux_order(run: FluxRun) -> list[dict[str, Any]]:
    """Flux's promises about its messages, for any run; returns the EndOfTurn messages.

    ``Connected`` first; ``sequence_id`` 0, 1, 2, …; every message parsed by the SDK into its own
    type; and the state machine: StartOfTurn opens turn ``turn_index`` (0, 1, … : it counts on
    after each EndOfTurn), Updates while it is open, TurnResumed only after an EagerEndOfTurn, an
    EndOfTurn right after an EagerEndOfTurn repeats its transcript, ``trigger`` on EndOfTurn only."""
    assert run.messages[0].message["type"] == "Connected"
    assert [r.message["sequence_id"] for r in run.messages] == list(range(len(run.messages)))
    for r in run.messages:
        assert r.sdk_type == f"ListenV2{r.message['type']}".replace("Error", "FatalError"), r
    ends: list[dict[str, Any]] = []
    turn: int | None = None  # the open turn
    eager: str | None = None  # the transcript of an EagerEndOfTurn awaiting its outcome
    for m in run.events():
        event = m["event"]
        assert ("trigger" in m) == (event == "EndOfTurn"), m
        if event == "StartOfTurn":
            assert turn is None, "a StartOfTurn inside a turn"
            turn = m["turn_index"]
            assert turn == len(ends)
            continue
        assert turn is not None and m["turn_index"] == turn, m
        assert m["audio_window_start"] <= m["audio_window_end"]
        if event == "EagerEndOfTurn":
            assert m["transcript"] and eager is None
            eager = m["transcript"]
        elif event == "TurnResumed":
            assert eager is not None, "TurnResumed without an EagerEndOfTurn"
            eager = None
        elif event == "Update":
            assert eager is None or m["transcript"] == eager
        elif event == "EndOfTurn":
            assert eager is None or m["transcript"] == eager
            assert all(w["word"] and 0 <= w["confidence"] <= 1 for w in m["words"])
            ends.append(m)
            turn, eager = None, None
    assert turn is None, "a turn left open after the stream closed"
    return ends


@pytest.fixture(scope="module")
def two_turns(utterances: list[Utterance]) -> tuple[np.ndarray, str]:
    """The first and last LibriVox utterances (about 10 s of speech), each followed by 3 s of silence."""
    return join_utterances([utterances[0], utterances[-1]], pause=PAUSE)


def test_turns_arrive_in_fluxs_order_with_their_text(
    live_server: LiveServer, two_turns: tuple[np.ndarray, str]
) -> None:
    audio, reference = two_turns
    run = asyncio.run(flux(
        live_server.http, to_pcm16(audio), bytes_per_second=2 * SAMPLE_RATE, encoding="linear16",
        sample_rate=SAMPLE_RATE, eot_timeout_ms=2500, eager_eot_threshold=0.4,
    ))  # fmt: skip
    assert run.close_code == 1000
    assert not run.of_type("Error") and not run.of_type("Warning")
    ends = check_flux_order(run)
    # Each utterance is a turn, ended in the pause after it (by the model, or at the latest by
    # eot_timeout_ms: the pause is longer), never at the end of the stream.
    assert len(ends) == 2, [e["transcript"] for e in ends]
    assert all(e["trigger"] in ("model", "timeout") for e in ends), [e["trigger"] for e in ends]
    text = " ".join(e["transcript"] for e in ends)
    assert word_error_rate(reference, text) <= WER_BOUND, text
    assert all(e["words"] for e in ends)
    # While a turn goes on, Updates tell its text so far, growing, before the turn ends.
    for index, end in enumerate(ends):
        updates = [m for m in run.events("Update") if m["turn_index"] == index]
        assert len(updates) >= 2, f"turn {index}: {len(updates)} updates"
        assert any(m["transcript"] for m in updates)
        assert updates[-1]["audio_window_end"] <= end["audio_window_end"] + 0.5
    first_update = next(r.at for r in run.messages if r.message.get("event") == "Update")
    first_end = next(r.at for r in run.messages if r.message.get("event") == "EndOfTurn")
    assert first_update < first_end - 1.0  # text came while the speech went on, not only at its end


def test_force_end_turn_and_configure(live_server: LiveServer, utterances: list[Utterance]) -> None:
    """eot_threshold 1.0 and a long eot_timeout_ms leave the turn to the client (Flux's "bring your
    own turn detection"): Configure is answered (a bad one changes nothing), and ForceEndTurn
    after the speech ends the turn at once with trigger ``manual``."""
    audio, reference = join_utterances(utterances[:1], pause=1.5)

    async def bad_configure(conn: Any) -> None:
        await conn.send_configure({"type": "Configure", "thresholds": {"eot_threshold": 0.3}})

    async def configure(conn: Any) -> None:
        await conn.send_configure({"type": "Configure", "thresholds": {"eot_timeout_ms": 9000},
                                   "keyterms": ["Dashwood"]})  # fmt: skip

    async def force_end(conn: Any) -> None:
        await conn.send_force_end_turn()

    cues: tuple[Cue, ...] = ((0.5, bad_configure), (1.0, configure), (len(audio) / SAMPLE_RATE, force_end))
    run = asyncio.run(flux(
        live_server.http, to_pcm16(audio), bytes_per_second=2 * SAMPLE_RATE, cues=cues, encoding="linear16",
        sample_rate=SAMPLE_RATE, eot_threshold=1.0, eot_timeout_ms=10000, ends_before_close=1,
    ))  # fmt: skip
    assert run.close_code == 1000
    (failure,) = run.of_type("ConfigureFailure")
    assert failure["code"] == "INVALID_THRESHOLD" and "eot_threshold" in failure["description"]
    (success,) = run.of_type("ConfigureSuccess")
    assert success["thresholds"] == {"eot_threshold": 1.0, "eot_timeout_ms": 9000}
    assert success["keyterms"] == ["Dashwood"]
    (end,) = check_flux_order(run)
    assert end["trigger"] == "manual" and end["end_of_turn_confidence"] == 1.0
    assert word_error_rate(reference, end["transcript"]) <= WER_BOUND, end["transcript"]
    messages = [r.message for r in run.messages]
    assert messages.index(failure) < messages.index(success) < messages.index(end)


def test_containerised_audio_without_an_encoding(live_server: LiveServer) -> None:
    """No ``encoding``: the audio is a container (here Ogg/Opus), decoded by ffmpeg as on
    ``/v1/listen``; the stream's end ends the open turn (trigger ``eof``) if nothing did before."""
    ogg = (DATA.parent / "prompts" / "billing.ogg").read_bytes()
    seconds = 3.0  # about the prompt's length: the file is sent over it
    run = asyncio.run(
        flux(live_server.http, ogg, bytes_per_second=int(len(ogg) / seconds), chunk_seconds=0.25)
    )
    assert run.close_code == 1000 and not run.of_type("Error")
    ends = check_flux_order(run)
    text = " ".join(e["transcript"] for e in ends)
    assert word_error_rate("Hi, I'm calling about my internet bill.", text) <= WER_BOUND, text


@pytest.mark.parametrize(
    "options",
    [{"eot_threshold": 0.3}, {"eot_threshold": 1.5}, {"eager_eot_threshold": 0.95},
     {"eot_threshold": 0.6, "eager_eot_threshold": 0.8}, {"eot_timeout_ms": 100}, {"eot_timeout_ms": "soon"},
     {"encoding": "speex", "sample_rate": 16000}, {"encoding": "linear16"}],
)  # fmt: skip
def test_bad_settings_are_refused_as_flux_refuses_them(
    live_server: LiveServer, options: dict[str, Any]
) -> None:
    """Refused at the handshake, HTTP 400 with Deepgram's body: the SDK raises ApiError(400)."""
    from deepgram.core.api_error import ApiError

    with pytest.raises(ApiError) as e:
        asyncio.run(flux(live_server.http, b"", bytes_per_second=32000, **options))
    assert e.value.status_code == 400
