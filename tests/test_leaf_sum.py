"""The numba kernel's leaf sum against scikit-learn's own ``predict`` (an independent
implementation), on small forests that exercise every branch of ``_walk``: leaves reached
by partitioning, both-children-leaves nodes, the bounding-box skips to the left and the right,
missing values (sent left or right per node), several tiles with a partial last one, forests of
different sizes, and the distinct-row / Morton-order path.

The forests are small so that the kernel also runs in a few seconds interpreted
(``NUMBA_DISABLE_JIT=1``), which is how the mutation run (``tests/mutation/run.py``) executes it.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from sklearn.ensemble import RandomForestRegressor

from srgpu.forest import numba_engine as E
from srgpu.forest.numba_engine import ORDER_MIN_ROWS, ORDER_MIN_TREES, NumbaEngine


def _forest(seed: int, *, n: int = 300, p: int = 4, trees: int = 4, depth=None, nan=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, p)).astype(np.float32)
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * X[:, 2] + 0.1 * rng.standard_normal(n)
    if nan:  # missing values in training: nodes learn to send them left or right
        X[rng.uniform(size=X.shape) < 0.15] = np.nan
    rf = RandomForestRegressor(
        n_estimators=trees, max_depth=depth, min_samples_leaf=2, random_state=seed, n_jobs=1
    )
    return rf.fit(X, y)


def _sklearn_forest_means(forests, X) -> np.ndarray:
    """scikit-learn's per-tree predictions summed in estimator order, / n_trees (the order the
    kernel sums in); equals ``RandomForestRegressor.predict`` with n_jobs=1."""
    out = []
    for rf in forests:
        acc = np.zeros(X.shape[0])
        for est in rf.estimators_:
            acc += est.predict(X)
        out.append(acc / len(rf.estimators_))
    return np.array(out)


@pytest.fixture(scope="module")
def forests():
    return [
        _forest(1, trees=3),  # deep trees: partitions down to leaves
        _forest(2, trees=5, depth=1),  # stumps: the both-children-leaves branch at the root
        _forest(3, trees=4, depth=3, nan=True),  # missing values left and right
    ]


@njit(cache=False)
def _partition_checking_scratch(xt, col, t, nan_right, rows, s, e, d, tmp):
    """The scalar partition, after checking what a tile hands to every partition against the
    vector partition's contract (``partition_rows16``, which cannot run interpreted and reads
    the words as they are): float32 values, uint32 row numbers, and a scratch list of uint32
    with room for ``e - s + 16`` rows."""
    if xt.itemsize != 4 or rows.itemsize != 4 or tmp.itemsize != 4:
        raise ValueError("tile values, row list or scratch list not 4-byte words")
    if tmp.shape[0] < e - s + np.uint64(16):
        raise ValueError("scratch list too small")
    return E.partition_rows(xt, col, t, nan_right, rows, s, e, d, tmp)


@njit(cache=False)
def _partition_refusing(xt, col, t, nan_right, rows, s, e, d, tmp):
    """A partition that refuses every call: shows that a test's rows reach the partition."""
    if e >= s:  # always (a return of d's type for numba's typing)
        raise ValueError("partitioned")
    return d


def test_predict_tile_hands_the_partition_what_the_vector_one_needs(forests):
    """``_predict_tile`` called tile by tile (tiles of 64 rows: two full ones and a partial one)
    with :func:`_partition_checking_scratch`: the same bits as ``_predict_kernel`` and as
    scikit-learn; :func:`_partition_refusing` shows that these rows reach the partition."""
    rng = np.random.default_rng(13)
    X = rng.uniform(-1.2, 1.2, (2 * 64 + 5, 4)).astype(np.float32)
    a = NumbaEngine(threads=1).compile(forests).arrays
    args = (X, np.arange(X.shape[0], dtype=np.int64), a.feature.view(np.uint32), a.threshold,
            a.children.view(np.uint32), a.nan_left, a.value, a.tree_offsets, a.forest_offsets,
            int(a.tree_depth.max(initial=0)), 64)  # fmt: skip
    want = E._predict_kernel(*args)
    np.testing.assert_array_equal(want, _sklearn_forest_means(forests, X))
    out = np.full_like(want, np.nan)
    for tile in range(3):
        E._predict_tile(*args, tile, out, _partition_checking_scratch)
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="partitioned"):
        E._predict_tile(*args, 0, out, _partition_refusing)


def test_leaf_sum_equals_sklearn_on_mixed_forests(forests):
    rng = np.random.default_rng(7)
    X = rng.uniform(-1.2, 1.2, (2500, 4)).astype(np.float32)  # tiles of 1024: 3, the last partial
    X[rng.uniform(size=X.shape) < 0.05] = np.nan
    got = NumbaEngine(threads=1).compile(forests).predict(X)
    want = _sklearn_forest_means(forests, X)
    assert got.shape == (3, 2500)
    np.testing.assert_array_equal(got, want)
    for rf, row in zip(forests, got, strict=True):  # the forest mean, not a sum
        np.testing.assert_allclose(row, rf.predict(X), rtol=1e-12, atol=1e-12)


