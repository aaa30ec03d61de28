"""Fuzzing /ws/transcribe with hypothesis against a real server.

Random and mutated inputs in every format: random bytes, WebM cut at random offsets, valid WebM
followed by junk or with bytes flipped, empty frames, frames over the size limit, f32 with NaN
and infinities, text frames that are not JSON / not objects / of unknown types, parameters out of
range. Each exchange must end, within a bounded time, in a protocol ``error`` with its documented
close code or in a correct ``final`` — never a crash, a hang, a traceback sent to the client, or
an ffmpeg left behind — and a normal session right after must work.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import time
import urllib.parse
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import LiveServer, Utterance, join_utterances
from tests.support.ws import assert_well_formed, exchange, final_of, wait_until_idle
from wirescribe.audio.decode import SAMPLE_RATE, encode_audio
from wirescribe.client import StreamResult, pcm16_slices, stream, webm_slices

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 60  # per kind of input
BUDGET_SECONDS = 8.0  # per kind: examples past this pass without running, so the run stays bounded
EXCHANGE_TIMEOUT = 30.0  # no single exchange may take longer (a hang fails the test)
FRAME_LIMIT = 1 << 20  # the server's default STT_MAX_FRAME_BYTES
EOF_FRAME = '{"type": "eof"}'

KINDS = ["random", "webm_cut", "webm_junk", "webm_flipped", "empty", "huge", "text", "f32_special", "pcm_odd",
         "bad_query"]  # fmt: skip


@dataclass
class Scenario:
    kind: str
    query: dict[str, str]
    frames: list[bytes | str]
    ending: str  # "eof": the client asks for the final; "close": it just leaves
    expect: set[str] = field(default_factory=set)  # acceptable outcomes, see outcome()

    @property
    def url_query(self) -> str:
        return urllib.parse.urlencode(self.query)


def valid_query(fmt: str) -> st.SearchStrategy[dict[str, str]]:
    rates = st.sampled_from(["8000", "16000", "22050", "44100", "48000"])
    return st.fixed_dictionaries(
        {"format": st.just(fmt)}, optional={"sample_rate": rates, "language": st.just("en")}
    )


bad_format = st.text(max_size=8).filter(lambda f: f not in ("auto", "pcm16", "f32"))
bad_rate = st.one_of(
    st.integers(-(10**9), 10**9).filter(lambda r: not 8000 <= r <= 48000).map(str),
    st.text(max_size=8).filter(lambda r: not r.strip().isdigit()),
)
bad_query = st.one_of(
    st.fixed_dictionaries({"format": bad_format}),
    st.fixed_dictionaries({"sample_rate": bad_rate}),
    st.fixed_dictionaries({"language": st.text(min_size=1, max_size=5).filter(lambda x: x != "en")}),
)

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
json_junk = st.one_of(
    st.text(max_size=200),  # mostly not JSON
    st.recursive(scalars, st.lists, max_leaves=8).map(json.dumps),  # JSON, not an object
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3).map(json.dumps),  # objects without a type
    st.builds(
        lambda t: json.dumps({"type": t}), st.one_of(st.integers(), st.none(), st.lists(st.integers()))
    ),
    st.builds(lambda t: json.dumps({"type": t}), st.text(max_size=60).filter(lambda t: t != "eof")),
    st.just("[" * 5000 + "]" * 5000),  # deep nesting
)


def chunked(data: bytes, sizes: list[int]) -> list[bytes | str]:
    out: list[bytes | str] = []
    i = 0
    for size in sizes:
        if i >= len(data):
            break
        out.append(data[i : i + size])
        i += size
    if i < len(data):
        out.append(data[i:])
    return out


@st.composite
def scenarios(draw: st.DrawFn, kind: str, webm: bytes, pcm16: bytes) -> Scenario:
    """One exchange of the given kind: parameters, frames and ending, with the outcomes the
    protocol allows for it."""
    ending = draw(st.sampled_from(["eof", "eof", "eof", "close"]))
    sizes = draw(st.lists(st.integers(1, 8000), min_size=1, max_size=8))
    if kind == "random":
        fmt = draw(st.sampled_from(["auto", "pcm16", "f32"]))
        frames: list[bytes | str] = draw(st.lists(st.binary(max_size=6000), max_size=6))
        expect = {"final", "bad_audio"}
    elif kind == "webm_cut":
        fmt, cut = "auto", draw(st.integers(0, len(webm)))
        frames, expect = chunked(webm[:cut], sizes), {"final", "bad_audio"}
    elif kind == "webm_junk":
        fmt = "auto"
        frames = [*chunked(webm, sizes), draw(st.binary(min_size=1, max_size=4000))]
        expect = {"final", "bad_audio"}
    elif kind == "webm_flipped":
        fmt, data = "auto", bytearray(webm)
        for pos in draw(st.lists(st.integers(0, len(webm) - 1), min_size=1, max_size=20)):
            data[pos] ^= draw(st.integers(1, 255))
        frames, expect = chunked(bytes(data), sizes), {"final", "bad_audio"}
    elif kind == "empty":
        fmt = draw(st.sampled_from(["auto", "pcm16", "f32"]))
        frames, expect = [b""] * draw(st.integers(1, 5)), {"final"}
    elif kind == "huge":
        fmt = draw(st.sampled_from(["auto", "pcm16", "f32"]))
        frames, expect = [b"\x00" * (FRAME_LIMIT + draw(st.integers(1, 4096)))], {"too_large"}
    elif kind == "text":
        fmt = draw(st.sampled_from(["auto", "pcm16"]))
        audio = chunked(webm if fmt == "auto" else pcm16, sizes)
        junk = draw(st.lists(json_junk, min_size=1, max_size=5))
        frames = [*audio[:1], *junk, *audio[1:]]
        expect = {"final"}  # bad_message errors do not end the session
    elif kind == "f32_special":
        fmt = "f32"
        samples = np.array(draw(st.lists(st.floats(width=32), min_size=1, max_size=800)), dtype="<f4")
        if draw(st.booleans()):  # make sure NaN and infinities come up often
            samples[draw(st.integers(0, len(samples) - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if draw(st.integers(0, 3)) == 0:
            samples[:] = 0.0  # all-zero streams too
        frames = [samples.tobytes()]  # one frame: no sample split between frames
        expect = {"final"} if np.all(np.isfinite(samples)) else {"bad_audio"}
    elif kind == "pcm_odd":
        fmt = "pcm16"
        frames, expect = chunked(pcm16, [s | 1 for s in sizes]), {"final"}  # odd sizes split samples
    else:  # bad_query
        fmt, frames, expect = "", [b"\x00" * 100], {"bad_request"}
    query = draw(bad_query) if kind == "bad_query" else draw(valid_query(fmt))
    if ending == "eof":
        frames = [*frames, EOF_FRAME]
    return Scenario(kind, query, frames, ending, expect)


def outcome(result: StreamResult) -> str:
    fatal = [m["code"] for m in result.errors if m["code"] != "bad_message"]
    if fatal:
        return fatal[0]
    return "final" if result.final is not None else "none"


@dataclass
class Tally:
    tried: int = 0
    skipped: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)


TALLY = Tally()  # across the kinds, reported by the last test
SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@pytest.fixture(scope="module")
def media(utterances: list[Utterance]) -> tuple[np.ndarray, bytes, bytes]:
    speech = join_utterances(utterances[1:2], pause=0.3)[0]  # 'he was not an ill disposed young man'
    return speech, encode_audio(speech, "webm"), b"".join(pcm16_slices(speech))


def check(scn: Scenario, result: StreamResult) -> str:
    got = outcome(result)
    closed = scn.ending == "close"  # then the close code may be the echo of the client's own
    assert_well_formed(result, client_closed=closed)
    if got == "bad_request":
        assert result.of_type("ready") == [] and (closed or result.close_code == 1008)
    elif not closed:  # a client that closes at once may not even see ready
        assert result.messages and result.messages[0].message["type"] == "ready", result.messages[:2]
    if not closed or got not in ("final", "none"):
        assert got in scn.expect, (scn.kind, got, result.errors, result.close_code)
    if got == "final":
        assert closed or result.close_code == 1000
        assert not math.isnan(final_of(result)["audio_seconds"])
    if scn.kind == "text" and got == "final":
        assert all(m["code"] == "bad_message" for m in result.errors)
    return got


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz(live_server: LiveServer, media: tuple[np.ndarray, bytes, bytes], kind: str) -> None:
    _, webm, pcm16 = media
    started = time.monotonic()

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=SLOW_IS_FINE)
    @given(scenarios(kind, webm, pcm16))
    def one(scn: Scenario) -> None:
        if time.monotonic() - started > BUDGET_SECONDS:
            TALLY.skipped += 1
            return
        began = time.monotonic()
        url = f"{live_server.ws}?{scn.url_query}"
        result = asyncio.run(exchange(url, scn.frames, timeout=EXCHANGE_TIMEOUT, close=scn.ending == "close"))
        TALLY.slowest = max(TALLY.slowest, time.monotonic() - began)
        TALLY.tried += 1
        TALLY.outcomes[f"{kind}:{check(scn, result)}"] += 1

    one()
    TALLY.seconds += time.monotonic() - started
    state = wait_until_idle(live_server, timeout=20)
    assert state["sessions"] == 0 and state["ffmpeg_children"] == [], state


def test_server_is_healthy_after_the_fuzz(
    live_server: LiveServer, media: tuple[np.ndarray, bytes, bytes]
) -> None:
    speech, _, _ = media
    print(f"\nfuzz: {TALLY.tried} inputs tried in {TALLY.seconds:.0f} s (+{TALLY.skipped} past the budgets), "
          f"slowest exchange {TALLY.slowest:.1f} s")  # fmt: skip
    print("fuzz outcomes:", dict(sorted(TALLY.outcomes.items())))
    state = wait_until_idle(live_server, timeout=20)
    assert state["sessions"] == 0 and state["ffmpeg_children"] == [], state
    after = asyncio.run(stream(live_server.ws, webm_slices(speech), interval=None))
    assert_well_formed(after)
    assert after.close_code == 1000 and "young man" in final_of(after)["text"].lower()
    assert final_of(after)["audio_seconds"] == pytest.approx(len(speech) / SAMPLE_RATE, abs=0.1)
    log = live_server.log.read_text()
    assert "Traceback" not in log and "Exception in ASGI application" not in log
