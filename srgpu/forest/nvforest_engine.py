"""nvForest inference engine (the Forest Inference Library split out of cuML, ``nvforest-cu13``).

Each fitted scikit-learn ``RandomForestRegressor`` is converted **once**, in :meth:`compile`,
with ``nvforest.load_from_sklearn(model, device=..., precision=...)`` (through a treelite
model); :meth:`NvForestCompiled.predict` then calls plain ``predict`` per replicate and stacks
the results into ``(n_replicates, n_rows)``. ``predict_per_tree`` is never used: it writes
rows × trees values.

Facts checked with nvforest-cu13 26.10 on a machine without GPU or driver:

* ``import nvforest`` works without a driver, and ``device="cpu"`` models load and predict.
  ``device="gpu"`` raises ``RuntimeError: Failed to detect a GPU device ...
  cudaErrorInsufficientDriver`` (turned into :class:`~srgpu.errors.BackendError` here).
* For a scikit-learn regression forest, ``predict`` returns the **mean** over trees (treelite's
  importer sets ``average_tree_output``), shape ``(n_rows, 1)``: no post-processing needed.
* Output dtype is the model precision: float32 for ``precision="single"``, float64 for
  ``"double"``. With ``"double"`` the result equals scikit-learn's bit for bit; with
  ``"single"`` thresholds, leaf values and the sum over trees are float32 (see the tests for
  the observed differences).
* On ``device="gpu"`` ``predict`` takes numpy or cupy rows and always returns cupy; we move X
  to the device once per call, so that the replicates share one copy.
* nvforest 26.10 bundles treelite 4.7 while the wheel pulls the Python ``treelite`` 4.8; reading
  a model serialised by 4.8 warns "originated from a newer Treelite version". The model
  predicts correctly (tested), so :meth:`compile` silences that one warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from srgpu.errors import BackendError, ConfigError
from srgpu.forest.grown import as_sklearn
from srgpu.forest.protocol import batch_n_features, check_rows

DEVICES = ("cpu", "gpu")
PRECISIONS = ("single", "double")
_TREELITE_VERSION_WARNING = r".*originated from a newer Treelite version.*"


def _import_nvforest() -> Any:
    try:
        import nvforest
    except ImportError as exc:
        raise BackendError(
            "the nvforest engine needs nvforest-cu13 (the [gpu] or [nvforest] extra): " + str(exc)
        ) from None
    except Exception as exc:
        raise BackendError(f"nvforest failed to import: {exc.__class__.__name__}: {exc}") from None
    return nvforest


def _check_forest(model: Any, index: int) -> int:
    """The number of features of a fitted single-output scikit-learn forest regressor."""
    n_features = getattr(model, "n_features_in_", None)
    if n_features is None or not hasattr(model, "estimators_"):
        raise ConfigError(
            f"nvforest engine: forest {index} is not a fitted scikit-learn forest regressor "
            f"(got {type(model).__name__})"
        )
    if getattr(model, "n_outputs_", 1) != 1:
        raise ConfigError(f"nvforest engine: forest {index} has {model.n_outputs_} outputs; need 1")
    return int(n_features)


class NvForestCompiled:
    """A batch of forests loaded into nvForest, one model per replicate."""

    def __init__(self, *, models: Sequence[Any], n_features: int, device: str):
        self.models = tuple(models)
        self.n_replicates = len(self.models)
        self.n_features = n_features
        self.device = device

    def _namespace(self) -> Any:
        if self.device == "gpu":
            import cupy

            return cupy
        return np

    def predict(self, X: Any, *, chunk_size: int | None = None) -> Any:
        """Forest-mean predictions, shape ``(n_replicates, n_rows)``.

        numpy in and out on CPU; on GPU X may be numpy or cupy and the result is cupy (rows stay
        on the device). dtype float32 for ``precision="single"``, float64 for ``"double"``.
        """
        xp = self._namespace()
        dtype = xp.float32 if self.models[0].precision == "single" else xp.float64
        X = xp.asarray(X, dtype=dtype, order="C")
        check_rows(X, self.n_features)
        out = xp.empty((self.n_replicates, X.shape[0]), dtype=dtype)
        if X.shape[0] == 0:
            return out
        for i, model in enumerate(self.models):
            out[i] = model.predict(X, chunk_size=chunk_size)[:, 0]
        return out


class NvForestEngine:
    """Inference engine on nvForest, ``device`` ``"cpu"`` or ``"gpu"``.

    ``precision="single"`` (float32 thresholds, leaves and sums: the fast path on GPU) or
    ``"double"`` (bitwise equal to scikit-learn). ``layout`` is nvForest's node layout
    (``"depth_first"``, ``"breadth_first"``, ``"layered"``).
    """

    name = "nvforest"

    def __init__(
        self, *, device: str = "cpu", precision: str = "single", layout: str = "depth_first"
    ):
        if device not in DEVICES:
            raise ConfigError(f"nvforest engine: device must be one of {DEVICES}, got {device!r}")
        if precision not in PRECISIONS:
            raise ConfigError(
                f"nvforest engine: precision must be one of {PRECISIONS}, got {precision!r}"
            )
        self.device = device
        self.precision = precision
        self.layout = layout

    def __repr__(self) -> str:
        return f"NvForestEngine(device={self.device!r}, precision={self.precision!r})"

    def compile(self, forests: Sequence[Any]) -> NvForestCompiled:
        """Load each fitted scikit-learn ``RandomForestRegressor`` into nvForest, once."""
        forests = [as_sklearn(m) for m in forests]
        for i, m in enumerate(forests):
            _check_forest(m, i)
        n_features = batch_n_features(forests)
        nvforest = _import_nvforest()
        models = []
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TREELITE_VERSION_WARNING)
            for model in forests:
                try:
                    models.append(
                        nvforest.load_from_sklearn(
                            model,
                            device=self.device,
                            precision=self.precision,
                            layout=self.layout,
                        )
                    )
                except RuntimeError as exc:
                    if self.device == "gpu":
                        raise BackendError(f"nvforest on GPU: {exc}".replace("\n", " ")) from None
                    raise
        return NvForestCompiled(models=models, n_features=n_features, device=self.device)
