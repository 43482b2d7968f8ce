"""Area of applicability (AOA) of a model, after Meyer and Pebesma 2021 (Methods Ecol. Evol. 12,
1620) as R's CAST implements it (``trainDI`` and ``aoa``):

1. predictors are standardised with the training mean and SD (R ``scale``: SD with ddof=1),
   then multiplied by the predictor weights (variable importance; negative weights set to 0);
2. ``d_mean`` = mean Euclidean distance between distinct training records (CAST's
   ``trainDist_avrgmean``);
3. the dissimilarity index of a new point is ``DI = d_nearest_training / d_mean``;
4. the training DI of record ``i`` uses its nearest training record outside ``i``'s own
   cross-validation fold (without folds: any other record);
5. threshold = the upper whisker of R's ``boxplot.stats`` of the training DI: the largest
   training DI not above ``Q3 + 1.5 IQR``, with Tukey's hinges (``fivenum``) as Q1/Q3;
6. a point is inside the AOA when ``DI <= threshold``.

All distance searches are ``scipy.spatial.cKDTree`` queries (no Python loop over points; one
loop over the few CV folds).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist

from srgpu.errors import ConfigError

_PDIST_MAX = 20_000


def fivenum(x: np.ndarray) -> np.ndarray:
    """Tukey's five-number summary, as R's ``stats::fivenum`` (NaN dropped)."""
    x = np.sort(np.asarray(x, dtype=float)[np.isfinite(x)])
    n = x.size
    if n == 0:
        return np.full(5, np.nan)
    n4 = np.floor((n + 3) / 2) / 2
    d = np.array([1, n4, (n + 1) / 2, n + 1 - n4, n]) - 1  # 0-based positions
    return 0.5 * (x[np.floor(d).astype(int)] + x[np.ceil(d).astype(int)])


def upper_whisker(x: np.ndarray, *, coef: float = 1.5) -> float:
    """``boxplot.stats(x, coef)$stats[5]``: the largest value not above ``Q3 + coef * IQR``."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    s = fivenum(x)
    iqr = s[3] - s[1]
    inside = x[(x >= s[1] - coef * iqr) & (x <= s[3] + coef * iqr)]
    return float(inside.max())


def _mean_pairwise_distance(Z: np.ndarray, *, seed: int = 0) -> float:
    n = Z.shape[0]
    if n <= _PDIST_MAX:
        return float(pdist(Z).mean())
    # exact in expectation: mean over a large random sample of distinct pairs
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    i = rng.integers(0, n, size=4_000_000)
    j = rng.integers(0, n - 1, size=i.size)
    j = j + (j >= i)
    return float(np.sqrt(((Z[i] - Z[j]) ** 2).sum(axis=1)).mean())


class Standardiser:
    """Training mean/SD scaling times weights (CAST's ``scale`` + weighting)."""

    def __init__(self, train_X: np.ndarray, *, weights: np.ndarray):
        X = np.asarray(train_X, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64).copy()
        if w.shape != (X.shape[1],):
            raise ConfigError(f"AOA weights: expected {X.shape[1]} weights, got shape {w.shape}")
        w[~np.isfinite(w) | (w < 0)] = 0.0
        if not (w > 0).any():
            raise ConfigError("AOA weights: all weights are zero or negative")
        self.mean = X.mean(axis=0)
        self.sd = X.std(axis=0, ddof=1)
        if np.any(~(self.sd > 0)):
            raise ConfigError("AOA: a predictor has no variance in the training data")
        self.weights = w

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.sd * self.weights


def training_di(Z: np.ndarray, *, folds: np.ndarray | None, d_mean: float) -> np.ndarray:
    """DI of each (standardised, weighted) training record to the records outside its fold."""
    n = Z.shape[0]
    out = np.full(n, np.nan)
    if folds is None:
        d, _ = cKDTree(Z).query(Z, k=2)
        return d[:, 1] / d_mean
    folds = np.asarray(folds)
    if folds.shape != (n,):
        raise ConfigError(f"AOA folds: expected {n} fold labels, got shape {folds.shape}")
    for f in np.unique(folds):
        inside = folds == f
        if inside.all():
            continue  # a single fold: nothing outside it
        d, _ = cKDTree(Z[~inside]).query(Z[inside], k=1)
        out[inside] = d / d_mean
    return out


def area_of_applicability(
    train_X: np.ndarray,
    grid_X: np.ndarray,
    *,
    weights: np.ndarray,
    folds: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(di, aoa_mask, threshold)`` of the rows of ``grid_X`` (see the module docstring).

    ``train_X`` (n, p) are the training predictors, ``weights`` (p,) their importance, ``folds``
    (n,) the CV fold label of each training record (or ``None``). Rows of ``grid_X`` with a
    non-finite predictor get DI NaN and are outside the AOA.
    """
    train_X = np.asarray(train_X, dtype=np.float64)
    grid_X = np.asarray(grid_X, dtype=np.float64)
    if train_X.ndim != 2 or train_X.shape[0] < 2:
        raise ConfigError("AOA: at least two training records are needed")
    if grid_X.ndim != 2 or grid_X.shape[1] != train_X.shape[1]:
        raise ConfigError(
            f"AOA: grid has {grid_X.shape[-1]} predictors, training data {train_X.shape[1]}"
        )
    scale = Standardiser(train_X, weights=weights)
    Z = scale(train_X)
    d_mean = _mean_pairwise_distance(Z)
    if not d_mean > 0:
        raise ConfigError("AOA: all training records are identical")
    tdi = training_di(Z, folds=folds, d_mean=d_mean)
    threshold = upper_whisker(tdi)
    di = np.full(grid_X.shape[0], np.nan)
    ok = np.isfinite(grid_X).all(axis=1)
    if ok.any():
        d, _ = cKDTree(Z).query(scale(grid_X[ok]), k=1)
        di[ok] = d / d_mean
    aoa = np.zeros(grid_X.shape[0], dtype=bool)
    aoa[ok] = di[ok] <= threshold
    return di, aoa, threshold
