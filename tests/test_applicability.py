"""Area of applicability: known answers on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.analysis.applicability import area_of_applicability, fivenum, upper_whisker
from srgpu.errors import ConfigError


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (np.arange(1, 11), [1, 3, 5.5, 8, 10]),  # R: fivenum(1:10)
        (np.arange(1, 10), [1, 3, 5, 7, 9]),  # R: fivenum(1:9)
        (np.array([2.0, 1.0]), [1, 1, 1.5, 2, 2]),
    ],
)
def test_fivenum_matches_r(x, expected):
    np.testing.assert_allclose(fivenum(x), expected)


def test_upper_whisker_drops_outliers():
    # R: boxplot.stats(c(1:10, 100))$stats[5] == 10
    assert upper_whisker(np.r_[np.arange(1, 11), 100.0]) == 10.0
    assert upper_whisker(np.arange(1, 11)) == 10.0


def _train(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, size=(n, 3))


def test_far_points_outside_and_inside_points_inside():
    X = _train()
    grid = np.array(
        [
            [0.5, 0.5, 0.5],
            [0.2, 0.8, 0.4],
            [5.0, 5.0, 5.0],
            [0.5, 0.5, -4.0],
            [np.nan, 0.5, 0.5],
        ]
    )
    folds = np.arange(len(X)) % 5
    di, aoa, thr = area_of_applicability(X, grid, weights=np.ones(3), folds=folds)
    assert thr > 0
    assert aoa.tolist() == [True, True, False, False, False]
    assert di[0] < thr < di[2]
    assert np.isnan(di[4])


def test_zero_weight_ignores_that_predictor():
    X = _train(1)
    grid = np.array([[0.5, 0.5, 50.0]])
    _, aoa_w, _ = area_of_applicability(X, grid, weights=np.array([1.0, 1.0, 0.0]), folds=None)
    _, aoa_u, _ = area_of_applicability(X, grid, weights=np.ones(3), folds=None)
    assert aoa_w[0] and not aoa_u[0]


def test_spatial_folds_raise_the_threshold():
    # clustered training data: folds = clusters, so CV distances span the gaps between clusters
    rng = np.random.default_rng(2)
    centres = rng.uniform(0, 10, size=(6, 2))
    labels = np.repeat(np.arange(6), 40)
    X = centres[labels] + rng.normal(0, 0.1, size=(labels.size, 2))
    grid = np.array([[0.0, 0.0]])
    _, _, thr_random = area_of_applicability(
        X, grid, weights=np.ones(2), folds=rng.permutation(labels)
    )
    _, _, thr_cluster = area_of_applicability(X, grid, weights=np.ones(2), folds=labels)
    assert thr_cluster > 3 * thr_random


def test_di_scale_free_in_weights():
    X = _train(3)
    grid = _train(4, 50) * 1.5
    di1, a1, t1 = area_of_applicability(X, grid, weights=np.array([1.0, 2.0, 3.0]), folds=None)
    di2, a2, t2 = area_of_applicability(X, grid, weights=np.array([10.0, 20.0, 30.0]), folds=None)
    np.testing.assert_allclose(di1, di2)
    assert t1 == pytest.approx(t2)
    assert (a1 == a2).all()


def test_bad_inputs():
    X = _train()
    with pytest.raises(ConfigError):
        area_of_applicability(X, X[:, :2], weights=np.ones(3), folds=None)
    with pytest.raises(ConfigError):
        area_of_applicability(X, X, weights=np.zeros(3), folds=None)
    with pytest.raises(ConfigError):
        area_of_applicability(np.ones((10, 3)), X, weights=np.ones(3), folds=None)
