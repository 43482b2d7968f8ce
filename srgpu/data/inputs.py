"""Everything an ensemble run consumes, prepared once: site table, predictor grid, strata.

``prepare_inputs(config)`` reads the user's SRDB table and drivers (or builds the embedded demo
world when none is given), computes the predictors the config's predictor sets need, joins the
observations to their cells and years, and lays out the prediction rows:

* the prediction domain is the predictors' ``domain`` mask (vegetated land, see
  :mod:`srgpu.data.predictors`); its cells are numbered ``0..n_cells-1`` in (lat, lon) order;
* row ``r = iyear * n_cells + icell``: rows are year-major, so a tile of rows covers whole or
  partial years of consecutive cells;
* each cell's area weight is ``cell_area * land_fraction`` (m2), used for global totals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.config import TRAINED_FLUXES, EnsembleConfig
from srgpu.errors import InputError
from srgpu.schema import CELL_AREA, DOMAIN, LAND_FRACTION, VEG_BIN


@dataclass(frozen=True)
class FluxData:
    """Training records of one flux: predictors ``X`` (n, p) float32, target ``y`` (n,), bins."""

    names: tuple[str, ...]
    X: np.ndarray
    y: np.ndarray
    bins: np.ndarray
    table: pd.DataFrame


@dataclass(frozen=True)
class Inputs:
    """Prepared inputs shared by every replicate batch (picklable, plain arrays)."""

    fluxes: dict[str, FluxData]
    grid_X: dict[str, np.ndarray]  # flux -> (n_rows, p) float32, row = iyear * n_cells + icell
    years: np.ndarray  # (n_years,) int
    n_cells: int
    cell_ilat: np.ndarray  # (n_cells,)
    cell_ilon: np.ndarray  # (n_cells,)
    weight_m2: np.ndarray  # (n_cells,) cell area x land fraction
    area_shares: dict[int, float]  # vegetated-area share per bin 1..5
    predictors: xr.Dataset  # the predictor grid with its static fields
    qc: dict = field(default_factory=dict)
    truth: object | None = None  # the demo world's truth when running the demo

    @property
    def n_years(self) -> int:
        return int(self.years.size)

    @property
    def n_rows(self) -> int:
        return self.n_years * self.n_cells


def _all_predictor_names(config: EnsembleConfig) -> list[str]:
    names: list[str] = []
    for flux in TRAINED_FLUXES:
        for n in config.predictors_for(flux):
            if n not in names:
                names.append(n)
    return names


def load_sources(config: EnsembleConfig):
    """``(srdb, drivers, vegetation, truth)``: the user's paths, or the demo world."""
    if config.is_demo:
        from srgpu.data.demo import make_demo_world

        world = make_demo_world(seed=0)
        return world.srdb, [world.drivers], world.vegetation, world.truth
    if config.srdb is None:
        raise InputError("drivers were given without an SRDB table", field="--srdb")
    if not config.drivers:
        raise InputError("an SRDB table was given without drivers", field="--drivers")
    return config.srdb, list(config.drivers), config.vegetation, None


def prepare_inputs(config: EnsembleConfig) -> Inputs:
    """Read and join everything a run needs (see the module docstring)."""
    from srgpu.data.observations import load_observations
    from srgpu.data.predictors import build_predictors
    from srgpu.data.sites import site_table
    from srgpu.data.vegetation import bin_area_shares

    srdb, drivers, vegetation, truth = load_sources(config)
    filters = config.observations
    obs = load_observations(srdb, **(filters.selection_options() if filters else {}))
    names = _all_predictor_names(config)
    preds = build_predictors(
        drivers=drivers,
        vegetation=vegetation,
        names=names,
        variables=config.variable_overrides or None,
        par_fraction=config.par_fraction,
    )
    sites, site_counts = site_table(obs.table, preds, max_distance_km=config.site_max_distance_km)
    shares_da = bin_area_shares(preds)
    area_shares = {
        int(b): float(v) for b, v in zip(shares_da["bin"].values, shares_da.values, strict=True)
    }

    domain = preds[DOMAIN].values.astype(bool)
    cell_ilat, cell_ilon = np.nonzero(domain)
    n_cells = int(cell_ilat.size)
    if n_cells == 0:
        raise InputError(
            "the prediction domain (vegetated land with every predictor finite) is empty",
            file=", ".join(map(str, config.drivers)) or "demo drivers",
            field=DOMAIN,
            expected="land cells whose vegetated classes hold >= 50 % of the land",
        )
    years = np.asarray(preds["year"].values, dtype=np.int64)
    weight = (preds[CELL_AREA].values * preds[LAND_FRACTION].values)[cell_ilat, cell_ilon]

    grid_X: dict[str, np.ndarray] = {}
    fluxes: dict[str, FluxData] = {}
    for flux in TRAINED_FLUXES:
        fnames = config.predictors_for(flux)
        cols = [preds[n].values[:, cell_ilat, cell_ilon] for n in fnames]  # (n_years, n_cells)
        grid_X[flux] = np.ascontiguousarray(
            np.stack(cols, axis=-1).reshape(len(years) * n_cells, len(fnames)), dtype=np.float32
        )
        t = sites[sites["flux"] == flux].reset_index(drop=True)
        t = t.dropna(subset=list(fnames)).reset_index(drop=True)
        fluxes[flux] = FluxData(
            names=tuple(fnames),
            X=np.ascontiguousarray(t[list(fnames)].to_numpy(dtype=np.float32)),
            y=t["value"].to_numpy(dtype=np.float64),
            bins=t[VEG_BIN].to_numpy(dtype=np.int64),
            table=t,
        )
        if len(t) < 10:
            raise InputError(
                f"only {len(t)} usable {flux} records after joining to the drivers "
                f"({site_counts.get('dropped_no_cell', 0)} sites found no valid cell)",
                file=config.srdb if isinstance(config.srdb, str) else "demo SRDB table",
                field="Rs_annual" if flux == "SR" else "Rh_annual",
                expected="at least 10",
            )
    qc = {"observations": obs.qc.to_dict(), "sites": site_counts}
    return Inputs(
        fluxes=fluxes,
        grid_X=grid_X,
        years=years,
        n_cells=n_cells,
        cell_ilat=cell_ilat,
        cell_ilon=cell_ilon,
        weight_m2=np.asarray(weight, dtype=np.float64),
        area_shares=area_shares,
        predictors=preds,
        qc=qc,
        truth=truth,
    )
