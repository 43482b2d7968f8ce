"""CPU training engine: randomForest's settings on scikit-learn's tree algorithm.

The paper used quantregForest 1.3-7, which passes its settings to randomForest: 500 trees,
``nodesize = 5``, ``mtry = max(floor(p/3), 1)``, a bootstrap of n rows with replacement per tree.

Mapping to scikit-learn, exactly:

* randomForest (``regTree.c``) marks a child node terminal when ``nodepop <= nodeSize``, where
  ``nodepop`` counts the rows of the *bootstrap sample*, duplicates included. scikit-learn's
  ``RandomForestRegressor(bootstrap=True)`` passes the bootstrap as sample weights, so its
  ``min_samples_split`` counts *distinct* rows (about 63 % of them): not the same rule.
  srgpu therefore draws each tree's bootstrap itself and grows a ``DecisionTreeRegressor`` on the
  resampled rows (duplicates are real rows) with ``min_samples_split = nodesize + 1`` and
  ``min_samples_leaf = 1``: a node of at most ``nodesize`` rows is never split, as in randomForest.
* ``max_features = mtry`` (an int): a fresh random subset of predictors at every split (as
  scikit-learn draws it: at least mtry features, more only while all drawn so far are constant in
  the node).
* Unlimited depth; splits at midpoints between sorted values (both libraries).
* Prediction is the forest mean over trees (scikit-learn ``predict``), not quantregForest's own
  ``predict(what=mean)``, which keeps one random training value per leaf: srgpu uses the forest
  mean, i.e. randomForest's prediction.

Remaining differences from randomForest: it stops splitting a node whose values are all equal and
breaks ties between equally good splits differently; the random streams differ. None changes
the statistical method.

Three CPU trainers grow these trees (``fit_forest(..., trainer=...)``; the registry of trainers
and their devices is :mod:`srgpu.forest.trainers`, the config's choice ``train.trainer``):

* ``"numba"`` (default): :mod:`srgpu.forest.numba_train`, numba tree growers several times
  faster per core (figures in ``docs/benchmarks.md``). They replay scikit-learn's algorithm,
  random stream included (the splitter's xorshift generator seeded from the same per-tree
  integer), so they grow the same trees as the ``"sklearn"`` trainer: node for node, bit for bit
  on predictors without ties between distinct rows. With ties (SRDB: records in one 0.5 deg cell
  share every predictor value) the sums over tied rows are taken in another order than
  scikit-learn's unstable sort leaves them; they differ in the last bits, which flips choices
  between splits whose criterion values are equal up to rounding (and the random streams of the
  two trees go apart from there). The trees are the same in distribution.
* ``"numba-exact"``: the same, but on tied predictors it replays scikit-learn's sort as well and
  grows its trees bit for bit; it then does scikit-learn's sorting work and is only a little
  faster than it.
* ``"sklearn"``: one ``DecisionTreeRegressor.fit`` per tree on ``X[boot], y[boot]``; the reference.

All draw the same bootstrap rows and per-tree seeds from ``seed``. The numba trainers return a
:class:`~srgpu.forest.grown.GrownForest`, the scikit-learn one a ``RandomForestRegressor`` whose
``estimators_`` are these trees; every inference engine (scikit-learn, the numba kernel,
nvForest's ``load_from_sklearn``) takes either.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.tree import DecisionTreeRegressor

from srgpu.config import ForestConfig
from srgpu.errors import ConfigError
from srgpu.forest.assemble import assemble_forest
from srgpu.forest.trainers import CPU_TRAINERS, DEFAULT_TRAINER

__all__ = ["assemble_forest", "fit_forest", "sklearn_tree_params"]


def sklearn_tree_params(forest: ForestConfig, *, n_features: int) -> dict:
    """Keyword arguments of each ``DecisionTreeRegressor`` (see the module docstring)."""
    return {
        "criterion": "squared_error",
        "splitter": "best",
        "max_depth": None,
        "min_samples_split": forest.nodesize + 1,
        "min_samples_leaf": 1,
        "min_weight_fraction_leaf": 0.0,
        "max_features": forest.mtry_for(n_features),
        "max_leaf_nodes": None,
        "min_impurity_decrease": 0.0,
    }


def fit_forest(
    X: np.ndarray,
    y: np.ndarray,
    *,
    forest: ForestConfig,
    seed: np.random.SeedSequence,
    trainer: str = DEFAULT_TRAINER,
) -> Any:
    """Fit one randomForest-style regression forest on ``X`` (n, p) and ``y`` (n,).

    Deterministic: the same ``seed`` gives the same trees (bootstrap rows and the trees'
    ``random_state`` both come from it). ``trainer``: ``"numba"`` (default), ``"numba-exact"`` or
    ``"sklearn"`` (:data:`srgpu.forest.trainers.CPU_TRAINERS`), which grow the same trees (see the
    module docstring). The numba grower returns a :class:`~srgpu.forest.grown.GrownForest` (flat
    arrays that behave as a fitted forest; ``as_sklearn`` converts), the scikit-learn path a
    ``RandomForestRegressor``.
    """
    if trainer not in CPU_TRAINERS:
        raise ConfigError(f"trainer must be one of {CPU_TRAINERS}, got {trainer!r}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n, p = X.shape
    params = sklearn_tree_params(forest, n_features=p)
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n, size=(forest.trees, n)) if forest.bootstrap else None
    tree_seeds = rng.integers(0, np.iinfo(np.int32).max, size=forest.trees)
    if trainer in ("numba", "numba-exact"):
        from srgpu.forest.grown import GrownForest
        from srgpu.forest.numba_train import grow_tree_parts

        parts = grow_tree_parts(
            X, y, boot=boot, tree_seeds=tree_seeds, mtry=params["max_features"],
            nodesize=forest.nodesize, exact=trainer == "numba-exact",
        )  # fmt: skip
        return GrownForest(parts=parts, params=params, tree_seeds=tree_seeds)
    trees = []
    for t in range(forest.trees):
        tree = DecisionTreeRegressor(random_state=int(tree_seeds[t]), **params)
        if boot is None:
            tree.fit(X, y, check_input=False)
        else:
            tree.fit(X[boot[t]], y[boot[t]], check_input=False)
        trees.append(tree)
    return assemble_forest(trees, n_features=p, params=params)
