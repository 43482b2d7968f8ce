"""numba kernels of the predictive distribution (:mod:`srgpu.forest.predictive`).

The kernels share one way of finding leaves: a tile of rows is pushed down each tree by the
inference engine's partitioned walk (:func:`srgpu.forest.numba_engine._walk`, reused as it is)
with "leaf values" equal to the node numbers or the leaves' offsets in a table, so that the
accumulator of a row holds the leaf it reached (exact in float64). One traversal per tree and
tile, the same bounding-box skips and Morton row order as the mean-only engine.

* :func:`moments_kernel`: per row and forest, the tree means of two leaf values (the leaf mean
  of y and of y**2 under the chosen leaf membership): conditional mean and second moment, in
  one walk per tree and tile that adds both values where the engine's walk adds one
  (:func:`_walk_tile2`, the engine's walk with a second accumulator, on the engine's partition
  functions).
* :func:`fused_kernel`: the same two moments **and** the forest mean (the engine's sum, bit for
  bit) in one walk (:func:`_walk_tile3`, three accumulators): what a run uses
  (:mod:`srgpu.forest.fused`), so that the grid is walked once per forest, not twice.
* :func:`summary_kernel`: per row, the Meinshausen weights over the records (sorted by y) of
  every forest of the batch, pooled as an equal mixture, then quantiles, median and MAD; one
  weight vector per thread, reset after each row: memory ``O(threads x records)``. The weights
  come from the packed leaf table (:func:`build_tables`: members in chunks of :data:`CHUNK`),
  and are compacted to the nonzero ones before the order statistics.
* :func:`accumulate_kernel`: the same weights added into a caller's ``(rows, records)`` matrix
  (pooling across batches; the brute-force tests).
* :func:`leaf_values_kernel`: per row and tree, the value kept in the leaf the row reaches
  (quantregForest 1.3-7's one-value-per-leaf scheme).
* Every kernel comes in two, as the engine's: the scalar partition
  (:func:`~srgpu.forest.numba_engine.partition_rows`) and the AVX-512 one
  (:func:`~srgpu.forest.vector_split.partition_rows16`, ``*_avx512``; for the summary also the
  AVX-512 compaction, :func:`~srgpu.forest.vector_compact.compact_and_clear16`), chosen by
  :func:`walk_kernel` as the engine chooses (:func:`srgpu.forest.vector_split.usable`); the
  same results bit for bit.

Weights: tree ``t`` of forest ``r`` gives record ``i`` in the leaf the row reaches the weight
``c_i * (scale_r / n_leaf)`` with ``c_i`` the record's multiplicity in the leaf (1 for
all-rows membership, its bootstrap count for in-bag membership), ``n_leaf = sum c_i`` and
``scale_r = 1 / (trees_r * n_forests)``: the weights of one row sum to 1. Out-of-bag membership
(``honest``, :func:`_scatter_oob`): trees whose leaf holds no member are skipped and
``scale_r = 1 / (U_r * n_forests)``, ``U_r`` the row's count of forest ``r``'s contributing
trees; its moments come from :func:`fused_kernel` with the leaves' "has a member" indicator as
the first leaf value (the tree mean ``U_r / T_r``, by which the two moment sums are divided).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from srgpu.forest import vector_split
from srgpu.forest.numba_engine import _tile_setup, _walk, partition_rows
from srgpu.forest.vector_compact import LANES, compact_and_clear16
from srgpu.forest.vector_split import partition_rows16

RULE_LINEAR = 0
"""quantile-forest's weighted quantile (``interpolation="linear"``): the weights are frequencies
on the scale where they sum to the row's count of leaf members (see
:func:`srgpu.forest.predictive.weighted_quantile`); type 7 when the frequencies are integers."""
RULE_INVERTED_CDF = 1
"""Meinshausen (2006): the smallest y whose weighted CDF reaches the level."""

_U = np.uint64

PREFETCH_TREES = 16
"""The weight scatter asks for the member list of the leaf ``PREFETCH_TREES`` trees ahead (its
first two cache lines; with the packed uint32 table most leaves fit one). Measured on the shared
2-core VM with the earlier float64 table: a cold leaf read fell from ~105 to ~55 ns in a
micro-benchmark (distance 8), and the quantile kernel from ~37-42 to ~28-30 µs a row on the
SR-shaped forest (distance 16; 32 was no better)."""

STREAM_MIN_TREES = 128
""":func:`accumulate_kernel` streams each destination row through a local vector from this many
trees on. Measured (one thread, real 0.5 deg grid, 53 806 rows x 2945 records, shared 2-core
VM): 500 trees 24.9 -> 18.3 µs a row (with Morton order), 200 trees 10.5 -> 9.5, but 50 trees
3.6 -> 4.5 (the copy costs more than the cache misses it saves)."""

RANK_BITS = 24
"""A member of a leaf is one uint32 in the packed table: its record's rank in the sorted y
(low :data:`RANK_BITS` bits) and its multiplicity (high bits)."""
RANK_MASK = np.uint32((1 << RANK_BITS) - 1)
MAX_MULTIPLICITY = (1 << (32 - RANK_BITS)) - 1
"""Largest multiplicity of a member in a leaf the packed table can hold (255)."""

CHUNK = 6
"""A leaf's members are packed in chunks of this many words (the last one padded with members
of multiplicity 0, which add exact zeros), so that the weight scatter adds a whole chunk without
a data-dependent loop: ~85 % of the real SR forests' leaves fit one chunk (68 % fit 4, 92 % 8).
A leaf's offset in the walk's leaf values carries a tag in its lowest bit (offsets are even: a
leaf takes ``2 + CHUNK * chunks`` words): set where the leaf has more than one chunk, so that
the scatter knows from the row's leaf list, not from the table, whether to loop. Measured on
the real grid's SR rows (one thread, AMD EPYC, AVX-512 kernel, one division a leaf): chunks of
4: 8.78 µs a row, 5: 8.16, 6: 8.20-8.40, 7: 8.47, 8: 8.74; one member at a time (the previous
table, a division a member): 10.52. The table is larger: 8.3 MB against 5.5 MB for a 500-tree
SR forest with in-bag membership."""

COMPACT_ROOM = LANES
"""Entries of room past the last record in the list of record numbers of
:func:`summary_kernel`'s compaction (the vector compaction stores 16 lanes at a time)."""


