"""The inference-engine protocol shared by every engine (numba CPU kernel, scikit-learn,
nvForest on CPU or GPU).

An engine converts a batch of fitted forests **once** (never per tile) and then predicts many
tiles of rows. ``predict`` returns the mean over trees of each forest, as scikit-learn's
``RandomForestRegressor.predict`` does (not quantregForest's one-random-value-per-leaf mean),
with shape ``(n_replicates, n_rows)``. Rows are float32-representable predictors (scikit-learn
casts X to float32 before comparing with its float64 thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from srgpu.errors import InputError


@runtime_checkable
class CompiledForests(Protocol):
    """A batch of forests in an engine's own format, ready to predict."""

    n_replicates: int
    n_features: int

    def predict(self, X: Any) -> Any:
        """Forest-mean predictions, shape ``(n_replicates, n_rows)``, in the engine's array
        namespace (numpy on CPU, cupy for a GPU engine)."""
        ...


@runtime_checkable
class InferenceEngine(Protocol):
    """Converts fitted forests (scikit-learn ``RandomForestRegressor``) to a compiled batch."""

    name: str

    def compile(self, forests: Sequence[Any]) -> CompiledForests: ...


def batch_n_features(forests: Sequence[Any]) -> int:
    """The number of predictors shared by a batch of fitted forests (checked), for ``compile``."""
    if not forests:
        raise InputError("no forests given", field="forests", expected="at least one forest")
    n_features = int(forests[0].n_features_in_)
    for i, est in enumerate(forests):
        if int(est.n_features_in_) != n_features:
            raise InputError(
                "forests of one batch must share their predictors",
                field=f"forests[{i}].n_features_in_",
                value=int(est.n_features_in_),
                expected=f"{n_features} like forests[0]",
            )
    return n_features


def check_rows(X: Any, n_features: int) -> None:
    """Prediction rows must be a 2-d ``(n_rows, n_features)`` array, for ``predict``."""
    if X.ndim != 2 or X.shape[1] != n_features:
        raise InputError(
            "prediction rows have the wrong shape",
            field="X",
            value=X.shape,
            expected=f"(n_rows, {n_features})",
        )
