"""randomForest-style training with scikit-learn trees."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.forest.train import fit_forest, sklearn_tree_params


@pytest.mark.parametrize(("p", "mtry"), [(1, 1), (2, 1), (5, 1), (7, 2), (10, 3)])
def test_mtry_is_randomforest_default(p, mtry):
    assert sklearn_tree_params(ForestConfig(), n_features=p)["max_features"] == mtry


def test_nodesize_maps_to_min_samples_split():
    params = sklearn_tree_params(ForestConfig(nodesize=5), n_features=5)
    assert params["min_samples_split"] == 6 and params["min_samples_leaf"] == 1


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 10, size=(n, 3)).astype(np.float32)
    y = 50 * X[:, 0] + rng.normal(0, 5, n)
    return X, y


def test_no_split_node_holds_more_than_nodesize_bootstrap_rows():
    """randomForest rule: a node of <= nodesize rows (duplicates counted) is never split, so
    every internal node holds > nodesize rows and leaves can be larger than 1."""
    X, y = _data()
    rf = fit_forest(X, y, forest=ForestConfig(trees=20, nodesize=5), seed=np.random.SeedSequence(0))
    for est in rf.estimators_:
        t = est.tree_
        internal = t.children_left != -1
        assert np.all(t.n_node_samples[internal] > 5)
        assert t.n_node_samples[0] == X.shape[0]  # bootstrap of n rows, duplicates are rows


def test_forest_predicts_tree_mean_and_is_deterministic():
    X, y = _data()
    cfg = ForestConfig(trees=25)
    a = fit_forest(X, y, forest=cfg, seed=np.random.SeedSequence(3))
    b = fit_forest(X, y, forest=cfg, seed=np.random.SeedSequence(3))
    c = fit_forest(X, y, forest=cfg, seed=np.random.SeedSequence(4))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert not np.array_equal(a.predict(X), c.predict(X))
    mean = np.mean([t.predict(X) for t in a.estimators_], axis=0)
    np.testing.assert_allclose(a.predict(X), mean, rtol=1e-12)
    # learns the signal: R2 on the training rows well above 0.9
    resid = y - a.predict(X)
    assert 1 - resid.var() / y.var() > 0.95
