"""Cut a WebM stream into time slices, the way a browser's MediaRecorder hands them out.

MediaRecorder with a timeslice of 250 ms emits, every 250 ms, the bytes of the frames encoded in
that interval. Opus is variable-bitrate, so slices of equal *byte* share are not slices of equal
*time*: speech packs more bytes per second than silence, and a byte-share slicer delivers the audio
after a run of speech up to a second late, which a latency benchmark then counts against the
server. This module reads the WebM block timestamps (a minimal EBML walk: Segment, Info's
TimecodeScale, Cluster, Timecode, SimpleBlock/BlockGroup) and cuts just before the first block
that starts at or after each slice boundary.
"""

from __future__ import annotations

import itertools

SEGMENT, INFO, TIMECODE_SCALE = 0x18538067, 0x1549A966, 0x2AD7B1
CLUSTER, CLUSTER_TIMECODE, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1
_MASTERS = {SEGMENT, INFO, CLUSTER, BLOCK_GROUP}


class NotWebM(ValueError):
    """The bytes are not a WebM/Matroska stream this walker can read."""


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, new position, all value bits set: the "unknown size" marker) of an EBML varint."""
    if pos >= len(data):
        raise NotWebM("truncated element")
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        raise NotWebM("bad variable-length integer")
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = value << 8 | b
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, pos + length, unknown


def block_times(data: bytes) -> list[tuple[int, float]]:
    """(byte offset where the block's element starts, start time in seconds) of every block."""
    scale = 1_000_000  # ns per timecode unit: Matroska's default, 1 ms
    cluster_tc = 0
    out: list[tuple[int, float]] = []
    pos = 0
    while pos < len(data):
        start = pos
        eid, pos, _ = _vint(data, pos, keep_marker=True)
        size, pos, unknown = _vint(data, pos, keep_marker=False)
        if eid in _MASTERS:
            continue  # descend: its children follow (works for unknown sizes too)
        if unknown or pos + size > len(data):
            raise NotWebM(f"element 0x{eid:X} runs past the end")
        body = data[pos : pos + size]
        if eid == TIMECODE_SCALE:
            scale = int.from_bytes(body, "big") or scale
        elif eid == CLUSTER_TIMECODE:
            cluster_tc = int.from_bytes(body, "big")
        elif eid in (SIMPLE_BLOCK, BLOCK):
            _, at, _ = _vint(body, 0, keep_marker=False)  # track number
            relative = int.from_bytes(body[at : at + 2], "big", signed=True)
            out.append((start, (cluster_tc + relative) * scale / 1e9))
        pos += size
    if not out:
        raise NotWebM("no audio blocks")
    return out


def time_slices(data: bytes, slice_seconds: float) -> list[bytes]:
    """``data`` cut before the first block at or after each multiple of ``slice_seconds``;
    the header goes with the first slice. Raises :class:`NotWebM` on anything else."""
    if slice_seconds <= 0:
        raise ValueError("slice_seconds must be positive")
    cuts: list[int] = []
    boundary = slice_seconds
    for offset, t in block_times(data):
        while t >= boundary - 1e-9:  # more than one boundary: empty slices for a gap in time
            cuts.append(offset)
            boundary += slice_seconds
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]
