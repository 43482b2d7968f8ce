"""The pool of reused output blocks (srgpu.forest.buffers): a block is lent again only once no
array uses it, and forests grown or flattened in reused memory are the same."""

from __future__ import annotations

import numpy as np

from srgpu.config import ForestConfig
from srgpu.forest import buffers
from srgpu.forest.arrays import forest_arrays
from srgpu.forest.buffers import MIN_BYTES, BufferPool
from srgpu.forest.train import fit_forest

BIG = (MIN_BYTES // 8 + 1000,)  # float64 elements: just above the pooled size


def test_block_is_lent_again_only_when_no_view_of_it_is_left():
    pool = BufferPool()
    a = pool.empty(BIG, np.float64)
    address = a.ctypes.data
    view = a[10:20]
    del a
    b = pool.empty(BIG, np.float64)  # the first block still has a view: a second block
    assert b.ctypes.data != address and not np.shares_memory(b, view)
    assert len(pool._blocks) == 2
    del view
    c = pool.empty((BIG[0] - 500,), np.float64)  # a slightly smaller request fits the first
    assert c.ctypes.data == address
    assert len(pool._blocks) == 2
    d = pool.empty((BIG[0] * 2,), np.float64)  # too large for the unused blocks: a new one
    assert d.ctypes.data not in (address, b.ctypes.data)
    assert pool.nbytes >= 4 * BIG[0] * 8


def test_small_requests_and_release():
    pool = BufferPool()
    small = pool.empty((100, 3), np.int32)
    assert small.shape == (100, 3) and small.dtype == np.int32 and pool.nbytes == 0
    big = pool.empty((BIG[0] // 4, 4), np.float64)
    assert big.shape == (BIG[0] // 4, 4) and big.flags.c_contiguous and big.flags.writeable
    pool.release()  # the lent block stays
    assert len(pool._blocks) == 1
    del big
    pool.release()
    assert len(pool._blocks) == 0 and pool.nbytes == 0


def test_unused_blocks_beyond_the_limit_are_dropped():
    pool = BufferPool(max_free_bytes=3 * MIN_BYTES)
    for _ in range(3):
        pool.empty((2 * MIN_BYTES,), np.uint8)  # dropped at once: unused each time
        pool.empty((3 * MIN_BYTES,), np.uint8)
    # never more than the limit of unused blocks, plus the one just lent (then unused too)
    assert pool.nbytes <= 3 * MIN_BYTES + 3 * MIN_BYTES


def _data(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every row twice (SRDB's ties: the grower on distinct rows, the real data's path)."""
    rng = np.random.default_rng(seed)
    X = np.repeat(rng.normal(size=(n, 4)).astype(np.float32), 2, axis=0)
    return X, X[:, 0] * 2.0 + rng.normal(size=2 * n)


def _pooled(a: np.ndarray) -> bool:
    return any(np.shares_memory(a, block) for block in buffers.POOL._blocks)


def test_forests_grown_in_reused_memory_are_the_same_and_live_ones_are_untouched():
    X, y = _data()
    forest = ForestConfig(trees=20)
    first = fit_forest(X, y, forest=forest, seed=np.random.SeedSequence(1))
    nodes = [p.nodes.copy() for p in first.parts]
    values = [p.value.copy() for p in first.parts]
    assert _pooled(first.parts[0].nodes) and _pooled(first.parts[0].value)
    # a second forest while the first lives: other memory, the first unchanged
    other = fit_forest(X, -y, forest=forest, seed=np.random.SeedSequence(2))
    assert not np.shares_memory(other.parts[0].nodes, first.parts[0].nodes)
    assert all(np.array_equal(p.nodes, n) for p, n in zip(first.parts, nodes, strict=True))
    address = first.parts[0].nodes.ctypes.data
    del first
    again = fit_forest(X, y, forest=forest, seed=np.random.SeedSequence(1))
    assert again.parts[0].nodes.ctypes.data == address  # the first forest's block, reused
    assert _pooled(again.parts[0].nodes)
    assert all(np.array_equal(p.nodes, n) for p, n in zip(again.parts, nodes, strict=True))
    assert all(np.array_equal(p.value, v) for p, v in zip(again.parts, values, strict=True))
    # flattened twice, the second time into the first flattening's block: the same arrays
    a = forest_arrays([again, other])
    fields = ("feature", "threshold", "children", "nan_left", "value")
    saved = {f: getattr(a, f).copy() for f in fields}
    address = a.value.ctypes.data
    del a
    b = forest_arrays([again, other])
    assert b.value.ctypes.data == address and _pooled(b.value)
    assert all(np.array_equal(getattr(b, f), saved[f]) for f in fields)
    assert b.children.dtype == np.int32 and b.value.dtype == np.float64
    del again, other, b
    buffers.release()
