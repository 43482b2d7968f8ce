"""Synthetic CMOR-like model files on an ensemble store's grid, for the comparison tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr


def write_model_files(directory: Path, store: xr.Dataset, fields: dict, *, prefix: str) -> None:
    """``{prefix}_{var}.nc`` for each ``var: field`` of ``fields`` (annual values in
    g C m-2 yr-1, (year, lat, lon) on ``store``'s grid; negatives set to 0, NaN stays NaN) as 12
    equal monthly rates per year (noleap, kg m-2 s-1, float32), and ``{prefix}_sftlf.nc``: the
    store's land fraction in % inside its domain, NaN outside."""
    years = store["year"].values
    time = xr.date_range(
        f"{years[0]}-01-01", periods=12 * years.size, freq="MS", calendar="noleap", use_cftime=True
    )
    coords = {
        "time": time,
        "lat": ("lat", store["lat"].values, {"units": "degrees_north"}),
        "lon": ("lon", store["lon"].values, {"units": "degrees_east"}),
    }
    for var, field in fields.items():
        rate = np.maximum(field, 0.0) / 1000.0 / (365 * 86400.0)  # NaN stays NaN
        data = np.repeat(rate, 12, axis=0).astype("float32")
        xr.Dataset(
            {var: (("time", "lat", "lon"), data, {"units": "kg m-2 s-1"})}, coords=coords
        ).to_netcdf(directory / f"{prefix}_{var}.nc")
    land = np.where(store["domain"].values.astype(bool), store["land_fraction"].values, np.nan)
    xr.Dataset(
        {"sftlf": (("lat", "lon"), land * 100.0, {"units": "%"})},
        coords={k: v for k, v in coords.items() if k != "time"},
    ).to_netcdf(directory / f"{prefix}_sftlf.nc")
