"""The reference inference engine: scikit-learn's own ``RandomForestRegressor.predict``.

Slow but unquestionable; every other engine is tested against it. A forest with ``n_jobs`` other
than 1 is predicted through a shallow copy with ``n_jobs=1`` so that the trees are summed in
estimator order (threads would add them in completion order, changing the last bits).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from srgpu.forest.grown import as_sklearn
from srgpu.forest.protocol import batch_n_features, check_rows


def _serial(est: Any) -> Any:
    est = as_sklearn(est)
    if getattr(est, "n_jobs", None) in (None, 1):
        return est
    twin = copy.copy(est)  # shares the fitted trees
    twin.n_jobs = 1
    return twin


@dataclass(frozen=True, eq=False)
class SklearnCompiledForests:
    """The fitted forests themselves."""

    forests: tuple[Any, ...]
    n_features: int

    @property
    def n_replicates(self) -> int:
        return len(self.forests)

    def predict(self, X: Any) -> np.ndarray:
        """Stack of ``est.predict(X)``, shape ``(n_replicates, n_rows)``, float64."""
        X = np.asarray(X)
        check_rows(X, self.n_features)
        out = np.empty((self.n_replicates, X.shape[0]), dtype=np.float64)
        if X.shape[0] == 0:  # scikit-learn refuses empty input
            return out
        for i, est in enumerate(self.forests):
            out[i] = est.predict(X)
        return out


class SklearnEngine:
    """Inference by scikit-learn (``name = "sklearn"``): the reference and the fallback."""

    name = "sklearn"

    def compile(self, forests: Sequence[Any]) -> SklearnCompiledForests:
        forests = tuple(_serial(est) for est in forests)
        n_features = batch_n_features(forests)
        return SklearnCompiledForests(forests=forests, n_features=n_features)

    def __repr__(self) -> str:
        return "SklearnEngine()"
