"""Large output arrays of the numba grower and the forest flattening, reused across batches.

An ensemble run grows and flattens a batch of forests, predicts with them, drops them, and does
the same again for the next batch: several hundred MB of node records a batch, all fresh memory
each time, because the C allocator hands such blocks back to the OS when they are freed (and
:func:`srgpu.run.batch.release_memory` trims the rest). Fresh memory is mapped page by page on
first write: the real-data benchmark (``benchmarks/bench_real_e2e.py``) took ~85 000 page faults
a batch of 8 replicates in training alone, ~0.25-0.5 CPU s of kernel time (``getrusage``: up
to a fifth of training), and more in the flattening; srgpu's CPU time on that benchmark fell
by ~9 % with the pool (``docs/benchmarks.md``). :data:`POOL` keeps the blocks instead and lends them
out again once nothing uses them any more, so later batches write into memory that is already
mapped.

"Nothing uses it" is read from CPython's reference count of the block's owning array: every
numpy view of it (and numba's wrappers of those views) holds a reference, so a block comes back
only when the last view is gone; a view kept anywhere just means a fresh block is taken. The
pool keeps at most :data:`MAX_FREE_BYTES` of unused blocks (``release()`` drops them all, as
``run_ensemble`` does when it ends). Outside CPython it lends nothing: every call is a fresh
``np.empty``. Contents are never read before they are written, so results do not depend on the
pool.
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

MIN_BYTES = 256 << 10
"""Smaller requests are plain ``np.empty`` (the allocator keeps small blocks by itself);
blocks are whole multiples of this size."""

MAX_FREE_BYTES = 2 << 30
"""Unused blocks kept for reuse, in bytes at most (past that the oldest unused are dropped)."""

SLACK = 1.25
"""A block is lent for a request of ``nbytes`` if it holds at most ``SLACK * nbytes`` +
:data:`MIN_BYTES`."""

_REFCOUNTED = sys.implementation.name == "cpython"


_MAP_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)


def _fresh_block(size: int) -> np.ndarray:
    """``size`` bytes of private anonymous memory in 4 KiB pages (``np.empty`` where mmap
    flags are missing). Not numpy's allocator: numpy advises its large blocks ``MADV_HUGEPAGE``,
    and a huge-page fault may compact memory first, which cost more kernel time than the 4 KiB
    faults it saves (real data, two batches of 8 replicates: 1.5-1.8 against 0.5-1.0 CPU s of
    system time in training); a pooled block is faulted once anyway."""
    if not _MAP_FLAGS:  # pragma: no cover - not a Unix
        return np.empty(size, dtype=np.uint8)
    return np.frombuffer(mmap.mmap(-1, size, flags=_MAP_FLAGS), dtype=np.uint8)


class BufferPool:
    """Blocks of bytes lent as arrays (see the module docstring); thread-safe."""

    def __init__(self, *, max_free_bytes: int = MAX_FREE_BYTES) -> None:
        self.max_free_bytes = int(max_free_bytes)
        self._blocks: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._free_refs = self._unused_refcount()

    def _unused_refcount(self) -> int:
        """The reference count :meth:`_is_unused` sees for a block nothing else holds."""
        self._blocks.append(np.empty(1, dtype=np.uint8))
        try:
            return sys.getrefcount(self._blocks[-1])
        finally:
            self._blocks.pop()

    def _is_unused(self, i: int) -> bool:
        return sys.getrefcount(self._blocks[i]) == self._free_refs

    @property
    def nbytes(self) -> int:
        """Bytes held in all blocks, lent or not."""
        return sum(b.nbytes for b in self._blocks)

    def empty(self, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """An uninitialised C-ordered array of ``shape`` and ``dtype`` in a lent block (or a
        fresh ``np.empty`` for small requests and outside CPython)."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not _REFCOUNTED or nbytes < MIN_BYTES:
            return np.empty(shape, dtype=dtype)
        return self._take(nbytes)[:nbytes].view(dtype).reshape(shape)

    def _take(self, nbytes: int) -> np.ndarray:
        limit = SLACK * nbytes + MIN_BYTES
        with self._lock:
            best = -1
            for i in range(len(self._blocks)):  # no name bound to a block: it would count
                size = self._blocks[i].nbytes
                if nbytes <= size <= limit and self._is_unused(i):
                    if best < 0 or size < self._blocks[best].nbytes:
                        best = i
            if best >= 0:
                block = self._blocks.pop(best)
                self._blocks.append(block)  # most recently lent last
                return block
            self._drop_unused(keep=self.max_free_bytes - nbytes)
            size = -(-nbytes // MIN_BYTES) * MIN_BYTES  # near sizes share blocks
            self._blocks.append(_fresh_block(size))
            return self._blocks[-1]

    def _drop_unused(self, *, keep: int) -> None:
        """Drop unused blocks, least recently lent first, until at most ``keep`` bytes of
        unused blocks are left."""
        unused = [i for i in range(len(self._blocks)) if self._is_unused(i)]
        free = sum(self._blocks[i].nbytes for i in unused)
        drop = set()
        for i in unused:
            if free <= max(keep, 0):
                break
            drop.add(i)
            free -= self._blocks[i].nbytes
        self._blocks = [b for i, b in enumerate(self._blocks) if i not in drop]

    def release(self) -> None:
        """Drop every unused block (lent ones stay until their arrays are gone)."""
        with self._lock:
            self._drop_unused(keep=0)


POOL = BufferPool()
"""The process's pool: the grower's node records (:mod:`srgpu.forest.numba_train`) and the
flattened forests (:func:`srgpu.forest.arrays.forest_arrays`)."""


def empty(shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """:meth:`BufferPool.empty` of :data:`POOL`."""
    return POOL.empty(shape, dtype)


def release() -> None:
    """:meth:`BufferPool.release` of :data:`POOL`."""
    POOL.release()
