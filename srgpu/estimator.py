"""The ensemble as a scikit-learn-style estimator, for notebooks and scripts.

``SoilRespirationEnsemble(replicates=..., trees=...)`` keeps its keyword parameters as given
(scikit-learn's ``get_params``/``set_params``/``clone`` work), validates them declaratively
(``_parameter_constraints``, as scikit-learn and quantile-forest do) when ``fit`` is called, and
learns state ending in ``_``. ``fit`` runs (or resumes) exactly what ``srgpu ensemble`` runs::

    from srgpu.estimator import SoilRespirationEnsemble
    est = SoilRespirationEnsemble(replicates=24, trees=200).fit(out="demo-run")  # demo world
    est.totals_            # DataFrame: SR, HR, AR global totals with their spread (Pg C / yr)
    est.open_store()       # the xarray Dataset of OUT/ensemble.zarr
"""

from __future__ import annotations

from numbers import Integral, Real
from pathlib import Path

import pandas as pd
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from srgpu.config import (
    PAPER_PREDICTORS,
    PARAMETERS,
    EnsembleConfig,
    ForestConfig,
    PredictConfig,
    TrainConfig,
    check_device_pair,
)
from srgpu.constants import DEFAULT_SEED

ESTIMATOR_PARAMETERS = {
    "replicates": "replicates",
    "trees": "forest.trees",
    "nodesize": "forest.nodesize",
    "mtry": "forest.mtry",
    "seed": "seed",
    "sampling": "sampling",
    "train_device": "train.device",
    "trainer": "train.trainer",
    "predict_device": "predict.device",
    "engine": "predict.engine",
    "batch_size": "batch_size",
    "workers": "workers",
    "scheduler": "scheduler",
}
"""Estimator parameter -> its entry in :data:`srgpu.config.PARAMETERS` (the one table)."""


def sklearn_constraints(name: str) -> list:
    """scikit-learn's constraint list for ``PARAMETERS[name]`` (types, ranges, choices)."""
    param = PARAMETERS[name]
    if param.choices is not None:
        out: list = [StrOptions(set(param.choices))]
    elif param.kind in (int, float):
        left = param.low is not None and param.closed in ("both", "left")
        right = param.high is not None and param.closed in ("both", "right")
        closed = {(True, True): "both", (True, False): "left", (False, True): "right"}
        out = [
            Interval(
                Integral if param.kind is int else Real,
                param.low,
                param.high,
                closed=closed.get((left, right), "neither"),
            )
        ]
    else:
        out = [param.kind]
    return [*out, None] if param.nullable else out


class SoilRespirationEnsemble(BaseEstimator):
    """Replicate random-forest ensemble of SR and HR (AR = SR - HR); see ``srgpu ensemble``.

    Parameters mirror :class:`srgpu.config.EnsembleConfig` (``None`` = its default); device and
    implementation are two parameters per stage: ``train_device`` x ``trainer`` (``[train]``)
    and ``predict_device`` x ``engine`` (``[predict]``), all ``"auto"`` by default; a pair that
    cannot run (e.g. ``trainer="sklearn"`` with ``train_device="gpu"``) is a ``ConfigError``
    at ``fit``.
    Learned: ``config_`` (the effective config), ``summary_`` (``summary.json``), ``store_path_``,
    ``totals_`` (a tidy table of the global totals).
    """

    # derived from the one table of srgpu.config (trees: unset = the demo or paper default)
    _parameter_constraints: dict = {
        **{k: sklearn_constraints(v) for k, v in ESTIMATOR_PARAMETERS.items()},
        "trees": [*sklearn_constraints("forest.trees"), None],
        "predictors": [dict, None],
    }

    def __init__(
        self,
        *,
        replicates: int | None = None,
        trees: int | None = None,
        nodesize: int = 5,
        mtry: int | None = None,
        seed: int = DEFAULT_SEED,
        sampling: str = "area",
        predictors: dict | None = None,
        train_device: str = "auto",
        trainer: str = "auto",
        predict_device: str = "auto",
        engine: str = "auto",
        batch_size: int = 8,
        workers: int | None = None,
        scheduler: str | None = None,
    ):
        self.replicates = replicates
        self.trees = trees
        self.nodesize = nodesize
        self.mtry = mtry
        self.seed = seed
        self.sampling = sampling
        self.predictors = predictors
        self.train_device = train_device
        self.trainer = trainer
        self.predict_device = predict_device
        self.engine = engine
        self.batch_size = batch_size
        self.workers = workers
        self.scheduler = scheduler

    def _config(self, *, srdb, drivers, vegetation) -> EnsembleConfig:
        demo = srdb is None and not drivers
        trees = self.trees if self.trees is not None else (200 if demo else 500)
        predictors = {
            **PAPER_PREDICTORS,
            **{k: tuple(v) for k, v in (self.predictors or {}).items()},
        }
        return EnsembleConfig(
            srdb=None if srdb is None else str(srdb),
            drivers=tuple(str(d) for d in drivers),
            vegetation=None if vegetation is None else str(vegetation),
            predictors=tuple(predictors.items()),
            replicates=self.replicates,
            seed=self.seed,
            sampling=self.sampling,
            forest=ForestConfig(trees=trees, nodesize=self.nodesize, mtry=self.mtry),
            train=TrainConfig(device=self.train_device, trainer=self.trainer),
            predict=PredictConfig(device=self.predict_device, engine=self.engine),
            batch_size=self.batch_size,
        )

    def fit(self, srdb=None, drivers=(), vegetation=None, *, out, overwrite: bool = False):
        """Run (or resume) the ensemble into ``out``; no data = the embedded demo world."""
        from srgpu.run.ensemble import run_ensemble

        self._validate_params()
        for name, key in ESTIMATOR_PARAMETERS.items():  # what sklearn lets through (bools)
            value = getattr(self, name)
            if not (value is None and name == "trees"):
                PARAMETERS[key].check(name, value, source=type(self).__name__)
        for stage, device, impl in (
            ("train", self.train_device, self.trainer),
            ("predict", self.predict_device, self.engine),
        ):
            check_device_pair(stage, device, impl, source=type(self).__name__)
        self.config_ = self._config(srdb=srdb, drivers=drivers, vegetation=vegetation)
        self.summary_ = run_ensemble(
            self.config_,
            out=out,
            overwrite=overwrite,
            workers=self.workers,
            scheduler=self.scheduler,
        )
        self.store_path_ = Path(out) / "ensemble.zarr"
        self.totals_ = pd.DataFrame(
            {f: v["total_pg_per_yr"] for f, v in self.summary_["fluxes"].items()}
        ).T.rename_axis("flux")
        return self

    def open_store(self) -> xr.Dataset:
        """The fitted run's store (lazy xarray Dataset)."""
        from srgpu.results import open_run

        check_is_fitted(self, "store_path_")
        return open_run(self.store_path_).dataset
