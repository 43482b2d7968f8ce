"""The real inputs of the benchmarks that run on SRDB: SRDB v5.0 joined to the real 0.5 deg
climatology grids (``../shared/data`` next to the repository), with the README's predictor sets
(``MAT, Prec, Prec_GS, PAR, PAR_GS, LAI_GS`` for SR and HR, mtry 2) and the default area-weighted
80 % draw of each replicate.

Records in one 0.5 deg cell share every predictor value, so these training tables are full of
ties between distinct rows (an SR draw: ~2950 records, a few hundred distinct values per
predictor), unlike the synthetic tables of :mod:`benchmarks.common`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.common import REPO

DATA = REPO.parent / "shared" / "data"
SRDB = DATA / "srdb" / "srdb-data_v5.0_20200511.csv.gz"
GRIDS = DATA / "grids"
REAL_SET = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI_GS")
DRIVERS = (
    "era5_monthly_climatology_0p5.nc",
    "merra2_rsds_monthly_climatology_0p5.nc",
    "lai_proxy_fapar_0p5.nc",
)


def available(data: Path = DATA) -> bool:
    """Whether the real SRDB table and grids are there."""
    srdb = data / "srdb" / SRDB.name
    return srdb.exists() and all((data / "grids" / f).exists() for f in DRIVERS)


def real_config(data: Path = DATA, **overrides):
    """The README's real-data :class:`~srgpu.config.EnsembleConfig` (``overrides`` on top)."""
    from srgpu.config import EnsembleConfig

    grids = data / "grids"
    kwargs = {
        "srdb": str(data / "srdb" / SRDB.name),
        "drivers": tuple(str(grids / f) for f in DRIVERS),
        "vegetation": str(grids / "modis_igbp_2019_0p5.nc"),
        "predictors": (("SR", REAL_SET), ("HR", REAL_SET)),
    }
    kwargs.update(overrides)
    return EnsembleConfig(**kwargs)


def real_inputs(data: Path = DATA, **overrides):
    """``(inputs, config)``: the prepared real inputs and their config."""
    from srgpu.data.inputs import prepare_inputs

    config = real_config(data, **overrides)
    return prepare_inputs(config), config


def training_table(inputs, config, *, replicate: int, flux: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of replicate ``replicate``'s training draw of ``flux`` (float32, float64), as
    :func:`srgpu.run.batch.train_replicate` fits them."""
    from srgpu.run.sampling import bin_weights, replicate_split

    data = inputs.fluxes[flux]
    split = replicate_split(
        bins=data.bins,
        weights=bin_weights(scheme=config.sampling, area_shares=inputs.area_shares),
        train_fraction=config.train_fraction,
        seed=config.seed,
        replicate=replicate,
        flux=flux,
    )
    X = np.ascontiguousarray(data.X[split.train], dtype=np.float32)
    y = np.ascontiguousarray(data.y[split.train], dtype=np.float64)
    return X, y


def real_forest(inputs, config, *, flux: str, trees: int = 500, replicate: int = 0):
    """``(forest, X, y)``: a scikit-learn ``RandomForestRegressor`` of ``trees`` trees
    (``max_features=2``, ``min_samples_split = nodesize + 1``, bootstrap, ``random_state=0``,
    one job) fitted on replicate ``replicate``'s training draw of ``flux``, and that draw."""
    from sklearn.ensemble import RandomForestRegressor

    X, y = training_table(inputs, config, replicate=replicate, flux=flux)
    rf = RandomForestRegressor(
        n_estimators=trees, max_features=2, min_samples_split=config.forest.nodesize + 1,
        bootstrap=True, random_state=0, n_jobs=1,
    ).fit(X, y)  # fmt: skip
    return rf, X, y


def distinct_values(X: np.ndarray) -> list[int]:
    """Distinct values per column of ``X``."""
    return [int(np.unique(X[:, j]).size) for j in range(X.shape[1])]
