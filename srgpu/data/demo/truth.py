"""What the demo world knows and an ensemble should recover: :class:`DemoTruth`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.constants import G_PER_PG
from srgpu.data.demo.constants import DEMO_PAR_FRACTION, FLUX_UNITS, TOTAL_UNITS
from srgpu.data.demo.cover import _bin_of, _Cover
from srgpu.data.demo.geography import _Geography
from srgpu.schema import CELL_AREA, DOMAIN, LAND_FRACTION


@dataclass(frozen=True)
class DemoTruth:
    """What the demo world knows and an ensemble should recover.

    ``predictors``: the ten annual predictors (dims ``year, lat, lon``; NaN over ocean), computed
    from :attr:`DemoWorld.drivers` by the rules in ``docs/demo.md``. ``sr``/``hr``: the
    noise-free :func:`true_flux` fields (g C m-2 yr-1, ``year, lat, lon``) on every land cell
    where the predictors are defined. ``cell_area`` (m2, sphere R = 6371 km) and
    ``land_fraction`` (0-1) per cell. ``vegetated``: land cells whose majority land class is in
    vegetation bins 1..5. ``totals``: SR, HR and AR = SR - HR summed over the vegetated domain
    with weights ``cell_area x land_fraction`` (Pg C yr-1, dim ``year``); ``mean_totals``: their
    mean over the years. ``records``: per SRDB row, the noise-free truth behind its fluxes.
    """

    predictors: xr.Dataset
    sr: xr.DataArray
    hr: xr.DataArray
    cell_area: xr.DataArray
    land_fraction: xr.DataArray
    vegetated: xr.DataArray
    totals: xr.Dataset
    mean_totals: dict[str, float]
    records: pd.DataFrame
    par_fraction: float = DEMO_PAR_FRACTION

    @property
    def ar(self) -> xr.DataArray:
        """True autotrophic respiration AR = SR - HR (g C m-2 yr-1)."""
        out = self.sr - self.hr
        out.name = "AR"
        out.attrs = {"long_name": "true autotrophic (root) respiration", "units": FLUX_UNITS}
        return out


def _truth(
    geo: _Geography,
    cover: _Cover,
    pred: xr.Dataset,
    fields: Mapping[str, np.ndarray],
    records: pd.DataFrame,
) -> DemoTruth:
    grid = geo.grid
    coords = {"lat": pred["lat"], "lon": pred["lon"]}
    area = grid.cell_area()
    vegetated = geo.is_land & (_bin_of(cover.primary) > 0)
    weight = np.where(vegetated, area * geo.land, 0.0)
    da = {}
    for flux, field in fields.items():
        if not np.isfinite(field[:, vegetated]).all():
            raise RuntimeError(f"demo world: true {flux} is not finite on every vegetated cell")
        da[flux] = xr.DataArray(
            field,
            dims=("year", "lat", "lon"),
            coords={"year": pred["year"], **coords},
            name=flux,
            attrs={"long_name": f"true {flux} of the demo world", "units": FLUX_UNITS},
        )
    per_year = {
        flux: np.einsum("yij,ij->y", np.nan_to_num(f), weight) / G_PER_PG
        for flux, f in fields.items()
    }
    per_year["AR"] = per_year["SR"] - per_year["HR"]
    totals = xr.Dataset(
        {k: ("year", v, {"units": TOTAL_UNITS}) for k, v in per_year.items()},
        coords={"year": pred["year"]},
        attrs={
            DOMAIN: "land cells whose majority land class is in vegetation bins 1-5",
            "weights": "cell area (sphere R = 6371 km) x land fraction",
        },
    )
    return DemoTruth(
        predictors=pred,
        sr=da["SR"],
        hr=da["HR"],
        cell_area=xr.DataArray(
            area, dims=("lat", "lon"), coords=coords, name=CELL_AREA, attrs={"units": "m2"}
        ),
        land_fraction=xr.DataArray(
            geo.land, dims=("lat", "lon"), coords=coords, name=LAND_FRACTION, attrs={"units": "1"}
        ),
        vegetated=xr.DataArray(vegetated, dims=("lat", "lon"), coords=coords, name="vegetated"),
        totals=totals,
        mean_totals={k: float(np.mean(v)) for k, v in per_year.items()},
        records=records,
    )
