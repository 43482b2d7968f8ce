"""The fused walk (``srgpu.forest.fused`` and its kernel ``_walk_tile3`` / ``fused_kernel``)
against scikit-learn, on small forests that exercise every branch of the walk (issue 21: the
mutation run of the fused walk).

Known answers without srgpu: the forest mean is scikit-learn's per-tree predictions summed in
estimator order / n_trees (as ``tests/test_leaf_sum.py``), and the two "moments" are the tree
means of two arbitrary per-node tables (random numbers at every node, leaves and inner nodes)
read at the leaf scikit-learn's ``apply`` gives, with node numbers counted from scikit-learn's
own node counts. The forests and rows are small so that the kernel also runs in seconds
interpreted (``NUMBA_DISABLE_JIT=1``), which is how the mutation run executes it.
"""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.errors import InputError
from srgpu.forest import predictive_kernels as K
from srgpu.forest.fused import FusedForests, fuse
from srgpu.forest.numba_engine import MIN_TILE, ORDER_MIN_ROWS, ORDER_MIN_TREES, NumbaEngine
from srgpu.forest.predictive import _tree_args
from tests.test_leaf_sum import (
    _forest,
    _partition_checking_scratch,
    _partition_refusing,
    _rows_at_thresholds,
    _sklearn_forest_means,
)

MOMENTS_RTOL = 1e-15
"""The kernel and the brute force below add the same float64 table entries in the same tree
order and divide by the same tree count: measured equal bit for bit; 1e-15 only allows for a
compiler that reorders nothing else."""


def _tables(forests, seed: int) -> list[np.ndarray]:
    """One ``(n_nodes, 2)`` table per forest: distinct random numbers at every node."""
    rng = np.random.default_rng(seed)
    return [
        rng.uniform(1.0, 2.0, (sum(e.tree_.node_count for e in rf.estimators_), 2))
        for rf in forests
    ]


def _brute_moments(forests, tables, X) -> tuple[np.ndarray, np.ndarray]:
    """Per forest and row: the mean over trees of ``table[offset_t + leaf_t(row)]``."""
    m1, m2 = [], []
    for rf, table in zip(forests, tables, strict=True):
        a1 = np.zeros(X.shape[0])
        a2 = np.zeros(X.shape[0])
        offset = 0
        for est in rf.estimators_:
            leaf = est.apply(X) + offset
            a1 += table[leaf, 0]
            a2 += table[leaf, 1]
            offset += est.tree_.node_count
        m1.append(a1 / len(rf.estimators_))
        m2.append(a2 / len(rf.estimators_))
    return np.array(m1), np.array(m2)


def _check(forests, X, *, seed=0, threads=1):
    tables = _tables(forests, seed)
    fused = fuse(NumbaEngine(threads=threads).compile(forests), tables)
    mean, m1, m2 = fused.predict_moments(X)
    want1, want2 = _brute_moments(forests, tables, X)
    assert mean.shape == m1.shape == m2.shape == (len(forests), X.shape[0])
    np.testing.assert_array_equal(mean, _sklearn_forest_means(forests, X))  # bit for bit
    np.testing.assert_allclose(m1, want1, rtol=MOMENTS_RTOL, atol=0)
    np.testing.assert_allclose(m2, want2, rtol=MOMENTS_RTOL, atol=0)
    np.testing.assert_array_equal(fused.predict(X), mean)
    return fused


@pytest.fixture(scope="module")
def forests():
    return [
        _forest(1, trees=3),  # deep trees: partitions down to leaves
        _forest(2, trees=5, depth=1),  # stumps: the both-children-leaves branch at the root
        _forest(3, trees=4, depth=3, nan=True),  # missing values left and right
    ]


