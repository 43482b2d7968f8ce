"""Annual predictors of the demo world (the rules the pipeline's predictors must agree with)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu.data.demo.constants import PREDICTOR_UNITS


def _annual_predictors(drivers: xr.Dataset, *, par_fraction: float) -> xr.Dataset:
    """The ten annual predictors per (year, lat, lon) from the monthly drivers.

    Month weights ``d`` are the days in each month of the time axis's calendar. MAT = sum(d tas)
    / sum(d) - 273.15; Prec = sum(d pr) x 86400 (mm); RH, LAI = day-weighted means; PAR =
    ``par_fraction`` x sum(d rsds) x 86400 / 1e6 (MJ m-2); SOC = soc. Growing season: the months
    with tas > 273.15 K; Prec_GS and PAR_GS are sums over it (0 when it is empty), RH_GS and
    LAI_GS day-weighted means over it (NaN when it is empty).
    """
    time = drivers["time"]
    years = time.dt.year.values
    uniq = np.unique(years)
    ny = uniq.size
    days = time.dt.days_in_month.values.astype(float).reshape(ny, 12)[:, :, None, None]

    def monthly(name: str) -> np.ndarray:
        a = drivers[name].values.astype(float)
        return a.reshape(ny, 12, *a.shape[1:])

    tas, pr, hurs, lai, rsds = (monthly(n) for n in ("tas", "pr", "hurs", "lai", "rsds"))
    dsum = days.sum(axis=1)
    gs = tas > 273.15
    d_gs = np.where(gs, days, 0.0)
    d_gs_sum = d_gs.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "MAT": (days * tas).sum(axis=1) / dsum - 273.15,
            "Prec": (days * pr).sum(axis=1) * 86400.0,
            "RH": (days * hurs).sum(axis=1) / dsum,
            "LAI": (days * lai).sum(axis=1) / dsum,
            "PAR": par_fraction * (days * rsds).sum(axis=1) * 86400.0 / 1e6,
            "SOC": np.broadcast_to(
                drivers["soc"].values.astype(float), (ny, *tas.shape[2:])
            ).copy(),
            "Prec_GS": (d_gs * pr).sum(axis=1) * 86400.0,
            "RH_GS": np.where(d_gs_sum > 0, (d_gs * hurs).sum(axis=1) / d_gs_sum, np.nan),
            "LAI_GS": np.where(d_gs_sum > 0, (d_gs * lai).sum(axis=1) / d_gs_sum, np.nan),
            "PAR_GS": par_fraction * (d_gs * rsds).sum(axis=1) * 86400.0 / 1e6,
        }
    ocean = np.isnan(tas).all(axis=1)
    for name in ("Prec_GS", "PAR_GS"):
        out[name][ocean] = np.nan
    dims = ("year", "lat", "lon")
    return xr.Dataset(
        {k: (dims, v, {"units": PREDICTOR_UNITS[k]}) for k, v in out.items()},
        coords={"year": uniq.astype(int), "lat": drivers["lat"], "lon": drivers["lon"]},
        attrs={"growing_season": "months with tas > 273.15 K", "par_fraction": par_fraction},
    )
