"""The AVX-512 partition of the numba walk (:mod:`srgpu.forest.vector_split`): the same split as
the scalar loop, no write outside the child list, and the engine's result with it equal to the
scalar walk's and to scikit-learn's bit for bit, on tied data with NaN."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from sklearn.ensemble import RandomForestRegressor

from srgpu.forest import numba_engine, vector_split
from srgpu.forest.numba_engine import ORDER_MIN_ROWS, ORDER_MIN_TREES, NumbaEngine
from srgpu.forest.vector_split import partition_rows16

needs_avx512 = pytest.mark.skipif(
    not vector_split.usable(), reason="no AVX-512 (or NUMBA_DISABLE_JIT, or LLVM < 19)"
)

_U = np.uint64
TILE = 256
SENTINEL = 0xDEADBEEF


@njit
def _split(xt, col, t, nan_right, rows, s, e, d, tmp, vector):
    if vector:
        return partition_rows16(xt, _U(col), t, nan_right, rows, _U(s), _U(e), _U(d), tmp)
    return numba_engine.partition_rows(xt, _U(col), t, nan_right, rows, _U(s), _U(e), _U(d), tmp)


def _lists(n, seed):
    """A tile's rows (feature 1 of 2: ties on a coarse grid, thresholds hit exactly, NaN) and a
    node's list of ``n`` of them, placed at an offset in the first third of ``rows``."""
    rng = np.random.default_rng(seed)
    xt = np.round(rng.normal(size=2 * TILE) * 2).astype(np.float32) / 2
    xt[rng.random(2 * TILE) < 0.15] = np.nan
    s = int(rng.integers(0, TILE - n + 1))
    rows = np.full(3 * TILE, SENTINEL, dtype=np.uint32)
    rows[s : s + n] = rng.choice(TILE, size=n, replace=False)
    return xt, rows, s


@needs_avx512
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 31, 32, 33, 100, 255, 256])
@pytest.mark.parametrize("nan_right", [False, True])
@pytest.mark.parametrize("t", [-0.5, 0.0, 0.75, 9.0, -9.0])
def test_split_equals_the_scalar_loop(n, nan_right, t):
    xt, rows, s = _lists(n, seed=n)
    src = rows[s : s + n].copy()
    x = xt[TILE + src]
    right = (x > t) | (np.isnan(x) & nan_right)
    d = s + TILE  # the child list: the same offset in the second third
    got = {}
    for vector in (False, True):
        r = rows.copy()
        tmp = np.full(TILE + 16, SENTINEL, dtype=np.uint32)
        nl = _split(xt, TILE, np.float32(t), nan_right, r, s, s + n, d, tmp, vector)
        assert nl == d + (~right).sum()
        assert np.array_equal(r[d:nl], src[~right])  # left rows in their order
        assert sorted(r[nl : d + n]) == sorted(src[right])
        # nothing written outside the child list (the source list is intact)
        outside = np.ones(len(rows), dtype=bool)
        outside[d : d + n] = False
        assert np.array_equal(r[outside], rows[outside])
        got[vector] = (nl, r[d:nl].copy(), np.sort(r[nl : d + n]))
    assert got[False][0] == got[True][0]
    assert np.array_equal(got[False][1], got[True][1])
    assert np.array_equal(got[False][2], got[True][2])


def _tied_forest(seed, *, trees):
    """Real-shaped training data: 6 predictors, records sharing all values (cells), mtry 2,
    nodesize 5."""
    rng = np.random.default_rng(seed)
    cells = np.round(rng.normal(size=(150, 6)) * 4) / 4
    X = cells[rng.integers(0, len(cells), 700)]
    y = X[:, 0] + np.sin(2 * X[:, 3]) * X[:, 5] + rng.normal(scale=0.3, size=len(X))
    rf = RandomForestRegressor(
        n_estimators=trees, max_features=2, min_samples_split=6, random_state=seed
    ).fit(X, y)
    return rf, cells


@needs_avx512
@pytest.mark.parametrize("trees", [12, ORDER_MIN_TREES])
def test_engine_vector_and_scalar_walks_equal_sklearn(monkeypatch, trees):
    """Grid rows (cells repeated, thresholds hit exactly, NaN in two features, some all-NaN
    rows), over and under the ordered-walk thresholds: the vector walk, the scalar walk and
    scikit-learn agree bit for bit."""
    rf, cells = _tied_forest(3, trees=trees)
    rng = np.random.default_rng(4)
    Q = cells[rng.integers(0, len(cells), 3 * ORDER_MIN_ROWS)].copy()
    Q += rng.choice([0.0, 0.125, -0.125], size=Q.shape)  # midpoints: the thresholds themselves
    Q[rng.random(len(Q)) < 0.2, 1] = np.nan
    Q[rng.random(len(Q)) < 0.05, 4] = np.nan
    Q[:20] = np.nan
    ref = rf.predict(Q)
    compiled = NumbaEngine(threads=1).compile([rf])
    vector = compiled.predict(Q)[0]
    monkeypatch.setattr(vector_split, "usable", lambda: False)
    scalar = compiled.predict(Q)[0]
    assert np.array_equal(vector, ref)
    assert np.array_equal(scalar, ref)
    mgl = np.concatenate([e.tree_.missing_go_to_left[e.tree_.feature >= 0] for e in rf])
    assert mgl.any() and not mgl.all()  # NaN goes both ways somewhere


def test_usable_is_off_without_jit(monkeypatch):
    """The intrinsic cannot run as Python: with ``NUMBA_DISABLE_JIT`` the engine walks with the
    scalar partition."""
    vector_split.usable.cache_clear()
    monkeypatch.setattr(vector_split.numba.config, "DISABLE_JIT", True)
    try:
        assert vector_split.usable() is False
    finally:
        vector_split.usable.cache_clear()
