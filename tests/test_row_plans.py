"""A run's cache of the numba engine's walk order (:mod:`srgpu.forest.row_plans`): computed once
per distinct set of rows, and the predictions the same bits as without it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from srgpu.forest import row_plans
from srgpu.forest.numba_engine import ORDER_MIN_ROWS, ORDER_MIN_TREES, NumbaEngine
from srgpu.forest.row_plans import RowPlans, plan_rows, row_order


def _forests(n_forests=2):
    rng = np.random.default_rng(7)
    X = np.round(rng.normal(size=(400, 4)) * 3) / 3  # ties, as on SRDB
    y = X[:, 0] + np.sin(X[:, 1]) + rng.normal(scale=0.2, size=400)
    return [
        RandomForestRegressor(
            n_estimators=ORDER_MIN_TREES, max_features=2, min_samples_split=6, random_state=s
        ).fit(X, y)
        for s in range(n_forests)
    ]


def test_plans_are_computed_once_and_change_no_bit(monkeypatch):
    forests = _forests()
    compiled = NumbaEngine().compile(forests)
    rng = np.random.default_rng(8)
    grid = rng.normal(size=(ORDER_MIN_ROWS + 500, 4)).astype(np.float32)
    grid[rng.random(grid.shape) < 0.01] = np.nan
    tiled = np.tile(grid[:700], (3, 1))  # repeated rows: the plan keeps the inverse
    reference = {
        "grid": np.stack([f.predict(grid) for f in forests]),
        "tiled": np.stack([f.predict(tiled) for f in forests]),
    }
    walked = []
    keys = row_plans.morton_keys
    monkeypatch.setattr(row_plans, "morton_keys", lambda X: walked.append(len(X)) or keys(X))
    plans = RowPlans()
    for _ in range(3):  # three batches of one run
        assert np.array_equal(compiled.predict(grid, plans=plans), reference["grid"])
        assert np.array_equal(compiled.predict(grid.copy(), plans=plans), reference["grid"])
        assert np.array_equal(compiled.predict(tiled, plans=plans), reference["tiled"])
    # once per distinct set of rows, by content (the tiled rows' keys, then their 700 distinct)
    assert walked == [len(grid), len(tiled), 700]
    assert len(plans) == 2
    assert plans.get(grid) is plans.get(np.array(grid, order="F"))
    changed = grid.copy()
    changed[0, 0] = np.nextafter(changed[0, 0], np.float32(np.inf))
    assert plans.get(changed) is not plans.get(grid)  # one float32 step is another plan


def test_plans_past_the_budget_are_not_kept():
    rng = np.random.default_rng(9)
    grid = rng.normal(size=(ORDER_MIN_ROWS, 3)).astype(np.float32)
    plans = RowPlans(max_bytes=grid.nbytes)  # the rows fit, rows and order do not
    first = plans.get(grid)
    assert len(plans) == 0 and plans.nbytes == 0
    assert plans.get(grid) is not first
    assert np.array_equal(plans.get(grid).order, first.order)


def _reference_keys(X, edges, bits):
    """Morton keys by their definition, in Python: each feature's bin (edges not above the
    value; NaN the last bin), bits interleaved most significant first, feature 0 first."""
    use = edges.shape[0]
    keys = []
    for row in X:
        q = [
            (1 << bits) - 1 if np.isnan(v) else int(np.searchsorted(edges[f], v, side="right"))
            for f, v in enumerate(row[:use])
        ]
        code = 0
        for b in range(bits - 1, -1, -1):
            for f in range(use):
                code = (code << 1) | ((q[f] >> b) & 1)
        keys.append(code)
    return np.array(keys, dtype=np.uint64)


@pytest.mark.parametrize("p", [1, 3, 6, 9, 70])
def test_morton_keys_are_their_definition(p):
    """On rows with NaN, values on the bin edges and repeats, for 1 to 70 features (8 bits a
    feature up to 8 features, fewer past that, at most 64 features used)."""
    rng = np.random.default_rng(p)
    X = np.round(rng.normal(size=(300, p)) * 4).astype(np.float32) / 4  # ties at the edges
    X[::17, 0] = np.nan
    X[5::23] = X[3]
    n, use = X.shape[0], min(p, 64)
    bits = max(min(64 // use, 8), 1)
    levels = 1 << bits
    sample = np.sort(X[:: max(n // 8192, 1), :use], axis=0)
    edges = np.ascontiguousarray(sample[(np.arange(1, levels) * sample.shape[0]) // levels].T)
    want = _reference_keys(X, edges, bits)
    np.testing.assert_array_equal(row_plans.morton_keys(X), want)
    np.testing.assert_array_equal(row_order(X), np.argsort(want, kind="stable"))


@pytest.mark.parametrize("repeats", [0.0, 0.03, 0.2])
def test_plan_is_distinct_rows_in_row_order(repeats):
    """plan_rows, which skips comparing rows when the keys leave too few repeats possible,
    gives the plan of distinct_rows then row_order: with no repeats, with 3 % (below the share
    that deduplicates; keys collide, rows compared), with 20 %, and with rows equal in value
    but not in bytes (0.0 and -0.0: the same key, distinct rows)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 5)).astype(np.float32)
    k = int(repeats * X.shape[0])
    X[rng.choice(X.shape[0], k, replace=False)] = X[rng.integers(0, 50, k)]
    X[10:200, 2] = 0.0
    X[200:390, 2] = -0.0
    X[200:390, [0, 1, 3, 4]] = X[10:200, [0, 1, 3, 4]]
    plan = plan_rows(X)
    rows, inverse = row_plans.distinct_rows(X)
    assert (plan.inverse is None) == (inverse is None) == (repeats < 0.05)
    np.testing.assert_array_equal(plan.rows.view(np.uint32), rows.view(np.uint32))
    if inverse is not None:
        np.testing.assert_array_equal(plan.inverse, inverse)
    np.testing.assert_array_equal(plan.order, row_order(rows))