@intrinsic
def _prefetch(typingctx, arr, idx):
    """LLVM's ``prefetch`` (read, high locality) of ``arr[idx]``: a hint, no effect on results."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        args = [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                ir.Constant(i32, 1)]  # fmt: skip
        builder.call(fn, args)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, inline="always")
def _tile_leaf(xt, T, m, feature, threshold, children, nan_left, node_ids, root, acc, rows,
               stack, lo, hi, nan_in, scratch, tmp, partition):  # fmt: skip
    """Leaf node of each of the tile's rows ``0 .. m`` in the tree at ``root``, in ``acc``
    (float64 node numbers), walked with ``partition`` (its scratch list ``tmp``)."""
    for i in range(m):
        acc[i] = 0.0
    _walk(
        xt, _U(T), _U(m), feature, threshold, children, nan_left, node_ids, _U(root), acc, rows,
        stack, lo, hi, nan_in, scratch, tmp, partition,
    )  # fmt: skip


@njit(cache=True, fastmath=False, boundscheck=False, inline="always")
def _walk_tile2(
    xt, tile, m, feature, threshold, children, nan_left, values, root, acc1, acc2, rows, stack,
    lo, hi, nan_in, leaf_value, tmp, partition,
):  # fmt: skip
    """:func:`srgpu.forest.numba_engine._walk` with two leaf values: the same partitioned walk
    (same bounding-box skips, the same ``partition`` of a node's rows with its scratch ``tmp``:
    :func:`~srgpu.forest.numba_engine.partition_rows` or
    :func:`~srgpu.forest.vector_split.partition_rows16`), adding ``values[leaf, 0]`` to ``acc1``
    and ``values[leaf, 1]`` to ``acc2`` for every row reaching the leaf. ``leaf_value``: four
    float64 of scratch."""
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
            if left == n:  # a leaf
                v1 = values[n, 0]
                v2 = values[n, 1]
                for i in range(s, e):
                    r = _U(rows[i])
                    acc1[r] += v1
                    acc2[r] += v2
                break
            right = _U(children[_U(2) * n + one])
            f = _U(feature[n])
            t = threshold[n]
            if hi[f] <= t:
                n = left
                continue
            if t < lo[f]:
                n = right
                continue
            col = f * tile
            nan_right = nan_in[f] and nan_left[n] == 0
            if _U(children[_U(2) * left]) == left and _U(children[_U(2) * right]) == right:
                leaf_value[0] = values[left, 0]
                leaf_value[1] = values[right, 0]
                leaf_value[2] = values[left, 1]
                leaf_value[3] = values[right, 1]
                if nan_right:
                    for i in range(s, e):
                        r = _U(rows[i])
                        x = xt[col + r]
                        go = _U((x > t) | (x != x))
                        acc1[r] += leaf_value[go]
                        acc2[r] += leaf_value[_U(2) + go]
                else:
                    for i in range(s, e):
                        r = _U(rows[i])
                        go = _U(xt[col + r] > t)
                        acc1[r] += leaf_value[go]
                        acc2[r] += leaf_value[_U(2) + go]
                break
            d = s + tile if s < _U(2) * tile else s - tile
            nl = partition(xt, col, t, nan_right, rows, s, e, d, tmp)
            end = d + (e - s)
            if nl < end:
                stack[sp, 0] = right
                stack[sp, 1] = nl
                stack[sp, 2] = end
                sp += one
            if nl == d:
                break
            n = left
            s = d
            e = nl


@njit(cache=True, fastmath=False, inline="always")
def _moments_tile(
    X, order, feature, threshold, children, nan_left, moments, tree_offsets, forest_offsets,
    max_depth, T, tile, out1, out2, partition,
):  # fmt: skip
    """Tile number ``tile`` of :func:`moments_kernel`, walked with ``partition``."""
    n_rows, n_features = X.shape
    n_forests = forest_offsets.shape[0] - 1
    t0 = tile * T
    m = min(T, n_rows - t0)
    xt, lo, hi, nan_in, rows, stack = _tile_setup(X, order, t0, m, T, n_features, max_depth)
    acc1 = np.empty(T, dtype=np.float64)
    acc2 = np.empty(T, dtype=np.float64)
    scratch = np.empty(4, dtype=np.float64)
    tmp = np.empty(T + 16, dtype=np.uint32)
    for r in range(n_forests):
        acc1[:] = 0.0
        acc2[:] = 0.0
        for t in range(forest_offsets[r], forest_offsets[r + 1]):
            _walk_tile2(
                xt, _U(T), _U(m), feature, threshold, children, nan_left, moments,
                _U(tree_offsets[t]), acc1, acc2, rows, stack, lo, hi, nan_in, scratch, tmp,
                partition,
            )  # fmt: skip
        n_trees = forest_offsets[r + 1] - forest_offsets[r]
        for i in range(m):
            out1[r, order[t0 + i]] = acc1[i] / n_trees
            out2[r, order[t0 + i]] = acc2[i] / n_trees


@njit(parallel=True, cache=True, fastmath=False)
def moments_kernel(
    X, order, feature, threshold, children, nan_left, moments, tree_offsets, forest_offsets,
    max_depth, tile_size,
):  # fmt: skip
    """Tree means of ``moments[:, 0]`` and ``moments[:, 1]`` (side by side: one cache line per
    leaf) at the leaf each row reaches, per forest: two ``(n_forests, n_rows)`` float64 arrays
    (sums in tree order, divided by the number of trees, as the mean-only kernel does). The
    scalar partition; :func:`moments_kernel_avx512` is the same with the vector one (two kernels,
    as the engine's: :func:`srgpu.forest.numba_engine._predict_kernel`)."""
    n_rows = X.shape[0]
    n_forests = forest_offsets.shape[0] - 1
    out1 = np.empty((n_forests, n_rows), dtype=np.float64)
    out2 = np.empty((n_forests, n_rows), dtype=np.float64)
    for tile in prange((n_rows + tile_size - 1) // tile_size):
        _moments_tile(
            X, order, feature, threshold, children, nan_left, moments, tree_offsets,
            forest_offsets, max_depth, tile_size, tile, out1, out2, partition_rows,
        )  # fmt: skip
    return out1, out2


@njit(parallel=True, cache=True, fastmath=False)
def moments_kernel_avx512(
    X, order, feature, threshold, children, nan_left, moments, tree_offsets, forest_offsets,
    max_depth, tile_size,
):  # fmt: skip
    """:func:`moments_kernel` with the AVX-512 partition
    (:func:`~srgpu.forest.vector_split.partition_rows16`); the same result bit for bit."""
    n_rows = X.shape[0]
    n_forests = forest_offsets.shape[0] - 1
    out1 = np.empty((n_forests, n_rows), dtype=np.float64)
    out2 = np.empty((n_forests, n_rows), dtype=np.float64)
    for tile in prange((n_rows + tile_size - 1) // tile_size):
        _moments_tile(
            X, order, feature, threshold, children, nan_left, moments, tree_offsets,
            forest_offsets, max_depth, tile_size, tile, out1, out2, partition_rows16,
        )  # fmt: skip
    return out1, out2


@njit(cache=True, nogil=True, inline="always")
def _tile_all_leaves(X, order, feature, threshold, children, nan_left, node_ids, tree_offsets,
                     max_depth, T, tile, leaf_proto, partition):  # fmt: skip
    """The rows of tile number ``tile`` (``order[t0:t0 + m]``) and ``leaves[i, t]``: ``node_ids``
    of the leaf row ``i`` of the tile reaches in tree ``t`` (all trees; row-major, so that a
    row's leaves are read contiguously; ``leaf_proto``'s dtype), walked with ``partition``.
    Returns ``(t0, m, leaves)``."""
    n_rows, n_features = X.shape
    n_trees = tree_offsets.shape[0] - 1
    t0 = tile * T
    m = min(T, n_rows - t0)
    xt, lo, hi, nan_in, rows, stack = _tile_setup(X, order, t0, m, T, n_features, max_depth)
    leaf = np.empty(T, dtype=np.float64)
    scratch = np.empty(2, dtype=np.float64)
    tmp = np.empty(T + 16, dtype=np.uint32)
    leaves = np.empty((T, n_trees), dtype=leaf_proto.dtype)
    for t in range(n_trees):
        _tile_leaf(
            xt, T, m, feature, threshold, children, nan_left, node_ids, tree_offsets[t], leaf,
            rows, stack, lo, hi, nan_in, scratch, tmp, partition,
        )  # fmt: skip
        for i in range(m):
            leaves[i, t] = np.int64(leaf[i])
    return t0, m, leaves


@njit(cache=True, nogil=True, inline="always")
def _scatter(leaves, i, tree_forest, forest_scale, forest_share, packed, w):
    """Add the weights of row ``i`` (its leaves in every tree: ``leaves[i]``, tagged word
    offsets into ``packed``, see :func:`build_tables`) into ``w``; return its total weight and its
    leaf-member count (each forest's sum of the row's leaf sizes over its trees, times the
    forest's share ``forest_share``: averaged over the forests). A member of multiplicity ``c``
    in a leaf of size ``n`` adds ``c * (scale / n)`` (:func:`_add_leaf`); weights are summed in
    tree order, a leaf's in member order (its padding adds exact zeros). Offsets and ranks are
    unsigned: numba then emits no negative-index wraparound code."""
    total = 0.0
    count = 0.0
    n_trees = leaves.shape[1]
    last = _U(packed.shape[0] - 1)
    for t in range(n_trees):
        if t + PREFETCH_TREES < n_trees:
            ahead = _U(leaves[i, t + PREFETCH_TREES]) & ~_U(1)
            _prefetch(packed, ahead)
            _prefetch(packed, min(ahead + _U(16), last))  # a leaf may straddle two lines
        r = tree_forest[t]
        sc = forest_scale[r]
        size = _add_leaf(packed, _U(leaves[i, t]), w, sc)
        total += sc
        count += size * forest_share[r]
    return total, count


@njit(cache=True, nogil=True, inline="always")
def _add_leaf(packed, v, w, sc):
    """Add ``c * (sc / n)`` to ``w[rank]`` for each member ``(rank, c)`` of the leaf at the
    tagged offset ``v`` (see :data:`CHUNK`), ``n`` the leaf's size; return ``n`` (float64).
    The leaf must have a member (an empty one is skipped by the caller): its first chunk is
    added whole, the others where the tag says. Measured on the real grid's SR rows: against a
    loop over all chunks behind an "exactly one chunk" tag 9.88 against 10.12 µs a row; one
    division a leaf instead of ``(c / n) * sc`` a member 8.88 against 9.53 µs a row (a weight
    then differs from the tables' ``member_weight * sc`` by an ulp or two; quantiles on the
    real grid by at most 1.4e-13 relative)."""
    o = v & ~_U(1)
    size = np.float64(packed[o + _U(1)])
    per = sc / size
    b = o + _U(2)
    for q in range(CHUNK):
        u = packed[b + _U(q)]
        w[_U(u & RANK_MASK)] += np.float64(u >> RANK_BITS) * per
    if v & _U(1):
        for _ in range(1, packed[o]):
            b += _U(CHUNK)
            for q in range(CHUNK):
                u = packed[b + _U(q)]
                w[_U(u & RANK_MASK)] += np.float64(u >> RANK_BITS) * per
    return size


@njit(cache=True, nogil=True, inline="always")
def _scatter_oob(leaves, i, tree_forest, forest_share, packed, w, used):
    """:func:`_scatter` for out-of-bag membership: a tree whose leaf holds no out-of-bag record
    (packed as ``[0, 0]``) is skipped, and each forest's contributing trees share its weight
    equally: a member adds ``c * ((share_r / used_r) / n)``, ``used_r`` the number of forest
    ``r``'s trees whose leaf holds one. Returns ``(total, count)`` as :func:`_scatter` does
    (count: the forests' sums of the contributing leaves' sizes, times their shares), or
    ``(nan, nan)`` without adding anything when some forest of the batch has no contributing
    tree at the row: its distribution, and so the mixture's, is undefined there. ``used``:
    one float64 of scratch per forest."""
    n_trees = leaves.shape[1]
    for r in range(used.shape[0]):
        used[r] = 0.0
    for t in range(n_trees):
        if packed[_U(leaves[i, t]) & ~_U(1)] > 0:
            used[tree_forest[t]] += 1.0
    for r in range(used.shape[0]):
        if used[r] == 0.0:
            return np.nan, np.nan
    total = 0.0
    count = 0.0
    last = _U(packed.shape[0] - 1)
    for t in range(n_trees):
        if t + PREFETCH_TREES < n_trees:
            ahead = _U(leaves[i, t + PREFETCH_TREES]) & ~_U(1)
            _prefetch(packed, ahead)
            _prefetch(packed, min(ahead + _U(16), last))
        v = _U(leaves[i, t])
        if packed[v & ~_U(1)] == 0:
            continue
        r = tree_forest[t]
        sc = forest_share[r] / used[r]
        size = _add_leaf(packed, v, w, sc)
        total += sc
        count += size * forest_share[r]
    return total, count


@njit(cache=True, nogil=True, inline="always")
def _row_weights(leaves, i, tree_forest, forest_scale, forest_share, packed, w, honest, used):
    """:func:`_scatter_oob` with ``honest`` (out-of-bag membership), else :func:`_scatter`."""
    if honest:
        return _scatter_oob(leaves, i, tree_forest, forest_share, packed, w, used)
    return _scatter(leaves, i, tree_forest, forest_scale, forest_share, packed, w)


@njit(cache=True, nogil=True)
def quantiles_of_weights(w, y, levels, rule, total, count, out):
    """Quantiles at ascending ``levels`` of the discrete distribution with the nonzero weights
    ``w`` on the sorted values ``y`` (both callers drop the zero weights first), written to
    ``out``; ``total`` is ``sum(w)``, ``count`` the frequency scale of the linear rule (see
    :data:`RULE_LINEAR`). Linear rule: the position ``p`` of the next level is computed once per
    level; a value whose cumulative frequency stays at or below it only moves the walk on."""
    nq = levels.shape[0]
    qi = 0
    prev = -1
    c_prev = 0.0
    cum = 0.0
    if nq == 0:
        return
    if rule == RULE_LINEAR:
        scale = count / total
        f = count - 1.0
        p = levels[0] * f + 1.0
        for j in range(y.shape[0]):
            cum += w[j] * scale
            if p < cum:  # every level whose position lies before this cumulative frequency
                while True:
                    if prev < 0:
                        out[qi] = y[j]
                    else:
                        frac = min(p - c_prev, 1.0)
                        out[qi] = y[prev] + frac * (y[j] - y[prev]) if y[j] != y[prev] else y[prev]
                    qi += 1
                    if qi == nq:
                        return
                    p = levels[qi] * f + 1.0
                    if p >= cum:
                        break
            prev = j
            c_prev = cum
    else:
        for j in range(y.shape[0]):
            cum += w[j]
            prev = j
            while qi < nq and cum >= levels[qi] * total:
                out[qi] = y[j]
                qi += 1
            if qi == nq:
                break
    while qi < nq:  # levels beyond the last cumulative weight (rounding): the largest value
        out[qi] = y[prev] if prev >= 0 else np.nan
        qi += 1


@njit(cache=True, nogil=True)
def mad_of_weights(w, y, med, rule, total, count):
    """The weighted median of ``|Y - med|`` under the nonzero weights ``w`` on sorted ``y``
    (same rule as :func:`quantiles_of_weights` at level 0.5), by a walk out from ``med``: the
    distances come in ascending order from the two sides, so nothing is sorted. While both
    sides have values the nearer one is taken (the left one at equal distances) without a
    branch on the comparison; then the remaining side alone (measured on the real grid's SR
    rows: 0.95 -> 0.56 µs a row against one loop that tested both sides' bounds every step)."""
    n = y.shape[0]
    # first index right of the median: y[right] > med
    a = 0
    b = n
    while a < b:
        mid = (a + b) // 2
        if y[mid] <= med:
            a = mid + 1
        else:
            b = mid
    left = a - 1
    right = a
    cum = 0.0
    prev_d = 0.0
    c_prev = 0.0
    have_prev = False
    linear = rule == RULE_LINEAR
    scale = count / total if linear else 1.0
    p = 0.5 * (count - 1.0) + 1.0 if linear else 0.5 * total
    while True:  # each step takes one value, from the side nearer to med
        if left >= 0 and right < n:
            d_left = med - y[left]
            d_right = y[right] - med
            take_left = d_left <= d_right
            d = d_left if take_left else d_right
            wj = w[left if take_left else right]
            left -= np.int64(take_left)
            right += np.int64(not take_left)
        elif left >= 0:
            d = med - y[left]
            wj = w[left]
            left -= 1
        elif right < n:
            d = y[right] - med
            wj = w[right]
            right += 1
        else:
            return prev_d
        cum += wj * scale
        if linear:
            if p < cum:
                if not have_prev:
                    return d
                if d == prev_d:
                    return d
                return prev_d + min(p - c_prev, 1.0) * (d - prev_d)
            c_prev = cum
            have_prev = True
        elif cum >= p:
            return d
        prev_d = d


@njit(cache=True, nogil=True, inline="always")
def _compact_and_clear(w, y, ys, ws, ids):
    """The values and weights of the nonzero entries of ``w`` into ``ys``, ``ws`` (in order,
    branch-free), ``w`` zeroed on the way; returns their number. One store a record (its
    index), then the weights and values gathered and ``w`` cleared at the nonzero entries only
    (a row's weights are sparse: about 1 record in 10)."""
    k = 0
    for j in range(w.shape[0]):
        ids[k] = j
        k += w[j] != 0.0
    for i in range(k):
        j = ids[i]
        ws[i] = w[j]
        ys[i] = y[j]
        w[j] = 0.0
    return k


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _summary_tile(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, y, levels, half_index,
    rule, out_q, out_mad, honest, tile, partition, compact,
):  # fmt: skip
    """Tile number ``tile`` of :func:`summary_kernel`, walked with ``partition`` and its weights
    compacted by ``compact`` (:func:`_compact_and_clear` or
    :func:`~srgpu.forest.vector_compact.compact_and_clear16`: the same lists)."""
    n_records = y.shape[0]
    t0, m, leaves = _tile_all_leaves(
        X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, max_depth,
        tile_size, tile, leaf_proto, partition,
    )  # fmt: skip
    w = np.zeros(n_records, dtype=np.float64)
    ys = np.empty(n_records, dtype=np.float64)
    ws = np.empty(n_records, dtype=np.float64)
    ids = np.empty(n_records + COMPACT_ROOM, dtype=np.int32)
    qrow = np.empty(levels.shape[0], dtype=np.float64)
    used = np.empty(forest_share.shape[0], dtype=np.float64)
    for i in range(m):
        total, count = _row_weights(
            leaves, i, tree_forest, forest_scale, forest_share, packed, w, honest, used
        )  # fmt: skip
        row = order[t0 + i]
        if total != total:  # out-of-bag membership, undefined at the row (nothing added)
            for q in range(levels.shape[0]):
                out_q[row, q] = np.nan
            out_mad[row] = np.nan
            continue
        k = compact(w, y, ys, ws, ids)
        quantiles_of_weights(ws[:k], ys[:k], levels, rule, total, count, qrow)
        for q in range(levels.shape[0]):
            out_q[row, q] = qrow[q]
        out_mad[row] = mad_of_weights(ws[:k], ys[:k], qrow[half_index], rule, total, count)


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def summary_kernel(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, y, levels, half_index,
    rule, out_q, out_mad, honest=False,
):  # fmt: skip
    """Per row: quantiles at ``levels`` (ascending; ``levels[half_index] == 0.5``, the median)
    and unscaled MAD of the pooled predictive distribution, into ``out_q`` (n_rows, n_levels)
    and ``out_mad``. The walk's "leaf values" are the leaves' offsets in ``packed``
    (``leaf_offset``; kept as ``leaf_proto``'s dtype); a row's weights (one vector per tile, in
    L1 cache) are compacted to their nonzero entries before the walks. ``honest``: out-of-bag
    membership (:func:`_scatter_oob`; a row where it is undefined gets NaN). numba's "numpy"
    error model: no division-by-zero checks (a leaf's size, the divisor, is at least 1). The
    scalar partition and compaction; :func:`summary_kernel_avx512` is the same with the vector
    ones (two kernels, as the engine's: :func:`srgpu.forest.numba_engine._predict_kernel`)."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _summary_tile(
            X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets,
            tree_forest, forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, y,
            levels, half_index, rule, out_q, out_mad, honest, tile, partition_rows,
            _compact_and_clear,
        )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=False, error_model="numpy")
def summary_kernel_avx512(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, y, levels, half_index,
    rule, out_q, out_mad, honest=False,
):  # fmt: skip
    """:func:`summary_kernel` with the AVX-512 partition
    (:func:`~srgpu.forest.vector_split.partition_rows16`) and compaction
    (:func:`~srgpu.forest.vector_compact.compact_and_clear16`); the same results bit for bit."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _summary_tile(
            X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets,
            tree_forest, forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, y,
            levels, half_index, rule, out_q, out_mad, honest, tile, partition_rows16,
            compact_and_clear16,
        )  # fmt: skip


@njit(cache=True, fastmath=False, inline="always")
def _accumulate_tile(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, dest, W, totals,
    counts, stream, honest, tile, partition,
):  # fmt: skip
    """Tile number ``tile`` of :func:`accumulate_kernel`, walked with ``partition``."""
    t0, m, leaves = _tile_all_leaves(
        X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, max_depth,
        tile_size, tile, leaf_proto, partition,
    )  # fmt: skip
    w = np.empty(W.shape[1], dtype=np.float64)
    used = np.empty(forest_share.shape[0], dtype=np.float64)
    for i in range(m):
        d = dest[order[t0 + i]]
        if stream:  # streamed in and out: the scattered adds then hit the cache
            w[:] = W[d]
            total, count = _row_weights(
                leaves, i, tree_forest, forest_scale, forest_share, packed, w, honest, used
            )  # fmt: skip
            W[d] = w
        else:
            total, count = _row_weights(
                leaves, i, tree_forest, forest_scale, forest_share, packed, W[d], honest, used
            )  # fmt: skip
        totals[d] += total
        counts[d] += count


@njit(parallel=True, cache=True, fastmath=False)
def accumulate_kernel(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, dest, W, totals,
    counts, stream, honest=False,
):  # fmt: skip
    """Add the weights of row ``row`` of ``X`` into ``W[dest[row]]`` (W: (n_out, n_records)),
    its total weight into ``totals[dest[row]]`` and its leaf-member count into
    ``counts[dest[row]]``. Rows sharing a destination must not be added by two threads at
    once: the caller runs one thread when ``dest`` is not one-to-one. With ``stream``, each
    destination row is copied into a local vector, added to there and copied back (the same
    adds in the same order: the same bits), so that the scattered adds hit the cache instead
    of a large ``W`` in memory (worth it with many trees: :data:`STREAM_MIN_TREES`).
    ``honest``: out-of-bag membership (:func:`_scatter_oob`): a row where it is undefined adds
    no weight and NaN to its destination's total and count. The scalar partition;
    :func:`accumulate_kernel_avx512` is the same with the vector one."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _accumulate_tile(
            X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets,
            tree_forest, forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed,
            dest, W, totals, counts, stream, honest, tile, partition_rows,
        )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=False)
def accumulate_kernel_avx512(
    X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets, tree_forest,
    forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed, dest, W, totals,
    counts, stream, honest=False,
):  # fmt: skip
    """:func:`accumulate_kernel` with the AVX-512 partition
    (:func:`~srgpu.forest.vector_split.partition_rows16`); the same results bit for bit."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _accumulate_tile(
            X, order, feature, threshold, children, nan_left, leaf_offset, tree_offsets,
            tree_forest, forest_scale, forest_share, max_depth, tile_size, leaf_proto, packed,
            dest, W, totals, counts, stream, honest, tile, partition_rows16,
        )  # fmt: skip


@njit(cache=True, fastmath=False, inline="always")
def _leaf_values_tile(
    X, order, feature, threshold, children, nan_left, node_ids, tree_offsets, max_depth,
    tile_size, node_value, out, tile, partition,
):  # fmt: skip
    """Tile number ``tile`` of :func:`leaf_values_kernel`, walked with ``partition``."""
    n_rows, n_features = X.shape
    n_trees = tree_offsets.shape[0] - 1
    T = tile_size
    t0 = tile * T
    m = min(T, n_rows - t0)
    xt, lo, hi, nan_in, rows, stack = _tile_setup(X, order, t0, m, T, n_features, max_depth)
    leaf = np.empty(T, dtype=np.float64)
    scratch = np.empty(2, dtype=np.float64)
    tmp = np.empty(T + 16, dtype=np.uint32)
    for t in range(n_trees):
        _tile_leaf(
            xt, T, m, feature, threshold, children, nan_left, node_ids, tree_offsets[t], leaf,
            rows, stack, lo, hi, nan_in, scratch, tmp, partition,
        )  # fmt: skip
        for i in range(m):
            out[order[t0 + i], t] = node_value[np.int64(leaf[i])]


@njit(parallel=True, cache=True, fastmath=False)
def leaf_values_kernel(
    X, order, feature, threshold, children, nan_left, node_ids, tree_offsets, max_depth,
    tile_size, node_value, out,
):  # fmt: skip
    """``out[row, t]``: ``node_value`` of the leaf row ``row`` reaches in tree ``t``. The scalar
    partition; :func:`leaf_values_kernel_avx512` is the same with the vector one."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _leaf_values_tile(
            X, order, feature, threshold, children, nan_left, node_ids, tree_offsets, max_depth,
            tile_size, node_value, out, tile, partition_rows,
        )  # fmt: skip


@njit(parallel=True, cache=True, fastmath=False)
def leaf_values_kernel_avx512(
    X, order, feature, threshold, children, nan_left, node_ids, tree_offsets, max_depth,
    tile_size, node_value, out,
):  # fmt: skip
    """:func:`leaf_values_kernel` with the AVX-512 partition; the same result."""
    for tile in prange((X.shape[0] + tile_size - 1) // tile_size):
        _leaf_values_tile(
            X, order, feature, threshold, children, nan_left, node_ids, tree_offsets, max_depth,
            tile_size, node_value, out, tile, partition_rows16,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def apply_rows(X, feature, threshold, children, nan_left, roots):
    """``out[t, i]``: the leaf (global node) row ``i`` of ``X`` reaches in the tree rooted at
    ``roots[t]``; one row at a time (training tables are small)."""
    n = X.shape[0]
    out = np.empty((roots.shape[0], n), dtype=np.int64)
    for t in range(roots.shape[0]):
        for i in range(n):
            node = roots[t]
            while children[2 * node] != node:
                x = X[i, feature[node]]
                go = (x > threshold[node]) or (x != x and nan_left[node] == 0)
                node = children[2 * node + (1 if go else 0)]
            out[t, i] = node
    return out


@njit(cache=True, nogil=True)
def build_tables(leaf_of, rank_of, count_of, y_of, n_nodes, n_records):
    """Leaf membership tables from entries ``(leaf, record rank, multiplicity, y)`` (entries
    with multiplicity 0 are skipped): ``leaf_start`` (CSR over nodes), ``members`` (record
    ranks), ``member_weight`` (multiplicity / leaf size), ``leaf_size`` (sum of
    multiplicities), ``moment1`` and ``moment2`` (leaf means of y and y**2), ``packed`` and
    ``leaf_offset`` (the same members, multiplicities and sizes leaf by leaf in one uint32
    array, four bytes a member, and each leaf's tagged word offset in it: one contiguous read
    per leaf, mostly one cache line, in the weight kernels). A leaf is packed as
    ``[chunks, size, members]``, its members in :data:`CHUNK`-word chunks, the last one padded
    with members of multiplicity 0 (ranks ``0 .. CHUNK - 1`` below ``n_records``, the number of
    records: they add exact zeros); its offset carries the tag 1 where it has more than one
    chunk. A leaf the entries reach only with multiplicity 0 (out-of-bag membership: a leaf
    without out-of-bag records) is packed as ``[0, 0]``, no members: the weight kernels skip
    it (with the other memberships every reached leaf has members). Ranks must be below
    ``2**RANK_BITS`` and multiplicities at most :data:`MAX_MULTIPLICITY` (checked by the
    caller)."""
    n_entries = leaf_of.shape[0]
    n_members = np.zeros(n_nodes, dtype=np.int64)
    leaf_size = np.zeros(n_nodes, dtype=np.float64)
    reached = np.zeros(n_nodes, dtype=np.bool_)
    for e in range(n_entries):
        reached[leaf_of[e]] = True
        if count_of[e] > 0:
            n_members[leaf_of[e]] += 1
            leaf_size[leaf_of[e]] += count_of[e]
    leaf_start = np.zeros(n_nodes + 1, dtype=np.int64)
    for k in range(n_nodes):
        leaf_start[k + 1] = leaf_start[k] + n_members[k]
    fill = leaf_start[:-1].copy()
    members = np.empty(leaf_start[n_nodes], dtype=np.int32)
    member_weight = np.empty(leaf_start[n_nodes], dtype=np.float64)
    mult = np.empty(leaf_start[n_nodes], dtype=np.int64)
    moment1 = np.zeros(n_nodes, dtype=np.float64)
    moment2 = np.zeros(n_nodes, dtype=np.float64)
    for e in range(n_entries):
        c = count_of[e]
        if c > 0:
            k = leaf_of[e]
            j = fill[k]
            fill[k] += 1
            members[j] = rank_of[e]
            mult[j] = c
            wgt = c / leaf_size[k]
            member_weight[j] = wgt
            moment1[k] += wgt * y_of[e]
            moment2[k] += wgt * (y_of[e] * y_of[e])
    # each leaf once more, packed for the weight kernels in uint32 words: [chunks, leaf size,
    # members (rank | multiplicity << RANK_BITS) padded to whole chunks]; the leaf's tagged
    # offset in place of its node number (0 at inner nodes: never reached)
    leaf_offset = np.zeros(n_nodes, dtype=np.float64)
    size = 0
    for k in range(n_nodes):
        if reached[k]:
            size += 2 + CHUNK * ((n_members[k] + CHUNK - 1) // CHUNK)
    packed = np.empty(size, dtype=np.uint32)
    o = 0
    for k in range(n_nodes):
        if reached[k]:  # a leaf reached only by entries of multiplicity 0: [0, 0], no members
            chunks = (n_members[k] + CHUNK - 1) // CHUNK
            leaf_offset[k] = o + (1 if chunks > 1 else 0)
            packed[o] = chunks
            packed[o + 1] = np.uint32(leaf_size[k])
            for j in range(leaf_start[k], leaf_start[k + 1]):
                packed[o + 2 + j - leaf_start[k]] = np.uint32(members[j]) | (
                    np.uint32(mult[j]) << np.uint32(RANK_BITS)
                )
            for q in range(n_members[k], CHUNK * chunks):  # multiplicity 0: adds zeros
                packed[o + 2 + q] = np.uint32(q % CHUNK if q % CHUNK < n_records else 0)
            o += 2 + CHUNK * chunks
    return leaf_start, members, member_weight, leaf_size, moment1, moment2, packed, leaf_offset


@njit(cache=True, fastmath=False, boundscheck=False, inline="always")
def _walk_tile3(
    xt, tile, m, feature, threshold, children, nan_left, value, moments, root, acc0, acc1, acc2,
    rows, stack, lo, hi, nan_in, leaf_value, tmp, partition,
):  # fmt: skip
    """:func:`srgpu.forest.numba_engine._walk` with three leaf values: the same partitioned walk
    (the same ``partition`` with its scratch ``tmp``, as :func:`_walk_tile2`), adding
    ``value[leaf]`` (the tree's own leaf value) to ``acc0`` exactly as the engine adds it (one
    float64 add per row and tree, in tree order: the forest mean is the engine's bit for bit),
    and ``moments[leaf, 0]``, ``moments[leaf, 1]`` (the leaf means of y and y**2) to
    ``acc1``, ``acc2``. ``leaf_value``: six float64 of scratch."""
    one = _U(1)
    two = _U(2)
    four = _U(4)
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
            left = _U(children[two * n])
            if left == n:  # a leaf
                v0 = value[n]
                v1 = moments[n, 0]
                v2 = moments[n, 1]
                for i in range(s, e):
                    r = _U(rows[i])
                    acc0[r] += v0
                    acc1[r] += v1
                    acc2[r] += v2
                break
            right = _U(children[two * n + one])
            f = _U(feature[n])
            t = threshold[n]
            if hi[f] <= t:
                n = left
                continue
            if t < lo[f]:
                n = right
                continue
            col = f * tile
            nan_right = nan_in[f] and nan_left[n] == 0
            if _U(children[two * left]) == left and _U(children[two * right]) == right:
                leaf_value[0] = value[left]
                leaf_value[1] = value[right]
                leaf_value[2] = moments[left, 0]
                leaf_value[3] = moments[right, 0]
                leaf_value[4] = moments[left, 1]
                leaf_value[5] = moments[right, 1]
                if nan_right:
                    for i in range(s, e):
                        r = _U(rows[i])
                        x = xt[col + r]
                        go = _U((x > t) | (x != x))
                        acc0[r] += leaf_value[go]
                        acc1[r] += leaf_value[two + go]
                        acc2[r] += leaf_value[four + go]
                else:
                    for i in range(s, e):
                        r = _U(rows[i])
                        go = _U(xt[col + r] > t)
                        acc0[r] += leaf_value[go]
                        acc1[r] += leaf_value[two + go]
                        acc2[r] += leaf_value[four + go]
                break
            d = s + tile if s < two * tile else s - tile
            nl = partition(xt, col, t, nan_right, rows, s, e, d, tmp)
            end = d + (e - s)
            if nl < end:
                stack[sp, 0] = right
                stack[sp, 1] = nl
                stack[sp, 2] = end
                sp += one
            if nl == d:
                break
            n = left
            s = d
            e = nl


@njit(cache=True, fastmath=False, inline="always")
def _fused_tile(
    X, order, feature, threshold, children, nan_left, value, moments, tree_offsets,
    forest_offsets, max_depth, T, tile, out0, out1, out2, partition,
):  # fmt: skip
    """Tile number ``tile`` of :func:`fused_kernel`, walked with ``partition``."""
    n_rows, n_features = X.shape
    n_forests = forest_offsets.shape[0] - 1
    t0 = tile * T
    m = min(T, n_rows - t0)
    xt, lo, hi, nan_in, rows, stack = _tile_setup(X, order, t0, m, T, n_features, max_depth)
    acc0 = np.empty(T, dtype=np.float64)
    acc1 = np.empty(T, dtype=np.float64)
    acc2 = np.empty(T, dtype=np.float64)
    scratch = np.empty(6, dtype=np.float64)
    tmp = np.empty(T + 16, dtype=np.uint32)
    for r in range(n_forests):
        acc0[:] = 0.0
        acc1[:] = 0.0
        acc2[:] = 0.0
        for t in range(forest_offsets[r], forest_offsets[r + 1]):
            _walk_tile3(
                xt, _U(T), _U(m), feature, threshold, children, nan_left, value, moments,
                _U(tree_offsets[t]), acc0, acc1, acc2, rows, stack, lo, hi, nan_in, scratch, tmp,
                partition,
            )  # fmt: skip
        n_trees = forest_offsets[r + 1] - forest_offsets[r]
        for i in range(m):
            row = order[t0 + i]
            out0[r, row] = acc0[i] / n_trees
            out1[r, row] = acc1[i] / n_trees
            out2[r, row] = acc2[i] / n_trees


@njit(parallel=True, cache=True, fastmath=False)
def fused_kernel(
    X, order, feature, threshold, children, nan_left, value, moments, tree_offsets,
    forest_offsets, max_depth, tile_size,
):  # fmt: skip
    """Per forest and row, in one walk per tree and tile: the forest mean (tree means of
    ``value``, summed and divided as :func:`srgpu.forest.numba_engine._predict_kernel` does:
    the same bits) and the tree means of ``moments[:, 0]`` and ``moments[:, 1]`` (conditional
    mean and second moment, as :func:`moments_kernel`): three ``(n_forests, n_rows)`` float64
    arrays. The scalar partition; :func:`fused_kernel_avx512` is the same with the vector one."""
    n_rows = X.shape[0]
    n_forests = forest_offsets.shape[0] - 1
    out0 = np.empty((n_forests, n_rows), dtype=np.float64)
    out1 = np.empty((n_forests, n_rows), dtype=np.float64)
    out2 = np.empty((n_forests, n_rows), dtype=np.float64)
    for tile in prange((n_rows + tile_size - 1) // tile_size):
        _fused_tile(
            X, order, feature, threshold, children, nan_left, value, moments, tree_offsets,
            forest_offsets, max_depth, tile_size, tile, out0, out1, out2, partition_rows,
        )  # fmt: skip
    return out0, out1, out2


@njit(parallel=True, cache=True, fastmath=False)
def fused_kernel_avx512(
    X, order, feature, threshold, children, nan_left, value, moments, tree_offsets,
    forest_offsets, max_depth, tile_size,
):  # fmt: skip
    """:func:`fused_kernel` with the AVX-512 partition
    (:func:`~srgpu.forest.vector_split.partition_rows16`); the same results bit for bit."""
    n_rows = X.shape[0]
    n_forests = forest_offsets.shape[0] - 1
    out0 = np.empty((n_forests, n_rows), dtype=np.float64)
    out1 = np.empty((n_forests, n_rows), dtype=np.float64)
    out2 = np.empty((n_forests, n_rows), dtype=np.float64)
    for tile in prange((n_rows + tile_size - 1) // tile_size):
        _fused_tile(
            X, order, feature, threshold, children, nan_left, value, moments, tree_offsets,
            forest_offsets, max_depth, tile_size, tile, out0, out1, out2, partition_rows16,
        )  # fmt: skip
    return out0, out1, out2


KERNELS = {
    "fused": (fused_kernel, fused_kernel_avx512),
    "moments": (moments_kernel, moments_kernel_avx512),
    "summary": (summary_kernel, summary_kernel_avx512),
    "accumulate": (accumulate_kernel, accumulate_kernel_avx512),
    "leaf_values": (leaf_values_kernel, leaf_values_kernel_avx512),
}
"""Each kernel's two compiled forms: (scalar, AVX-512), the same results bit for bit."""


def walk_kernel(name: str):
    """The form of kernel ``name`` (a key of :data:`KERNELS`) this CPU runs
    (:func:`srgpu.forest.vector_split.choose`, as the engine chooses)."""
    return vector_split.choose(*KERNELS[name])
