"""Training on the GPU with cuML: the paper's randomForest settings as cuML keyword arguments.

Paper (quantregForest 1.3-7 on randomForest): ``ntree = 500``, ``nodesize = 5``,
``mtry = max(floor(p / 3), 1)``, each tree on a bootstrap of n rows drawn with replacement.
:func:`cuml_params` maps these to ``cuml.ensemble.RandomForestRegressor`` and pins **every**
constructor argument, because cuML's defaults change between releases (``max_depth`` went from
16 to unlimited in 26.08, ``max_features`` from ``"auto"`` to 1.0 in 24.06).

Differences from randomForest that remain (also in ``docs/gpu.md``):

* **Split candidates.** randomForest tries every midpoint between consecutive distinct values
  of the node's rows. cuML tries, for each feature, at most ``n_bins`` quantiles of the *whole*
  training set (computed once per forest), split as ``x <= q`` with ``q`` a data value. With
  ``n_bins = n_rows`` (what we pass while ``n_rows <= MAX_BINS``) every distinct training value
  is a candidate, so the partitions of the training rows are the same set randomForest
  searches; only the threshold inside a gap differs (a data value instead of the midpoint),
  which moves predictions for new rows whose value falls inside that gap.
* **mtry.** cuML takes a fraction and draws ``int(float32(max_features) * p)`` features per
  node; we pass ``(mtry + 0.5) / p`` (1.0 when ``mtry == p``) so that the truncation gives
  exactly ``mtry`` for every ``p`` (``mtry / p`` truncates to ``mtry - 1`` for some ``p``, e.g.
  ``13 / 22``). When none of the drawn features gives a valid split, cuML (like scikit-learn)
  draws more features; randomForest makes the node a leaf.
* **Random numbers.** Bootstrap rows and feature draws come from cuML's own generator seeded by
  ``random_state``: a GPU-trained forest is statistically, not bitwise, equal to a CPU-trained
  one with the same seed.
* **Precision.** We fit on float32 X and y (thresholds are then float32 data values, exact for
  float32 inference); randomForest works in double.
"""

from __future__ import annotations

from typing import Any

from srgpu.config import ForestConfig
from srgpu.errors import BackendError, ConfigError

MAX_BINS = 4096
"""Cap of ``n_bins``. With the paper's data (at most 3331 SR records, 80 % for training) the cap
never binds and every distinct training value is a split candidate. cuML has no hard limit on
``n_bins``: large histograms move from shared to global GPU memory (slower, not wrong)."""

N_STREAMS = 4
"""CUDA streams cuML uses to grow trees in parallel (its default). cuML's maintainers state that
results are deterministic for a fixed ``random_state`` whatever ``n_streams`` (cuML PR 7140, 2025,
which removed the old "n_streams=1 for reproducibility" caveat). Not yet checked on a GPU here."""

MAX_BATCH_SIZE = 4096
"""Nodes processed per batch by cuML's level-wise builder (its default); performance only."""

