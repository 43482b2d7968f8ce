"""A forest grown by srgpu's numba grower, kept as flat arrays until someone needs objects.

:func:`srgpu.forest.train.fit_forest` (``trainer="numba"``) returns a :class:`GrownForest`: the
trees of one forest as :class:`~srgpu.forest.numba_train.GrownTrees` parts (scikit-learn's own
node records, tree after tree, one part per chunk the grower grew: the parts are not joined,
which would copy an SR forest into ~45 MB of fresh memory) plus the ``DecisionTreeRegressor``
parameters and per-tree seeds. It
answers what the rest of srgpu asks of a fitted ``RandomForestRegressor``
(``n_features_in_``, ``n_outputs_``, ``estimators_``, ``feature_importances_``, ``predict``),
but builds the scikit-learn objects only when one of the last three is used
(:meth:`GrownForest.to_sklearn`, cached). The hot path never does: the numba inference engine
flattens a batch of grown forests part by part in one compiled pass
(:func:`srgpu.forest.arrays.forest_arrays`), and the batch's validation predicts through that
engine. Wrapping 500 trees in scikit-learn objects costs ~8 ms and flattening them again
~50 ms per forest, as much as growing them.

``as_sklearn(forest)`` gives a real ``RandomForestRegressor`` for either kind (the scikit-learn
and nvForest engines load those). A :class:`GrownForest` pickles as its arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srgpu.forest.assemble import assemble_forest
from srgpu.forest.numba_train import GrownTrees, concat_grown, to_sklearn_trees


@dataclass(eq=False)
class GrownForest:
    """One fitted forest from the numba grower (see the module docstring): ``parts``, its trees
    in order, in one or more :class:`~srgpu.forest.numba_train.GrownTrees`."""

    parts: tuple[GrownTrees, ...]
    params: dict
    tree_seeds: np.ndarray
    _sklearn: Any = field(default=None, repr=False)

    n_outputs_ = 1

    def __post_init__(self) -> None:
        self.parts = tuple(self.parts)
        if not self.parts:
            raise ValueError("a GrownForest needs at least one part")

    @property
    def trees(self) -> GrownTrees:
        """All trees as one :class:`~srgpu.forest.numba_train.GrownTrees` (joined on each call
        when there are several parts)."""
        return concat_grown(list(self.parts))

    @property
    def n_features_in_(self) -> int:
        return int(self.parts[0].n_features)

    @property
    def n_estimators(self) -> int:
        return sum(p.n_trees for p in self.parts)

    def to_sklearn(self) -> Any:
        """The equivalent fitted ``RandomForestRegressor`` (built once, then cached)."""
        if self._sklearn is None:
            trees = to_sklearn_trees(self.trees, params=self.params, tree_seeds=self.tree_seeds)
            self._sklearn = assemble_forest(
                trees, n_features=self.n_features_in_, params=self.params
            )
        return self._sklearn

    @property
    def estimators_(self) -> list:
        return self.to_sklearn().estimators_

    @property
    def feature_importances_(self) -> np.ndarray:
        return self.to_sklearn().feature_importances_

    def predict(self, X: Any) -> np.ndarray:
        """scikit-learn's ``predict`` of the forest (the tree mean)."""
        return self.to_sklearn().predict(X)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_sklearn"] = None  # rebuilt on demand
        return state


def as_sklearn(forest: Any) -> Any:
    """A scikit-learn forest for ``forest``: a :class:`GrownForest`'s :meth:`~GrownForest.
    to_sklearn`, anything else as it is."""
    return forest.to_sklearn() if isinstance(forest, GrownForest) else forest
