"""A growable, append-only buffer of samples (or per-frame flags) indexed by absolute position.

A live session appends ~100 ms of audio ten times a second. Re-concatenating the whole
buffer on every append (``np.concatenate([buffer, block])``) copies the window each time:
O(window) per block, with a new array allocated and the old one freed every 100 ms. Here the
storage grows by doubling, so an append copies only the block (amortised O(block)), and
discarding old audio only moves a start index.

Views handed out stay valid: the storage is never written in place below its end. Appending
writes past the end; growing (and dropping discarded samples) copies into a *new* array. So a
window given to the model's worker thread keeps seeing the audio it was cut from while the
event loop goes on appending and discarding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

MIN_CAPACITY = 1 << 14  # ~1 s of 16 kHz audio: the first second needs no re-allocation


class BufferRangeError(IndexError):
    """A view was asked for outside what the buffer holds (discarded, or not yet appended)."""


class GrowableBuffer:
    """Items ``[start, end)`` of an unbounded stream; absolute indices count from the stream's start.

    ``append`` adds at ``end``; ``discard_before`` forgets items before an index (``start`` moves
    up, never back); ``view`` returns a read-only view, without copying.
    """

    def __init__(
        self, dtype: DTypeLike = np.float32, *, start: int = 0, capacity: int = MIN_CAPACITY
    ) -> None:
        self._min_capacity = max(1, capacity)
        self._data = np.zeros(self._min_capacity, dtype=dtype)
        self._head = 0  # index in _data of the item at ``start``
        self._size = 0  # items held
        self._start = start

    @property
    def start(self) -> int:
        """Absolute index of the first item held."""
        return self._start

    @property
    def end(self) -> int:
        """Absolute index one past the last item held (everything ever appended, plus ``start``)."""
        return self._start + self._size

    @property
    def capacity(self) -> int:
        """Items the storage holds without growing (memory: ``capacity * itemsize`` bytes)."""
        return len(self._data)

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def __len__(self) -> int:
        return self._size

    def append(self, items: np.ndarray) -> None:
        """Add ``items`` at the end (converted to the buffer's dtype)."""
        n = len(items)
        if not n:
            return
        tail = self._head + self._size
        if tail + n > len(self._data):
            self._regrow(self._size + n)
            tail = self._size
        self._data[tail : tail + n] = items
        self._size += n

    def view(self, start: int | None = None, end: int | None = None) -> np.ndarray:
        """Items ``[start, end)`` (absolute; default: all held) as a read-only view.

        :class:`BufferRangeError` if the range reaches before ``start`` or past ``end``."""
        lo = self._start if start is None else start
        hi = self.end if end is None else end
        if not self._start <= lo <= hi <= self.end:
            raise BufferRangeError(f"[{lo}, {hi}) is outside the buffer's [{self._start}, {self.end})")
        out = self._data[self._head + lo - self._start : self._head + hi - self._start]
        out.flags.writeable = False  # the storage is shared with later views and appends
        return out

    def discard_before(self, index: int) -> None:
        """Forget items before ``index`` (clamped to ``[start, end]``: never back, never past the end).

        Only moves the start; the memory is given back when the storage next grows, and never
        written over while a view of it may be alive."""
        drop = min(max(0, index - self._start), self._size)
        self._head += drop
        self._size -= drop
        self._start += drop

    def _regrow(self, needed: int) -> None:
        """Copy the ``needed`` items held into a new array of twice that size. A new array, not
        a move within this one: views of the old storage stay as they were. Discarded items are
        dropped here, so memory stays about twice what is held, and the next regrow comes only
        after another ``needed`` appends: amortised O(1) per item."""
        data = np.empty(max(self._min_capacity, 2 * needed), dtype=self._data.dtype)
        data[: self._size] = self._data[self._head : self._head + self._size]
        self._data = data
        self._head = 0