def test_fused_walk_on_mixed_forests_and_several_tiles(forests):
    """2500 rows with 5 % NaN, one thread: tiles of 1024, the last partial."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1.2, 1.2, (2500, 4)).astype(np.float32)
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    _check(forests, X)


def test_fused_walk_with_the_box_skips(forests):
    """Rows bunched in a tiny box at the far left, the far right and the middle of every
    feature (splits skipped without partitioning); one row; a feature that is NaN in every
    row."""
    rng = np.random.default_rng(8)
    for centre in (-0.999, 0.999, 0.0):
        _check(forests, (centre + 1e-4 * rng.uniform(-1, 1, (300, 4))).astype(np.float32))
    _check(forests, np.array([[0.1, -0.2, 0.3, 0.4]], dtype=np.float32), seed=1)
    Xn = rng.uniform(-1, 1, (50, 4)).astype(np.float32)
    Xn[:, 0] = np.nan
    _check(forests, Xn, seed=2)


def test_fused_walk_rows_exactly_on_thresholds(forests):
    """Rows on a split's threshold go left (as scikit-learn's ``x <= t``), in the partition
    and the both-leaves loops, with and without NaN in the tile; a tile whose smallest value
    is a threshold."""
    rng = np.random.default_rng(11)
    X = _rows_at_thresholds(forests, 4, rng)
    _check(forests, X)
    extra = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
    extra[np.arange(4), np.arange(4)] = np.nan
    _check(forests, np.concatenate([X, extra]), seed=3)
    for k in range(0, min(X.shape[0], 40), 3):
        rows = np.repeat(X[k : k + 1], 8, axis=0)
        rows[1:, :] += np.float32(0.25)
        _check(forests, rows, seed=k)


def test_fused_walk_one_row_short_of_a_tile_and_two_threads(forests):
    rng = np.random.default_rng(12)
    X = rng.uniform(-1, 1, (MIN_TILE - 1, 4)).astype(np.float32)
    _check(forests, X)
    fused = _check(forests, X[:300], threads=2)
    assert fused.threads == 2  # the compiled forests' setting is kept
    a = fused.predict_moments(X[:300], threads=1)  # a call's own setting: same numbers
    b = fused.predict_moments(X[:300])
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)


def test_fused_tile_hands_the_partition_a_scratch_list_it_can_use(forests):
    """``_fused_tile`` called tile by tile (tiles of 64 rows: two full ones and a partial one)
    with a partition that checks its scratch list (``tests/test_leaf_sum.py``'s
    ``_partition_checking_scratch``)
    and then partitions as the scalar one: the three outputs of ``fused_kernel``, bit for
    bit. A partition that refuses every call shows that these rows reach it."""
    rng = np.random.default_rng(13)
    X = rng.uniform(-1.2, 1.2, (2 * 64 + 5, 4)).astype(np.float32)
    fused = fuse(NumbaEngine(threads=1).compile(forests), _tables(forests, 0))
    a = fused.arrays
    order = np.arange(X.shape[0], dtype=np.int64)
    args = (X, order, *_tree_args(a)[:4], a.value, fused.moments, a.tree_offsets,
            a.forest_offsets, int(a.tree_depth.max(initial=0)), 64)  # fmt: skip
    want = K.fused_kernel(*args)
    outs = [np.full((a.n_forests, X.shape[0]), np.nan) for _ in range(3)]
    for tile in range(3):
        K._fused_tile(*args, tile, *outs, _partition_checking_scratch)
    for got, w in zip(outs, want, strict=True):
        np.testing.assert_array_equal(got, w)
    np.testing.assert_array_equal(want[0], _sklearn_forest_means(forests, X))
    with pytest.raises(ValueError, match="partitioned"):
        K._fused_tile(*args, 0, *outs, _partition_refusing)


def test_fused_walk_distinct_rows_in_morton_order():
    """Enough rows and trees for the distinct-row, Z-order path: every row twice, the answers
    put back in the callers' order."""
    rf = _forest(4, n=200, trees=ORDER_MIN_TREES + 2, depth=2)
    rng = np.random.default_rng(10)
    base = rng.uniform(-1, 1, (ORDER_MIN_ROWS // 2 + 10, 4)).astype(np.float32)
    X = np.concatenate([base, base[::-1]])
    _check([rf], X, seed=5)


def test_fused_walk_of_hand_made_values():
    """Two stumps fitted to a step (y = 10 left of 0, 30 right): the mean is 10 or 30; with
    tables holding (node + 1, 100 (node + 1)) the moments are the mean over the two trees of
    (leaf + 1) and 100 (leaf + 1), leaves 1 (left) and 2 (right) of each stump."""
    from sklearn.ensemble import RandomForestRegressor

    X = np.array([[-1.0], [-0.5], [0.5], [1.0]] * 5, dtype=np.float32)
    y = np.where(X[:, 0] < 0, 10.0, 30.0)
    rf = RandomForestRegressor(n_estimators=2, bootstrap=False, random_state=0).fit(X, y)
    assert [e.tree_.node_count for e in rf.estimators_] == [3, 3]
    table = np.array([[k % 3 + 1.0, 100.0 * (k % 3 + 1)] for k in range(6)])
    fused = fuse(NumbaEngine().compile([rf]), [table])
    Xq = np.array([[-3.0], [-0.1], [0.1], [7.0]], dtype=np.float32)
    mean, m1, m2 = fused.predict_moments(Xq)
    np.testing.assert_array_equal(mean, [[10.0, 10.0, 30.0, 30.0]])
    np.testing.assert_array_equal(m1, [[2.0, 2.0, 3.0, 3.0]])
    np.testing.assert_array_equal(m2, [[200.0, 200.0, 300.0, 300.0]])


def test_fuse_checks_the_tables_and_handles_no_rows(forests):
    compiled = NumbaEngine().compile(forests)
    tables = _tables(forests, 0)
    with pytest.raises(InputError) as e:
        fuse(compiled, tables[:2])
    assert str(e.value) == (
        "field 'moments': one leaf-moment table per forest is needed (got 2); expected 3 tables"
    )
    n1 = tables[1].shape[0]
    with pytest.raises(InputError) as e:
        fuse(compiled, [tables[0], tables[1][:-1], tables[2]])
    assert str(e.value) == (
        f"field 'moments[1]': leaf moments do not match the forest's nodes (got ({n1 - 1}, 2));"
        f" expected ({n1}, 2)"
    )
    fused = fuse(compiled, [t.tolist() for t in tables])  # any array-like, cast to float64
    assert isinstance(fused, FusedForests) and fused.moments.dtype == np.float64
    assert fused.n_replicates == 3
    np.testing.assert_array_equal(fused.moments, np.concatenate(tables))
    empty = fused.predict_moments(np.zeros((0, 4), dtype=np.float32))
    assert [(e.shape, e.dtype) for e in empty] == [((3, 0), np.float64)] * 3


def test_thread_settings_are_checked_and_the_call_overrides_the_forests(forests):
    """A call's ``threads`` is checked (0 is refused) and, when given, replaces the forests'
    own setting; without it the forests' setting is used (and checked)."""
    from srgpu.errors import ConfigError

    X = np.random.default_rng(13).uniform(-1, 1, (20, 4)).astype(np.float32)
    fused = fuse(NumbaEngine(threads=1).compile(forests), _tables(forests, 0))
    for call in (fused.predict, fused.predict_moments):
        with pytest.raises(ConfigError, match="threads must be an integer"):
            call(X, threads=0)
    bad = FusedForests(arrays=fused.arrays, moments=fused.moments, threads=0)
    with pytest.raises(ConfigError, match="got 0"):
        bad.predict_moments(X)
    np.testing.assert_array_equal(bad.predict(X, threads=1), fused.predict(X))
