"""A run's cache of the numba engine's walk order (:mod:`srgpu.forest.row_plans`): computed once
per distinct set of rows, and the predictions the same bits as without it."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from srgpu.forest import numba_engine
from srgpu.forest.numba_engine import ORDER_MIN_ROWS, ORDER_MIN_TREES, NumbaEngine, row_order
from srgpu.forest.row_plans import RowPlans


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
    monkeypatch.setattr(numba_engine, "row_order", lambda X: walked.append(len(X)) or row_order(X))
    plans = RowPlans()
    for _ in range(3):  # three batches of one run
        assert np.array_equal(compiled.predict(grid, plans=plans), reference["grid"])
        assert np.array_equal(compiled.predict(grid.copy(), plans=plans), reference["grid"])
        assert np.array_equal(compiled.predict(tiled, plans=plans), reference["tiled"])
    assert walked == [len(grid), 700]  # once per distinct set of rows, by content
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
