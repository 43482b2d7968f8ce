"""The real-data benchmarks' pieces on synthetic SRDB-like data (no real data needed)."""

from __future__ import annotations

import numpy as np

from benchmarks import bench_real_train
from benchmarks.real_data import distinct_values
from srgpu.config import ForestConfig
from srgpu.forest.train import fit_forest


def _cells(seed=0):
    rng = np.random.default_rng(seed)
    Xc = rng.normal(size=(60, 4)).astype(np.float32)
    cell = rng.integers(0, 60, size=200)
    y = np.round(500 + 80 * Xc[cell, 0] + rng.normal(scale=60, size=200), 1)
    return Xc[cell], y


def test_speed_entry_and_tree_agreement():
    X, y = _cells()
    res = bench_real_train.bench_speed(X, y, trees=4, repeats=1, seed=0)
    assert res["train_rows"] == 200 and res["distinct_rows"] == np.unique(X, axis=0).shape[0]
    assert res["distinct_values_per_predictor"] == distinct_values(X)
    assert set(res["speedup_vs_sklearn_per_core"]) == set(bench_real_train.TRAINERS)
    cfg = ForestConfig(trees=6, mtry=2)
    ss = np.random.SeedSequence(1)
    ref = fit_forest(X, y, forest=cfg, seed=ss, trainer="sklearn")
    exact = fit_forest(X, y, forest=cfg, seed=ss, trainer="numba-exact")
    assert bench_real_train._tree_agreement(exact, ref) == {
        "identical": 6, "same_structure": 6, "trees": 6
    }  # fmt: skip
    other = fit_forest(X, y, forest=cfg, seed=np.random.SeedSequence(2), trainer="sklearn")
    assert bench_real_train._tree_agreement(other, ref)["identical"] == 0


def test_diff_summary():
    d = bench_real_train._diff(np.array([1.0, 2.0, 4.0]), np.array([1.0, 2.0, 2.0]))
    assert d["max_abs"] == 2.0 and d["identical_rows"] == 2 and d["rows"] == 3
    assert np.isclose(d["rmsd"], np.sqrt(4 / 3))
    s = bench_real_train._summary([d, d])
    assert s["rows"] == 6 and s["identical_rows"] == 4 and s["max_abs"] == 2.0
