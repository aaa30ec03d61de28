"""buffer.GrowableBuffer: absolute indices, views that stay valid, amortised growth."""

from __future__ import annotations

import numpy as np
import pytest

from wirescribe.audio.buffer import BufferRangeError, GrowableBuffer


def test_append_and_view_by_absolute_index() -> None:
    buf = GrowableBuffer(np.float32, capacity=4)
    assert (buf.start, buf.end, len(buf)) == (0, 0, 0)
    buf.append(np.arange(3, dtype=np.float32))
    buf.append(np.arange(3, 10, dtype=np.float32))
    assert (buf.start, buf.end, len(buf)) == (0, 10, 10)
    assert buf.view().tolist() == list(range(10))
    assert buf.view(2, 5).tolist() == [2, 3, 4]
    buf.discard_before(4)
    assert (buf.start, buf.end, len(buf)) == (4, 10, 6)
    assert buf.view(4, 7).tolist() == [4, 5, 6]
    assert buf.view().tolist() == list(range(4, 10))


def test_views_are_read_only_and_not_copies() -> None:
    buf = GrowableBuffer(np.float32)
    buf.append(np.ones(100, dtype=np.float32))
    view = buf.view(10, 20)
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 5
    assert np.shares_memory(view, buf.view())


def test_views_outside_the_buffer_are_refused() -> None:
    buf = GrowableBuffer(np.float32, start=100)
    buf.append(np.zeros(50, dtype=np.float32))
    buf.discard_before(120)
    for lo, hi in [(110, 130), (140, 160), (130, 125), (0, 10)]:
        with pytest.raises(BufferRangeError):
            buf.view(lo, hi)
    assert len(buf.view(150, 150)) == 0
    assert len(buf.view(120, 150)) == 30


def test_discard_is_clamped() -> None:
    buf = GrowableBuffer(np.float32, start=10)
    buf.append(np.zeros(5, dtype=np.float32))
    buf.discard_before(3)  # before the start: nothing
    assert (buf.start, buf.end) == (10, 15)
    buf.discard_before(1000)  # past the end: all gone, the end stays
    assert (buf.start, buf.end, len(buf)) == (15, 15, 0)
    buf.append(np.ones(2, dtype=np.float32))
    assert (buf.start, buf.end) == (15, 17) and buf.view().tolist() == [1, 1]


def test_items_are_converted_to_the_dtype() -> None:
    audio = GrowableBuffer(np.float32)
    audio.append(np.array([1, -2], dtype=np.int16))
    assert audio.view().dtype == np.float32 and audio.view().tolist() == [1.0, -2.0]
    flags = GrowableBuffer(bool)
    flags.append(np.array([True, False]))
    assert flags.view().dtype == np.bool_ and flags.view().tolist() == [True, False]
    audio.append(np.zeros(0, dtype=np.float32))
    assert audio.end == 2


def test_old_views_keep_their_items_through_appends_discards_and_growth() -> None:
    """A window given to the model thread must not change while the loop goes on."""
    rng = np.random.default_rng(3)
    truth = rng.standard_normal(200_000).astype(np.float32)
    buf = GrowableBuffer(np.float32, capacity=1000)
    kept: list[tuple[int, int, np.ndarray]] = []
    at = 0
    while at < len(truth):
        n = int(rng.integers(1, 3000))
        buf.append(truth[at : at + n])
        at = min(len(truth), at + n)
        if rng.random() < 0.3:
            lo = int(rng.integers(buf.start, buf.end + 1))
            kept.append((lo, buf.end, buf.view(lo, buf.end)))
        if rng.random() < 0.2:
            buf.discard_before(buf.end - int(rng.integers(0, 20_000)))
        assert np.array_equal(buf.view(), truth[buf.start : buf.end])
    assert len(kept) > 10
    for lo, hi, view in kept:
        assert np.array_equal(view, truth[lo:hi])


def test_growth_is_amortised_and_memory_bounded() -> None:
    """A session's pattern: 100 ms appended, the window kept near 20 s. Storage is re-allocated
    rarely (doubling), and never holds more than about twice the window."""
    block, window = 1600, 20 * 16000
    buf = GrowableBuffer(np.float32)
    regrows = 0
    capacity = buf.capacity
    data = np.zeros(block, dtype=np.float32)
    for _ in range(36_000):  # an hour of audio
        storage = buf.view().base
        buf.append(data)
        if buf.capacity != capacity or buf.view().base is not storage:
            regrows += 1
            capacity = buf.capacity
        buf.discard_before(buf.end - window)
    assert buf.end == 36_000 * block and len(buf) == window
    assert buf.capacity <= 2 * (window + block)
    # a regrow copies ~20 s and buys ~20 s of appends: about one per 200 blocks, not one per block
    assert regrows < 36_000 / 100, regrows


def test_many_small_appends_copy_little() -> None:
    buf = GrowableBuffer(np.float32, capacity=1)
    capacities = set()
    for _ in range(100_000):
        buf.append(np.ones(1, dtype=np.float32))
        capacities.add(buf.capacity)
    assert len(buf) == 100_000 and float(buf.view().sum()) == 100_000
    assert len(capacities) <= 20  # doubling: log2(100_000) sizes, not 100_000
