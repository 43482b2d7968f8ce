"""A ``RandomForestRegressor`` around fitted trees (both trainers' forests end up as one).

A module of its own so that :mod:`srgpu.forest.train` and :mod:`srgpu.forest.grown` both use it
and import each other only one way (``train`` -> ``grown``).
"""

from __future__ import annotations

from sklearn.ensemble import RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor


def assemble_forest(
    trees: list[DecisionTreeRegressor], *, n_features: int, params: dict
) -> RandomForestRegressor:
    """Wrap fitted trees in a ``RandomForestRegressor`` that predicts their mean."""
    forest_params = {k: v for k, v in params.items() if k != "splitter"}
    rf = RandomForestRegressor(n_estimators=len(trees), bootstrap=False, n_jobs=1, **forest_params)
    rf.estimator_ = DecisionTreeRegressor(**params)
    rf.estimators_ = trees
    rf.n_features_in_ = n_features
    rf.n_outputs_ = 1
    return rf
