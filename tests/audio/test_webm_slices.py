"""WebM time slicing: cuts follow the blocks' timestamps, not the byte count."""

from __future__ import annotations

import numpy as np
import pytest

from wirescribe.audio.decode import SAMPLE_RATE, decode_file, encode_audio
from wirescribe.audio.webm import NotWebM, block_times, time_slices


def _element(eid: int, body: bytes, *, unknown_size: bool = False) -> bytes:
    head = eid.to_bytes((eid.bit_length() + 7) // 8, "big")
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown_size else (0x80 | len(body)).to_bytes(1, "big")
    return head + size + body


def _simple_block(relative_ms: int) -> bytes:
    # track 1, relative timecode, keyframe flag, then a stand-in frame
    return _element(0xA3, b"\x81" + relative_ms.to_bytes(2, "big", signed=True) + b"\x80" + b"\x00" * 10)


def _live_webm(cluster_ms: int, blocks_ms: list[int], scale_ns: int = 1_000_000) -> bytes:
    """A WebM as a browser streams it: Segment and Cluster of unknown size."""
    ebml = _element(0x1A45DFA3, _element(0x4282, b"webm"))
    info = _element(0x1549A966, _element(0x2AD7B1, scale_ns.to_bytes(3, "big")))
    cluster = _element(0xE7, cluster_ms.to_bytes(2, "big")) + b"".join(_simple_block(ms) for ms in blocks_ms)
    segment = info + _element(0x1F43B675, cluster, unknown_size=True)
    return ebml + _element(0x18538067, segment, unknown_size=True)


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    """4 s: a loud half then a quiet half, so Opus spends far more bytes on the first."""
    rng = np.random.default_rng(0)
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    loud = tone + 0.1 * rng.standard_normal(t.size)
    return np.concatenate([loud, np.zeros(2 * SAMPLE_RATE)]).astype(np.float32)


def test_slices_join_back_into_the_stream_and_start_on_their_boundary(speechlike: np.ndarray) -> None:
    data = encode_audio(speechlike, "webm")
    slices = time_slices(data, 0.25)
    assert b"".join(slices) == data
    assert 16 <= len(slices) <= 17  # 4 s in 0.25 s slices (+ the encoder's last frame)
    starts = dict(block_times(data))
    offset = len(slices[0])
    for k, piece in enumerate(slices[1:], start=1):
        assert k * 0.25 <= starts[offset] < k * 0.25 + 0.021, f"slice {k} starts at {starts[offset]} s"
        offset += len(piece)


def test_a_prefix_of_slices_holds_that_much_audio_though_bytes_are_uneven(
    speechlike: np.ndarray, tmp_path
) -> None:
    data = encode_audio(speechlike, "webm")
    slices = time_slices(data, 0.25)
    half = b"".join(slices[:8])  # the loud 2 s
    assert len(half) > 0.7 * len(data)  # a byte-share cut would hand over far less than 2 s here
    path = tmp_path / "prefix.webm"
    path.write_bytes(half)
    assert len(decode_file(path)) / SAMPLE_RATE == pytest.approx(2.0, abs=0.05)


def test_unknown_sizes_and_timecode_scale_as_a_browser_writes_them() -> None:
    data = _live_webm(1000, [0, 20, 40, 60, 80, 100])
    assert [round(t, 3) for _, t in block_times(data)] == [1.0, 1.02, 1.04, 1.06, 1.08, 1.1]
    slices = time_slices(data, 0.05)  # the stream starts at 1 s: empty slices before its first block
    assert b"".join(slices) == data
    # header | blocks 1.0, 1.02, 1.04 | 1.06, 1.08 | 1.1
    assert [len(s) for s in slices if s][1:] == [3 * 16, 2 * 16, 16]  # 16 bytes a block
    scaled = _live_webm(100, [0, 2, 4], scale_ns=10_000_000)  # 10 ms units
    assert [round(t, 3) for _, t in block_times(scaled)] == [1.0, 1.02, 1.04]


@pytest.mark.parametrize(
    "data",
    [b"RIFF\x24\x00\x00\x00WAVEfmt ", b"", b"\x1a\x45\xdf\xa3\x88\x42\x82", b"\x00\x00\x00\x00"],
    ids=["wav", "empty", "truncated", "zeros"],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(NotWebM):
        time_slices(data, 0.25)
