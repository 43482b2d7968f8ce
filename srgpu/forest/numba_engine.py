"""CPU inference engine: a numba kernel that partitions a tile of rows down each tree.

Why it is faster than scikit-learn. scikit-learn walks one row down one tree at a time; whether
the row goes left or right is a data-dependent branch that the CPU mispredicts about every
second level (~15 cycles each), and each step waits for the load of the step before. This kernel
turns the walk inside out: it takes a **tile** of ``TILE`` rows (copied feature-major, L2
resident) and pushes the whole tile down each tree at once, node by node, depth first. At an
inner node it **partitions** the rows that reached it (a list of row numbers) into those going
left and those going right, with a loop whose iterations are independent: load the row number,
load its value of the node's feature, compare, write the row number at the next slot from the
front *and* at the next slot from the back of the child list, advance one of the two counters by
the comparison (``setbe``/``seta`` + add: no jump, checked in the machine code). The CPU runs many
iterations of that loop at once, about 2.5 cycles a row and level, instead of ~10 for one
mispredicted, load-bound step. A leaf adds its value to the accumulator of each of its rows; a
node whose two children are leaves does that directly (the value picked by the comparison), with
no list to write. Subtrees no row reaches are never visited. On a CPU with AVX-512 the partition
takes 16 rows a step instead (gather, compare, two *compress* instructions:
:mod:`srgpu.forest.vector_split`): 1.24x and 1.31x faster walks on the real SR and HR forests.
Rows go to the same children, so the result is the same bit for bit.

The tile's **bounding box** (per-feature minimum and maximum, computed once per tile) skips
whole levels: at a node whose threshold lies outside the box on its feature, every row of the
tile goes the same way, so the kernel moves to that child without touching the rows. Rows are
visited in a locality-preserving order (:func:`~srgpu.forest.row_plans.row_order`: a Morton /
Z-order curve over per-feature rank quantiles), so a tile covers a compact region of predictor
space: it skips more levels and reaches fewer leaves. Each row's result is written back to its
own position; only the order of work changes.

Bit-identity with ``RandomForestRegressor.predict`` (``n_jobs=1``): thresholds are the largest
float32 not above scikit-learn's float64 thresholds (exact comparison, see
:mod:`srgpu.forest.arrays`), X is cast to float32 as scikit-learn does, each row's leaf values
are added to a float64 accumulator starting at 0 in estimator order (trees one after another),
and the sum is divided by the number of trees. ``fastmath`` is off, so LLVM may not reassociate
the sum. NaN follows scikit-learn's ``missing_go_to_left``: a NaN fails ``x > threshold``, so it
goes left by itself; only a node that sends NaN right, on a feature with a NaN in the tile, uses
a partition loop that tests for it, and such a feature's box is NaN (never skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba import njit, prange

from srgpu.errors import ConfigError
from srgpu.forest import vector_split
from srgpu.forest.arrays import ForestArrays, forest_arrays
from srgpu.forest.protocol import check_rows
from srgpu.forest.row_plans import RowPlans, plan_rows
from srgpu.forest.vector_split import partition_rows16

TILE = 4096
"""Rows per tile: the unit of parallel work and of one partitioned walk down a tree (smaller
for calls with few rows, see :func:`tile_rows`)."""

MIN_TILE = 1024
TILES_PER_THREAD = 4


def tile_rows(n_rows: int, threads: int) -> int:
    """Rows per tile for a call of ``n_rows`` rows on ``threads`` threads: :data:`TILE`, halved
    (down to :data:`MIN_TILE`) until every thread gets at least :data:`TILES_PER_THREAD` tiles,
    so that few tiles do not leave a thread idle (19 000 rows on 2 threads: 10 tiles of 2048
    instead of 5 of 4096). Tiles of 2048 rows cost the same per row as tiles of 4096."""
    t = TILE
    while t > MIN_TILE and n_rows < TILES_PER_THREAD * max(threads, 1) * t:
        t //= 2
    return t


_U = np.uint64


@njit(cache=True, fastmath=False, boundscheck=False, inline="always")
def partition_rows(xt, col, t, nan_right, rows, s, e, d, tmp):
    """Partition ``rows[s:e]`` by ``xt[col + row] > t`` (NaN right when ``nan_right``): the left
    rows to ``rows[d:nl]`` from the front, the right ones to ``rows[nl:d + e - s]`` from the back;
    returns ``nl``. The destination must not overlap ``rows[s:e]``. One row an iteration, no jump:
    the row number is written at both ends and one of the two counters advances by the
    comparison. ``tmp`` is not used (the contract of
    :func:`srgpu.forest.vector_split.partition_rows16`, which needs a scratch list)."""
    one = _U(1)
    nl = d  # next left slot, from the front
    nr = d + (e - s) - one  # next right slot, from the back
    if nan_right:
        for i in range(s, e):
            r = rows[i]
            x = xt[col + _U(r)]
            go = _U((x > t) | (x != x))
            rows[nl] = r
            rows[nr] = r
            nl += one - go
            nr -= go
    else:
        for i in range(s, e):
            r = rows[i]
            go = _U(xt[col + _U(r)] > t)
            rows[nl] = r
            rows[nr] = r
            nl += one - go
            nr -= go
    return nl


@njit(cache=True, fastmath=False, boundscheck=False, inline="always")
def _walk(
    xt, tile, m, feature, threshold, children, nan_left, value, root, acc, rows, stack, lo, hi,
    nan_in, leaf_value, tmp, partition,
):  # fmt: skip
    """Push rows ``0 .. m`` of the tile ``xt`` (feature-major, ``tile`` rows a feature) down the
    tree rooted at ``root`` and add each row's leaf value to ``acc``, partitioning a node's rows
    with ``partition`` (:func:`partition_rows`, or
    :func:`~srgpu.forest.vector_split.partition_rows16` with its scratch list ``tmp`` of
    ``tile + 16`` rows; the scalar one ignores ``tmp``).

    ``rows`` (3 x ``tile``) holds row numbers: the first third is ``0 .. tile`` and is only read
    (the root's list); a partition reads the first or the last third and writes the middle one,
    or reads the middle one and writes the last, so a node's list is never overwritten before its
    children have read it. ``stack`` (depth x 3) holds the right children still to visit: node,
    start, end. ``lo``/``hi``: the tile's per-feature bounding box; ``nan_in``: features with a
    NaN in the tile (their box is NaN: never skipped). ``leaf_value``: two float64 of scratch.
    Unsigned index arithmetic: numba then emits no negative-index wraparound code."""
    one = _U(1)
    stack[0, 0] = root
    stack[0, 1] = _U(0)
    stack[0, 2] = m
    sp = one
    while sp > _U(0):
        sp -= one
        n = stack[sp, 0]
        s = stack[sp, 1]
        e = stack[sp, 2]
        while True:
            left = _U(children[_U(2) * n])
            if left == n:  # a leaf points to itself
                v = value[n]
                for i in range(s, e):
                    acc[_U(rows[i])] += v
                break
            right = _U(children[_U(2) * n + one])
            f = _U(feature[n])
            t = threshold[n]
            if hi[f] <= t:  # the whole box is left of the threshold
                n = left
                continue
            if t < lo[f]:  # ... or right of it
                n = right
                continue
            col = f * tile
            nan_right = nan_in[f] and nan_left[n] == 0
            if _U(children[_U(2) * left]) == left and _U(children[_U(2) * right]) == right:
                # both children are leaves: add each row's value, no list to write
                leaf_value[0] = value[left]
                leaf_value[1] = value[right]
                if nan_right:
                    for i in range(s, e):
                        r = _U(rows[i])
                        x = xt[col + r]
                        acc[r] += leaf_value[_U((x > t) | (x != x))]
                else:
                    for i in range(s, e):
                        r = _U(rows[i])
                        acc[r] += leaf_value[_U(xt[col + r] > t)]
                break
            d = s + tile if s < _U(2) * tile else s - tile  # the other third
            nl = partition(xt, col, t, nan_right, rows, s, e, d, tmp)
            end = d + (e - s)
            if nl < end:  # some rows go right: visit later
                stack[sp, 0] = right
                stack[sp, 1] = nl
                stack[sp, 2] = end
                sp += one
            if nl == d:  # none go left
                break
            n = left
            s = d
            e = nl


ORDER_MIN_ROWS = 1024
ORDER_MIN_TREES = 128
"""A call with fewer rows or fewer trees (all forests together) walks the rows in their given
order: ordering costs ~0.3 us a row, about what it saves on ~100 trees."""


@njit(cache=True, nogil=True, inline="always")
def _load_tile(X, order, t0, m, T, xt, lo, hi, nan_in):
    """Copy rows ``order[t0:t0 + m]`` of ``X`` feature-major into ``xt`` (``T`` rows a feature)
    and compute the tile's bounding box ``lo``/``hi`` per feature; a feature with a NaN in the
    tile gets ``nan_in[f]`` and a NaN box: never skipped (a comparison with NaN is false, even
    against a threshold of +inf, scikit-learn's "missing values go right" split)."""
    n_features = X.shape[1]
    for i in range(m):
        row = order[t0 + i]
        for f in range(n_features):
            xt[f * T + i] = X[row, f]
    for f in range(n_features):
        a = np.float32(np.inf)
        b = np.float32(-np.inf)
        nan_in[f] = False
        for i in range(m):
            v = xt[f * T + i]
            if v != v:
                nan_in[f] = True
            else:
                a = min(a, v)
                b = max(b, v)
        if nan_in[f]:
            a = np.float32(np.nan)
            b = np.float32(np.nan)
        lo[f] = a
        hi[f] = b


@njit(cache=True, nogil=True, inline="always")
def _tile_setup(X, order, t0, m, T, n_features, max_depth):
    """A tile's walk state, the same for every kernel that walks tiles (this engine's and the
    predictive ones): ``xt``, ``lo``, ``hi``, ``nan_in`` of :func:`_load_tile`, the row list
    ``rows`` (3 x ``T``, the first third ``0 .. T``) and the right-child ``stack`` of
    :func:`_walk`."""
    xt = np.empty(n_features * T, dtype=np.float32)
    lo = np.empty(n_features, dtype=np.float32)
    hi = np.empty(n_features, dtype=np.float32)
    nan_in = np.zeros(n_features, dtype=np.bool_)
    _load_tile(X, order, t0, m, T, xt, lo, hi, nan_in)
    rows = np.empty(3 * T, dtype=np.uint32)
    for i in range(T):
        rows[i] = i
    stack = np.empty((max_depth + 2, 3), dtype=np.uint64)
    return xt, lo, hi, nan_in, rows, stack


@njit(cache=True, fastmath=False, inline="always")
def _predict_tile(
    X, order, feature, threshold, children, nan_left, value, tree_offsets, forest_offsets,
    max_depth, tile_size, tile, out, partition,
):  # fmt: skip
    """Tile number ``tile`` of :func:`_predict_kernel`: its rows' forest means into ``out``,
    walked with ``partition`` (:func:`partition_rows` or
    :func:`~srgpu.forest.vector_split.partition_rows16`; the same result)."""
    n_rows, n_features = X.shape
    n_forests = forest_offsets.shape[0] - 1
    T = tile_size
    t0 = tile * T
    m = min(T, n_rows - t0)
    xt, lo, hi, nan_in, rows, stack = _tile_setup(X, order, t0, m, T, n_features, max_depth)
    acc = np.empty(T, dtype=np.float64)
    leaf_value = np.empty(2, dtype=np.float64)
    tmp = np.empty(T + 16, dtype=np.uint32)
    for r in range(n_forests):
        acc[:] = 0.0
        for t in range(forest_offsets[r], forest_offsets[r + 1]):
            _walk(
                xt, _U(T), _U(m), feature, threshold, children, nan_left, value,
                _U(tree_offsets[t]), acc, rows, stack, lo, hi, nan_in, leaf_value, tmp, partition,
            )  # fmt: skip
        n_trees = forest_offsets[r + 1] - forest_offsets[r]
        for i in range(m):
            out[r, order[t0 + i]] = acc[i] / n_trees


@njit(parallel=True, cache=True, fastmath=False)
def _predict_kernel(
    X, order, feature, threshold, children, nan_left, value, tree_offsets, forest_offsets,
    max_depth, tile_size,
):  # fmt: skip
    """Forest means of every forest for every row of ``X`` (float32, C order), shape
    ``(n_forests, n_rows)``. Tiles are made of the rows ``order[t0:t0 + tile_size]`` and results go
    back to those rows. Parallel over tiles; each tile runs all forests. The scalar partition;
    :func:`_predict_kernel_avx512` is the same with the vector one (two kernels, not one taking
    the partition as an argument: numba's cache does not find a kernel again across processes
    when a function is among its argument types)."""
    n_forests = forest_offsets.shape[0] - 1
    out = np.empty((n_forests, X.shape[0]), dtype=np.float64)
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _predict_tile(
            X, order, feature, threshold, children, nan_left, value, tree_offsets, forest_offsets,
            max_depth, tile_size, tile, out, partition_rows,
        )  # fmt: skip
    return out


@njit(parallel=True, cache=True, fastmath=False)
def _predict_kernel_avx512(
    X, order, feature, threshold, children, nan_left, value, tree_offsets, forest_offsets,
    max_depth, tile_size,
):  # fmt: skip
    """:func:`_predict_kernel` with the AVX-512 partition
    (:func:`~srgpu.forest.vector_split.partition_rows16`); the same result bit for bit."""
    n_forests = forest_offsets.shape[0] - 1
    out = np.empty((n_forests, X.shape[0]), dtype=np.float64)
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _predict_tile(
            X, order, feature, threshold, children, nan_left, value, tree_offsets, forest_offsets,
            max_depth, tile_size, tile, out, partition_rows16,
        )  # fmt: skip
    return out


def _check_threads(threads: int | None) -> int | None:
    if threads is None:
        return None
    limit = numba.config.NUMBA_NUM_THREADS
    if not isinstance(threads, (int, np.integer)) or not 1 <= threads <= limit:
        raise ConfigError(f"threads must be an integer in [1, {limit}] or None, got {threads!r}")
    return int(threads)


@dataclass(frozen=True, eq=False)
class NumbaCompiledForests:
    """A batch of forests ready for :func:`_predict_kernel` (picklable: plain arrays)."""

    arrays: ForestArrays
    threads: int | None = None

    @property
    def n_replicates(self) -> int:
        return self.arrays.n_forests

    @property
    def n_features(self) -> int:
        return self.arrays.n_features

    def predict(
        self, X: Any, *, threads: int | None = None, plans: RowPlans | None = None
    ) -> np.ndarray:
        """Forest-mean predictions of every replicate, shape ``(n_replicates, n_rows)``, float64.

        ``X`` (n_rows, n_features) is cast to float32 as scikit-learn does. ``threads`` (or the
        engine's default) caps numba's threads for this call; ``None`` uses numba's current
        setting (all cores unless changed). Calls with at least ``ORDER_MIN_ROWS`` rows and
        ``ORDER_MIN_TREES`` trees walk each distinct row once
        (:func:`~srgpu.forest.row_plans.distinct_rows`) in Morton order
        (:func:`~srgpu.forest.row_plans.row_order`); the result is the same bit for bit.
        ``plans``: a cache of that order held by the caller
        (:class:`~srgpu.forest.row_plans.RowPlans`), for rows predicted again and again (an
        ensemble's grid); the same result.
        """
        return self._predict(X, self.arrays.forest_offsets, threads, plans)

    def predict_forest(self, i: int, X: Any, *, threads: int | None = None) -> np.ndarray:
        """Forest-mean predictions of replicate ``i`` alone, shape ``(n_rows,)`` (each replicate's
        own held-out rows in validation); equal to row ``i`` of :meth:`predict`."""
        if not 0 <= i < self.n_replicates:
            raise IndexError(f"replicate {i} not in [0, {self.n_replicates})")
        return self._predict(X, self.arrays.forest_offsets[i : i + 2], threads)[0]

    def _predict(
        self,
        X: Any,
        forest_offsets: np.ndarray,
        threads: int | None,
        plans: RowPlans | None = None,
    ) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        check_rows(X, self.n_features)
        n_forests = forest_offsets.shape[0] - 1
        if X.shape[0] == 0:
            return np.empty((n_forests, 0), dtype=np.float64)
        a = self.arrays
        n_trees = int(forest_offsets[-1] - forest_offsets[0])
        n_rows = X.shape[0]
        inverse = None
        if n_rows >= ORDER_MIN_ROWS and n_trees >= ORDER_MIN_TREES:
            plan = plans.get(X) if plans is not None else plan_rows(X)
            X, inverse, order = plan.rows, plan.inverse, plan.order
        else:
            order = np.arange(n_rows, dtype=np.int64)
        args = (
            X,
            order,
            a.feature.view(np.uint32),
            a.threshold,
            a.children.view(np.uint32),
            a.nan_left,
            a.value,
            a.tree_offsets,
            forest_offsets,
            int(a.tree_depth.max(initial=0)),
        )
        n = _check_threads(threads if threads is not None else self.threads)
        tile = tile_rows(X.shape[0], n if n is not None else numba.get_num_threads())
        kernel = vector_split.choose(_predict_kernel, _predict_kernel_avx512)
        if n is None:
            out = kernel(*args, tile)
        else:
            previous = numba.get_num_threads()
            numba.set_num_threads(n)
            try:
                out = kernel(*args, tile)
            finally:
                numba.set_num_threads(previous)
        return out if inverse is None else out[:, inverse]


class NumbaEngine:
    """The CPU inference engine (``name = "numba"``): bit-identical to scikit-learn's
    ``predict`` with ``n_jobs=1``, about 7x faster per core on the inference benchmark's forest
    and 4.8-5.0x on forests fitted on the real data, with the AVX-512 partition (see
    ``docs/performance.md`` and ``docs/benchmarks.md``).

    ``threads``: default number of threads of ``predict`` (``None``: numba's setting).
    """

    name = "numba"

    def __init__(self, *, threads: int | None = None):
        self.threads = _check_threads(threads)

    def compile(self, forests: Sequence[Any]) -> NumbaCompiledForests:
        """Flatten fitted ``RandomForestRegressor`` objects (one per replicate) once; a
        :class:`ForestArrays` is accepted as is."""
        arrays = forests if isinstance(forests, ForestArrays) else forest_arrays(forests)
        return NumbaCompiledForests(arrays=arrays, threads=self.threads)

    def __repr__(self) -> str:
        return f"NumbaEngine(threads={self.threads!r})"
