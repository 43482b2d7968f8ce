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

from numbers import Integral
from pathlib import Path

import pandas as pd
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from srgpu.config import BACKENDS, ENGINES, PAPER_PREDICTORS, EnsembleConfig, ForestConfig


class SoilRespirationEnsemble(BaseEstimator):
    """Replicate random-forest ensemble of SR and HR (AR = SR - HR); see ``srgpu ensemble``.

    Parameters mirror :class:`srgpu.config.EnsembleConfig` (``None`` = its default).
    Learned: ``config_`` (the effective config), ``summary_`` (``summary.json``), ``store_path_``,
    ``totals_`` (a tidy table of the global totals).
    """

    _parameter_constraints: dict = {
        "replicates": [Interval(Integral, 1, None, closed="left"), None],
        "trees": [Interval(Integral, 1, None, closed="left"), None],
        "nodesize": [Interval(Integral, 1, None, closed="left")],
        "mtry": [Interval(Integral, 1, None, closed="left"), None],
        "seed": [Interval(Integral, 0, None, closed="left")],
        "sampling": [StrOptions({"area", "equal"})],
        "predictors": [dict, None],
        "engine": [StrOptions(set(ENGINES))],
        "backend": [StrOptions(set(BACKENDS))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "workers": [Interval(Integral, 0, None, closed="left"), None],
        "scheduler": [str, None],
    }

    def __init__(
        self,
        *,
        replicates: int | None = None,
        trees: int | None = None,
        nodesize: int = 5,
        mtry: int | None = None,
        seed: int = 20210505,
        sampling: str = "area",
        predictors: dict | None = None,
        engine: str = "auto",
        backend: str = "auto",
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
        self.engine = engine
        self.backend = backend
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
            backend=self.backend,
            engine=self.engine,
            batch_size=self.batch_size,
        )

    def fit(self, srdb=None, drivers=(), vegetation=None, *, out, overwrite: bool = False):
        """Run (or resume) the ensemble into ``out``; no data = the embedded demo world."""
        from srgpu.run.ensemble import run_ensemble

        self._validate_params()
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
        check_is_fitted(self, "store_path_")
        return xr.open_zarr(self.store_path_)