CUML_RF_REGRESSOR_ARGS = frozenset(
    {
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
)
"""Constructor arguments of ``cuml.ensemble.RandomForestRegressor`` in cuML 26.10 (documented
signature, ``python/cuml/cuml/ensemble/randomforestregressor.py``). Older arguments such as
``accuracy_metric`` and ``seed`` no longer exist; passing them raises ``TypeError``."""


def _max_features_fraction(mtry: int, n_features: int) -> float:
    """A fraction ``f`` such that cuML's ``int(float32(f) * p)`` equals ``mtry``."""
    if mtry >= n_features:
        return 1.0
    return (mtry + 0.5) / n_features


def cuml_params(forest: ForestConfig, *, n_features: int, n_rows: int, seed: int) -> dict:
    """Keyword arguments of ``cuml.ensemble.RandomForestRegressor`` for the paper's forest.

    Parameters
    ----------
    forest
        Trees, nodesize, mtry, bootstrap (defaults: 500, 5, ``max(floor(p/3), 1)``, True).
    n_features
        ``p``, the number of predictors.
    n_rows
        Rows of the training set (before bootstrap); sets ``n_bins`` and the depth bound.
    seed
        ``random_state``, reduced modulo 2**32 (cuML accepts ``0 <= seed < 2**32``).

    Every value is pinned; see the module docstring for the differences from randomForest:

    * ``min_samples_split = nodesize + 1``: cuML does not split a node holding fewer than
      ``min_samples_split`` rows, counted with bootstrap duplicates, as randomForest does not
      split a node of at most ``nodesize`` rows; ``min_samples_leaf = 1`` (randomForest has no
      leaf minimum).
    * ``max_depth = n_rows``: an exact "unlimited" that every cuML release accepts (``None`` only
      from 26.08; before, the default was 16). A tree on ``n`` rows with
      ``min_samples_split >= 2`` cannot be deeper than ``n - 1``. cuML has no other depth limit
      (``max_depth`` only sizes the first node allocation, 8191 nodes from depth 13).
    * ``max_leaves = -1``, ``min_impurity_decrease = 0.0``: no other stopping rule.
    * ``bootstrap = True``, ``max_samples = 1.0``: n rows with replacement per tree.
    * ``split_criterion = "mse"``: randomForest's residual sum of squares.
    * ``oob_score = False``: the ensemble validates on its own 20 % hold-out.
    """
    if n_features < 1:
        raise ConfigError(f"cuml_params: n_features must be >= 1, got {n_features}")
    if n_rows < 1:
        raise ConfigError(f"cuml_params: n_rows must be >= 1, got {n_rows}")
    mtry = forest.mtry_for(n_features)
    return {
        "n_estimators": forest.trees,
        "split_criterion": "mse",
        "bootstrap": forest.bootstrap,
        "max_samples": 1.0,
        "max_depth": max(n_rows, 1),
        "max_leaves": -1,
        "max_features": _max_features_fraction(mtry, n_features),
        "n_bins": max(2, min(n_rows, MAX_BINS)),
        "min_samples_leaf": 1,
        "min_samples_split": forest.nodesize + 1,
        "min_impurity_decrease": 0.0,
        "max_batch_size": MAX_BATCH_SIZE,
        "random_state": int(seed) % 2**32,
        "n_streams": N_STREAMS,
        "oob_score": False,
        "verbose": False,
        "output_type": "numpy",
    }


def _import_cuml_rf() -> Any:
    try:
        from cuml.ensemble import RandomForestRegressor
    except ImportError as exc:
        raise BackendError(
            "GPU training needs cuML (install the [gpu] extra: cuml-cu13): " + str(exc)
        ) from None
    except Exception as exc:  # cuML imports CUDA libraries; a broken setup raises anything
        raise BackendError(f"cuML failed to import: {exc.__class__.__name__}: {exc}") from None
    return RandomForestRegressor


def _namespace_of(X: Any) -> Any:
    """cupy for a device array (it stays on the device), numpy otherwise."""
    if hasattr(X, "__cuda_array_interface__"):
        import cupy

        return cupy
    import numpy

    return numpy


def fit_cuml_forest(X: Any, y: Any, *, forest: ForestConfig, seed: int) -> Any:
    """Fit a cuML random forest on ``X`` (rows × predictors) and ``y``; return scikit-learn.

    ``X`` and ``y`` (numpy or cupy) are cast to float32. The fitted cuML model is converted with
    ``as_sklearn()`` (cuML 26.x, through a treelite model) to a fitted
    ``sklearn.ensemble.RandomForestRegressor``, the form every inference engine compiles
    (nvForest's ``load_from_sklearn``, the CPU kernels). Raises :class:`BackendError` without
    cuML or a GPU.
    """
    rf_class = _import_cuml_rf()
    xp = _namespace_of(X)
    X32 = xp.asarray(X, dtype=xp.float32)
    y32 = xp.asarray(y, dtype=xp.float32).reshape(-1)
    if X32.ndim != 2 or X32.shape[0] != y32.shape[0]:
        raise ConfigError(
            f"fit_cuml_forest: X must be (rows, predictors) with one y per row; "
            f"got X{tuple(X32.shape)}, y{tuple(y32.shape)}"
        )
    params = cuml_params(forest, n_features=int(X32.shape[1]), n_rows=int(X32.shape[0]), seed=seed)
    model = rf_class(**params)
    try:
        model.fit(X32, y32)
    except Exception as exc:  # CUDA errors surface as RuntimeError from cuML
        raise BackendError(f"cuML training failed: {exc.__class__.__name__}: {exc}") from exc
    return model.as_sklearn()
