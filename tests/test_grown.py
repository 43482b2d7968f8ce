"""GrownForest: the numba grower's forests behave as the scikit-learn path's forests everywhere
(flattened arrays, engines, validation, importances, pickling)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from srgpu.config import ForestConfig
from srgpu.forest.arrays import forest_arrays
from srgpu.forest.grown import GrownForest, as_sklearn
from srgpu.forest.numba_engine import NumbaEngine
from srgpu.forest.sklearn_engine import SklearnEngine
from srgpu.forest.train import fit_forest
from tests import requires_nvforest

FIELDS = ("feature", "threshold", "children", "nan_left", "value", "tree_offsets", "tree_depth")


def _pair(seed, *, n=400, p=5, trees=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    y = X[:, 0] * 3 + np.sin(X[:, 1]) + rng.normal(scale=0.3, size=n)
    cfg = ForestConfig(trees=trees)
    ss = np.random.SeedSequence(seed)
    grown = fit_forest(X, y, forest=cfg, seed=ss)
    ref = fit_forest(X, y, forest=ForestConfig(trees=trees), seed=ss, trainer="sklearn")
    return grown, ref, X


def test_default_trainer_returns_grown_forest_equal_to_sklearn_path():
    grown, ref, X = _pair(0)
    assert isinstance(grown, GrownForest) and isinstance(ref, RandomForestRegressor)
    assert grown.n_features_in_ == 5 and grown.n_outputs_ == 1 and grown.n_estimators == 30
    assert np.array_equal(grown.predict(X), ref.predict(X))
    assert np.array_equal(grown.feature_importances_, ref.feature_importances_)
    assert isinstance(as_sklearn(grown), RandomForestRegressor)
    assert as_sklearn(ref) is ref


def test_forest_arrays_of_grown_forests_equal_those_of_their_sklearn_twins():
    pairs = [_pair(s, trees=t, p=p) for s, t, p in [(1, 7, 5), (2, 12, 5), (3, 1, 5)]]
    fast = forest_arrays([g for g, _, _ in pairs])
    slow = forest_arrays([r for _, r, _ in pairs])
    for name in FIELDS:
        assert np.array_equal(getattr(fast, name), getattr(slow, name)), name
        assert getattr(fast, name).dtype == getattr(slow, name).dtype, name
    assert np.array_equal(fast.forest_offsets, slow.forest_offsets)
    assert fast.n_features == slow.n_features == 5


def test_forest_grown_in_parts_flattens_and_predicts_as_one(monkeypatch):
    """fit_forest keeps the grower's chunks as parts (not joined): flattening them part by part
    gives the arrays of the joined forest and of the scikit-learn twin; ``trees`` joins them."""
    from srgpu.forest import numba_train

    real = numba_train.grow_tree_parts
    monkeypatch.setattr(
        numba_train, "grow_tree_parts", lambda *a, **k: real(*a, **{**k, "chunk": 4})
    )
    grown, ref, X = _pair(6, trees=11)
    assert [p.n_trees for p in grown.parts] == [4, 4, 3]
    assert grown.n_estimators == 11 and grown.trees.n_trees == 11
    monkeypatch.undo()
    single, _, _ = _pair(6, trees=11)
    assert len(single.parts) == 1
    assert np.array_equal(grown.trees.nodes, single.parts[0].nodes)
    a, b = forest_arrays([grown, single]), forest_arrays([ref, ref])
    for name in FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.forest_offsets, [0, 11, 22])
    assert np.array_equal(NumbaEngine().compile([grown]).predict(X)[0], ref.predict(X))
    assert np.array_equal(grown.predict(X), ref.predict(X))
    again = pickle.loads(pickle.dumps(grown))
    assert len(again.parts) == 3 and np.array_equal(again.predict(X), ref.predict(X))


def test_threaded_fill_equals_serial_fill(monkeypatch):
    """Large batches are filled by several threads, block by block: same arrays."""
    from srgpu.forest import arrays

    pairs = [_pair(s, trees=t) for s, t in [(7, 9), (8, 14), (9, 3)]]
    forests = [g for g, _, _ in pairs] + [r for _, r, _ in pairs]
    serial = forest_arrays(forests)
    monkeypatch.setattr(arrays, "FILL_PARALLEL_NODES", 0)
    monkeypatch.setattr(arrays.os, "cpu_count", lambda: 4)
    threaded = forest_arrays(forests)
    for name in (*FIELDS, "forest_offsets"):
        assert np.array_equal(getattr(threaded, name), getattr(serial, name)), name


def test_engines_and_per_replicate_validation_path():
    pairs = [_pair(s) for s in (4, 5)]
    forests = [g for g, _, _ in pairs]
    X = np.random.default_rng(9).normal(size=(1500, 5))
    ref = np.stack([r.predict(X) for _, r, _ in pairs])
    numba = NumbaEngine().compile(forests)
    assert np.array_equal(numba.predict(X), ref)
    assert np.array_equal(SklearnEngine().compile(forests).predict(X), ref)
    for i in range(2):  # validation predicts each replicate's own rows
        assert np.array_equal(numba.predict_forest(i, X[:300]), ref[i, :300])
    with pytest.raises(IndexError):
        numba.predict_forest(2, X)


def test_pickle_keeps_arrays_not_objects():
    grown, ref, X = _pair(6)
    grown.to_sklearn()  # cache the objects: they must not travel
    blob = pickle.dumps(grown)
    back = pickle.loads(blob)
    assert back._sklearn is None
    assert len(blob) < len(pickle.dumps(ref))
    assert np.array_equal(back.predict(X), ref.predict(X))


@requires_nvforest
def test_nvforest_engine_takes_grown_forests():
    from srgpu.forest.nvforest_engine import NvForestEngine

    grown, ref, X = _pair(7)
    got = NvForestEngine(device="cpu").compile([grown]).predict(X)
    np.testing.assert_allclose(np.asarray(got)[0], ref.predict(X), rtol=1e-6, atol=1e-6)