def test_leaf_sum_with_the_box_skips(forests):
    """A tile whose rows all lie on one side of a split skips it without partitioning: rows
    bunched in a tiny box at the far left, then at the far right, of every feature."""
    rng = np.random.default_rng(8)
    for centre in (-0.999, 0.999, 0.0):
        X = (centre + 1e-4 * rng.uniform(-1, 1, (300, 4))).astype(np.float32)
        got = NumbaEngine().compile(forests).predict(X)
        np.testing.assert_array_equal(got, _sklearn_forest_means(forests, X))
    # a single row, and rows that are all NaN in one feature
    X1 = np.array([[0.1, -0.2, 0.3, 0.4]], dtype=np.float32)
    np.testing.assert_array_equal(
        NumbaEngine().compile(forests).predict(X1), _sklearn_forest_means(forests, X1)
    )
    Xn = rng.uniform(-1, 1, (50, 4)).astype(np.float32)
    Xn[:, 0] = np.nan
    np.testing.assert_array_equal(
        NumbaEngine().compile(forests).predict(Xn), _sklearn_forest_means(forests, Xn)
    )


def test_predict_forest_is_its_row(forests):
    rng = np.random.default_rng(9)
    X = rng.uniform(-1, 1, (120, 4)).astype(np.float32)
    compiled = NumbaEngine().compile(forests)
    all_rows = compiled.predict(X)
    for i in range(3):
        np.testing.assert_array_equal(compiled.predict_forest(i, X), all_rows[i])


def test_leaf_sum_distinct_rows_in_morton_order():
    """Enough rows and trees for the distinct-row, Z-order path: still sklearn's numbers."""
    rf = _forest(4, n=200, trees=ORDER_MIN_TREES + 2, depth=2)
    rng = np.random.default_rng(10)
    base = rng.uniform(-1, 1, (ORDER_MIN_ROWS // 2 + 10, 4)).astype(np.float32)
    X = np.concatenate([base, base[::-1]])  # every row twice
    assert X.shape[0] >= ORDER_MIN_ROWS
    got = NumbaEngine().compile([rf]).predict(X)
    np.testing.assert_array_equal(got, _sklearn_forest_means([rf], X))


def test_leaf_sum_of_hand_made_values():
    """Known answer without any model: two trees fitted to a step, a constant prediction on
    each side. Tree 1 learns y = 10 (x < 0) / 30 (x >= 0); with y + 4 the forest's mean
    moves by exactly 4 on either side: mean of (10, 30) leaves is the mean of the leaf values."""
    X = np.array([[-1.0], [-0.5], [0.5], [1.0]] * 5, dtype=np.float32)
    y = np.where(X[:, 0] < 0, 10.0, 30.0)
    rf = RandomForestRegressor(n_estimators=2, bootstrap=False, random_state=0).fit(X, y)
    rf4 = RandomForestRegressor(n_estimators=2, bootstrap=False, random_state=0).fit(X, y + 4)
    Xq = np.array([[-3.0], [-0.1], [0.1], [7.0]], dtype=np.float32)
    compiled = NumbaEngine().compile([rf, rf4])
    np.testing.assert_array_equal(
        compiled.predict(Xq), [[10.0, 10.0, 30.0, 30.0], [14.0, 14.0, 34.0, 34.0]]
    )


def _rows_at_thresholds(forests, n_features: int, rng) -> np.ndarray:
    """Rows whose feature ``f`` equals a split's float32 threshold exactly (the kernel's
    ``threshold`` array), other features random: each row sits on a split's boundary, where
    ``x > t`` and ``x >= t`` disagree (scikit-learn sends ``x <= threshold`` left)."""
    arrays = NumbaEngine().compile(forests).arrays
    internal = arrays.children[0::2] != np.arange(arrays.n_nodes)  # a leaf points to itself
    feats = arrays.feature[internal]
    ts = arrays.threshold[internal]
    X = rng.uniform(-1.0, 1.0, (ts.size, n_features)).astype(np.float32)
    X[np.arange(ts.size), feats] = ts
    return X


def test_leaf_sum_rows_exactly_on_thresholds(forests):
    """Rows on a split's threshold go left, as in scikit-learn: in the partition loops, in the
    both-children-leaves loops (with and without NaN in the tile), and where a tile's smallest
    value equals the threshold (the box skip must not send it right)."""
    rng = np.random.default_rng(11)
    X = _rows_at_thresholds(forests, 4, rng)
    assert X.shape[0] > 50
    compiled = NumbaEngine().compile(forests)
    np.testing.assert_array_equal(compiled.predict(X), _sklearn_forest_means(forests, X))
    # NaN in every feature of the tile (extra rows, one NaN each): every node takes the
    # NaN-aware loops, those sending NaN left and those sending it right
    extra = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
    extra[np.arange(4), np.arange(4)] = np.nan
    Xn = np.concatenate([X, extra])
    np.testing.assert_array_equal(compiled.predict(Xn), _sklearn_forest_means(forests, Xn))
    # every row of a tile on or right of one threshold, the smallest exactly on it
    for k in range(min(X.shape[0], 40)):
        rows = np.repeat(X[k : k + 1], 8, axis=0)
        rows[1:, :] += np.float32(0.25)  # the others to the right of every coordinate
        rows[0] = X[k]
        np.testing.assert_array_equal(
            compiled.predict(rows), _sklearn_forest_means(forests, rows), err_msg=str(k)
        )


def test_leaf_sum_one_row_short_of_a_tile(forests):
    """n_rows = tile - 1: the number of tiles is ceil(n / tile), no empty extra tile."""
    from srgpu.forest.numba_engine import MIN_TILE

    rng = np.random.default_rng(12)
    X = rng.uniform(-1, 1, (MIN_TILE - 1, 4)).astype(np.float32)
    compiled = NumbaEngine(threads=1).compile(forests)
    np.testing.assert_array_equal(compiled.predict(X), _sklearn_forest_means(forests, X))
