"""The randomForest -> cuML parameter mapping, as plain Python (no cuML needed)."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.errors import BackendError, ConfigError
from srgpu.forest.cuml_train import (
    CUML_RF_REGRESSOR_ARGS,
    MAX_BINS,
    cuml_params,
    fit_cuml_forest,
)
from tests import has_cuml, requires_cuml, requires_gpu

# cuML 26.10 RandomForestRegressor signature, as documented (docs.nvidia.com/cuml/26.10,
# python/cuml/cuml/ensemble/randomforestregressor.py); hard-coded here on purpose.
DOCUMENTED_26_10 = {
    "n_estimators",
    "split_criterion",
    "bootstrap",
    "max_samples",
    "max_depth",
    "max_leaves",
    "max_features",
    "n_bins",
    "min_samples_leaf",
    "min_samples_split",
    "min_impurity_decrease",
    "max_batch_size",
    "random_state",
    "n_streams",
    "oob_score",
    "verbose",
    "output_type",
}


def _cuml_n_sampled_cols(fraction: float, p: int) -> int:
    """cuML's builder: ``max(1, int64(float(max_features) * n_cols))`` in float32."""
    return max(1, int(np.float32(np.float32(fraction) * np.float32(p))))


PAPER = ForestConfig()


@pytest.mark.parametrize(
    ("p", "n_rows", "seed", "mtry", "max_features", "n_bins"),
    [
        (5, 2664, 1, 1, 1.5 / 5, 2664),  # SR, paper predictors: mtry = floor(5/3) = 1
        (7, 672, 2, 2, 2.5 / 7, 672),  # HR, paper predictors: mtry = floor(7/3) = 2
        (10, 10_000, 3, 3, 3.5 / 10, MAX_BINS),
        (2, 50, 4, 1, 1.5 / 2, 50),
        (1, 3, 5, 1, 1.0, 3),
    ],
)
def test_paper_mapping(p, n_rows, seed, mtry, max_features, n_bins):
    params = cuml_params(PAPER, n_features=p, n_rows=n_rows, seed=seed)
    assert params == {
        "n_estimators": 500,
        "split_criterion": "mse",
        "bootstrap": True,
        "max_samples": 1.0,
        "max_depth": n_rows,
        "max_leaves": -1,
        "max_features": pytest.approx(max_features),
        "n_bins": n_bins,
        "min_samples_leaf": 1,
        "min_samples_split": 6,
        "min_impurity_decrease": 0.0,
        "max_batch_size": 4096,
        "random_state": seed,
        "n_streams": 4,
        "oob_score": False,
        "verbose": False,
        "output_type": "numpy",
    }
    assert _cuml_n_sampled_cols(params["max_features"], p) == mtry


def test_keys_are_documented_cuml_arguments():
    params = cuml_params(PAPER, n_features=5, n_rows=100, seed=0)
    assert set(params) <= DOCUMENTED_26_10
    assert set(params) == CUML_RF_REGRESSOR_ARGS == DOCUMENTED_26_10  # every one pinned


@pytest.mark.parametrize("p", range(1, 65))
def test_mtry_exact_for_every_p(p):
    """``mtry/p`` would truncate to mtry-1 for e.g. p=22, 23, 29; our fraction never does."""
    for mtry in range(1, p + 1):
        forest = ForestConfig(mtry=mtry)
        frac = cuml_params(forest, n_features=p, n_rows=100, seed=0)["max_features"]
        assert 0.0 < frac <= 1.0
        assert _cuml_n_sampled_cols(frac, p) == mtry


def test_config_values_flow_through():
    forest = ForestConfig(trees=7, nodesize=1, mtry=4, bootstrap=False)
    params = cuml_params(forest, n_features=7, n_rows=30, seed=2**32 + 5)
    assert params["n_estimators"] == 7
    assert params["min_samples_split"] == 2
    assert params["bootstrap"] is False
    assert params["random_state"] == 5  # reduced modulo 2**32: cuML's accepted range
    assert _cuml_n_sampled_cols(params["max_features"], 7) == 4


def test_seeds_differ():
    a = cuml_params(PAPER, n_features=5, n_rows=100, seed=11)["random_state"]
    b = cuml_params(PAPER, n_features=5, n_rows=100, seed=12)["random_state"]
    assert a != b


@pytest.mark.parametrize(("n_features", "n_rows"), [(0, 10), (3, 0)])
def test_bad_sizes(n_features, n_rows):
    with pytest.raises(ConfigError):
        cuml_params(PAPER, n_features=n_features, n_rows=n_rows, seed=0)


@pytest.mark.skipif(has_cuml, reason="cuML is installed")
def test_fit_without_cuml_raises_backend_error():
    with pytest.raises(BackendError, match="cuML"):
        fit_cuml_forest(np.zeros((10, 2)), np.zeros(10), forest=PAPER, seed=0)


@pytest.mark.gpu
@requires_gpu
@requires_cuml
def test_fit_cuml_returns_sklearn_forest_and_is_deterministic():
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(500, 5)).astype(np.float32)
    y = (800 + 300 * X[:, 0] + 100 * np.sin(3 * X[:, 1])).astype(np.float32)
    forest = ForestConfig(trees=50)
    a = fit_cuml_forest(X, y, forest=forest, seed=3)
    b = fit_cuml_forest(X, y, forest=forest, seed=3)
    assert isinstance(a, RandomForestRegressor)
    assert len(a.estimators_) == 50
    np.testing.assert_array_equal(a.predict(X), b.predict(X))  # same seed => same forest
    assert np.corrcoef(a.predict(X), y)[0, 1] > 0.95
