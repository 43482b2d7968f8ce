"""Model fields -> the ensemble grid, with ``xarray-regrid`` (no hand-written regridder).

``conservative`` (default, for fluxes and stocks): the land-weighted field ``F x land_fraction``
(NaN -> 0) and the land fraction are both regridded with xarray-regrid's conservative scheme
(``skipna=False``, spherical correction), and ``F = density / land`` on the target. The global
total ``sum(F x land x area)`` is therefore the source total (to the accuracy of the overlap
weights, < 0.1 % in the tests) and ``F`` is the mean over the model land inside each target cell.

``nearest``: nearest-neighbour selection of the source cell for each target centre, as ILAMB does
on its nested grid (ilamb3 ``compare.nest_spatial_grids``); it keeps values but not totals.

Longitudes in 0..360 or -180..180 both work (xarray-regrid shifts and wraps the source).
"""

from __future__ import annotations

from typing import Literal

import xarray as xr

from srgpu.errors import InputError
from srgpu.schema import CELL_AREA, LAND_FRACTION

METHODS = ("conservative", "nearest")


def target_grid(store: xr.Dataset) -> xr.Dataset:
    """The ensemble's (lat, lon) grid as a coordinate-only dataset for xarray-regrid."""
    return xr.Dataset(
        coords={"lat": store["lat"].values, "lon": store["lon"].values}
    ).assign_coords(
        lat=lambda d: d["lat"].assign_attrs(units="degrees_north", standard_name="latitude"),
        lon=lambda d: d["lon"].assign_attrs(units="degrees_east", standard_name="longitude"),
    )


def _require_regrid() -> None:
    try:
        import xarray_regrid  # noqa: F401  (registers the .regrid accessor)
    except ImportError:  # pragma: no cover - depends on the environment
        raise InputError(
            "regridding needs the xarray-regrid package",
            field="xarray_regrid",
            expected="pip install 'srgpu[compare]'",
        ) from None


def regrid_fields(
    data: xr.Dataset,
    *,
    target: xr.Dataset,
    land_fraction: xr.DataArray,
    method: Literal["conservative", "nearest"] = "conservative",
) -> xr.Dataset:
    """Regrid every (…, lat, lon) variable of ``data`` to ``target``; adds ``model_land_fraction``.

    ``land_fraction`` (1) is the model's land fraction on its own grid; non-spatial variables of
    ``data`` are dropped.
    """
    _require_regrid()
    if method not in METHODS:
        raise InputError(
            "unknown regridding method", field="method", value=method, expected=" or ".join(METHODS)
        )
    names = [v for v in data.data_vars if {"lat", "lon"} <= set(data[v].dims)]
    names = [v for v in names if v not in (CELL_AREA, LAND_FRACTION)]
    fields = data[names]
    land = land_fraction.fillna(0.0)
    if method == "nearest":
        out = fields.regrid.nearest(target, time_dim=None)
        out["model_land_fraction"] = land.regrid.nearest(target, time_dim=None)
    else:
        density = (
            (fields * land).fillna(0.0).regrid.conservative(target, time_dim=None, skipna=False)
        )
        land_t = land.regrid.conservative(target, time_dim=None, skipna=False)
        valid = fields.notnull().astype("float64") * land
        valid_t = valid.regrid.conservative(target, time_dim=None, skipna=False)
        out = (density / valid_t).where(valid_t > 1e-12)
        out["model_land_fraction"] = land_t
    for name in names:
        out[name].attrs = dict(data[name].attrs)
    out["model_land_fraction"].attrs = {"units": "1", "long_name": "model land fraction, regridded"}
    return out.transpose(..., "lat", "lon")


def area_total(
    field: xr.DataArray, *, area: xr.DataArray, land_fraction: xr.DataArray, scale: float = 1e-15
) -> xr.DataArray:
    """``sum(field x area x land_fraction)`` over (lat, lon), NaN skipped, times ``scale``.

    With ``field`` in g C m-2 yr-1 and the default ``scale`` the result is in Pg C yr-1; with
    ``field`` in kg C m-2 use ``scale=1e-12`` for Pg C.
    """
    weights = (area * land_fraction).fillna(0.0)
    return (field * weights).sum(("lat", "lon"), min_count=1) * scale
