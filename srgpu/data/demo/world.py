"""The demo world's public entry points: :func:`make_demo_world` and the known truth
:func:`true_flux`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from srgpu.config import TRAINED_FLUXES
from srgpu.data.demo.annual import _annual_predictors
from srgpu.data.demo.climate import _climatology, _monthly_drivers
from srgpu.data.demo.constants import DEMO_PAR_FRACTION, FLUX_PREDICTORS
from srgpu.data.demo.cover import _land_cover
from srgpu.data.demo.datasets import _drivers_dataset, _vegetation_dataset
from srgpu.data.demo.geography import _Geography, _Grid, _land_fraction
from srgpu.data.demo.srdb import _srdb_table
from srgpu.data.demo.truth import DemoTruth, _truth
from srgpu.errors import ConfigError, InputError


@dataclass(frozen=True)
class DemoWorld:
    """The inputs a user would bring, and the truth behind them."""

    drivers: xr.Dataset
    vegetation: xr.Dataset
    srdb: pd.DataFrame
    truth: DemoTruth


def make_demo_world(
    *,
    seed: int = 0,
    resolution: float = 4.0,
    years: tuple[int, int] = (2001, 2005),
    n_sites: int = 700,
) -> DemoWorld:
    """Build the synthetic world.

    ``resolution``: grid spacing in degrees (must divide 180). ``years``: first and last year of
    the monthly drivers (inclusive). ``n_sites``: number of distinct SRDB sites; each gives one
    or more records. The geography, base climate and land cover do not depend on ``seed``; the
    year-to-year anomalies, the sites and the noise do. Same arguments, same world.
    """
    _check_args(seed=seed, resolution=resolution, years=years, n_sites=n_sites)
    root = np.random.SeedSequence(seed)
    rng_anom, rng_sites = (np.random.default_rng(s) for s in root.spawn(2))

    grid = _Grid.regular(resolution)
    land = _land_fraction(grid)
    is_land = land > 0
    geo = _Geography(grid=grid, land=land, is_land=is_land)
    clim = _climatology(geo)
    cover = _land_cover(geo, clim)
    monthly = _monthly_drivers(geo, clim, years=years, rng=rng_anom)

    drivers = _drivers_dataset(grid, monthly)
    vegetation = _vegetation_dataset(grid, land, cover)
    pred = _annual_predictors(drivers, par_fraction=DEMO_PAR_FRACTION)
    truth_fields = {flux: true_flux(flux, pred) for flux in TRAINED_FLUXES}
    srdb, records = _srdb_table(geo, cover, pred, truth_fields, n_sites=n_sites, rng=rng_sites)
    truth = _truth(geo, cover, pred, truth_fields, records)
    return DemoWorld(drivers=drivers, vegetation=vegetation, srdb=srdb, truth=truth)


def true_flux(flux: str, predictors: Mapping[str, ArrayLike]) -> np.ndarray:
    """The known response of the demo world (g C m-2 yr-1), a function of predictor values.

    ``flux``: ``"SR"`` or ``"HR"``. ``predictors``: anything indexable by predictor name (a
    dict of arrays, an ``xarray.Dataset``, a ``pandas.DataFrame``) holding at least
    :data:`FLUX_PREDICTORS` ``[flux]`` in the units of :data:`PREDICTOR_UNITS` (MAT in degC,
    Prec in mm yr-1, RH and RH_GS in %, LAI_GS in m2 m-2, PAR in MJ m-2 yr-1). Arrays broadcast;
    NaN in, NaN out. Both responses increase with every predictor they read::

        SR = 700 x 1.6 ** ((MAT - 15) / 10) x fP(Prec; 700) x fM x fL(LAI_GS; 0.40)
        HR = 400 x 1.8 ** ((MAT - 15) / 10) x fP(Prec; 600) x fM x fL(LAI_GS; 0.30)
                 x (PAR / 2500) ** 0.2
        fP(P; s) = (1 - exp(-P / s)) / (1 - exp(-1000 / s))          (saturating, 1 at 1000 mm)
        fM = (0.75 + 0.5 m) / 1.075,  m = (RH + RH_GS) / 200          (mild, 1 at m = 0.65)
        fL(L; a) = (1 - a + a (1 - exp(-L / 2))) / (1 - a + a (1 - exp(-1)))   (1 at L = 2)
    """
    if flux not in FLUX_PREDICTORS:
        raise ConfigError(
            f"true_flux: unknown flux {flux!r}; expected one of {tuple(FLUX_PREDICTORS)}"
        )
    values = {}
    for name in FLUX_PREDICTORS[flux]:
        try:
            values[name] = np.asarray(predictors[name], dtype=float)
        except KeyError:
            raise InputError(
                "predictor missing for the demo's true response",
                field=name,
                expected=f"all of {FLUX_PREDICTORS[flux]} for {flux}",
            ) from None
    mat, prec = values["MAT"], np.maximum(values["Prec"], 0.0)
    m = (values["RH"] + values["RH_GS"]) / 200.0
    f_m = (0.75 + 0.5 * m) / 1.075
    lai = np.maximum(values["LAI_GS"], 0.0)
    if flux == "SR":
        return 700.0 * 1.6 ** ((mat - 15.0) / 10.0) * _f_prec(prec, 700.0) * f_m * _f_lai(lai, 0.40)
    par = np.maximum(values["PAR"], 0.0)
    return (
        400.0
        * 1.8 ** ((mat - 15.0) / 10.0)
        * _f_prec(prec, 600.0)
        * f_m
        * _f_lai(lai, 0.30)
        * (par / 2500.0) ** 0.2
    )


def _f_prec(prec: np.ndarray, scale: float) -> np.ndarray:
    return (1.0 - np.exp(-prec / scale)) / (1.0 - np.exp(-1000.0 / scale))


def _f_lai(lai: np.ndarray, weight: float) -> np.ndarray:
    ref = 1.0 - weight + weight * (1.0 - np.exp(-1.0))
    return (1.0 - weight + weight * (1.0 - np.exp(-lai / 2.0))) / ref


def _check_args(*, seed: int, resolution: float, years: tuple[int, int], n_sites: int) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"demo seed must be a non-negative integer, got {seed!r}")
    ratio = 180.0 / resolution if resolution > 0 else 0.0
    if resolution <= 0 or abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(f"demo resolution must divide 180 degrees, got {resolution!r}")
    if len(years) != 2 or int(years[0]) > int(years[1]):
        raise ConfigError(f"demo years must be (first, last) with first <= last, got {years!r}")
    if n_sites < 1:
        raise ConfigError(f"demo n_sites must be >= 1, got {n_sites}")
