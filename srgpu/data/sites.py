"""Site table: each observation joined to the predictors of its grid cell and year.

Rules (see ``docs/predictors.md``):

* a record joins the cell that contains it when that cell's predictors are finite in every
  year ("valid cell"); otherwise the nearest valid cell by great-circle distance within
  ``max_distance_km`` (KD-tree on unit-sphere xyz); otherwise it is dropped and counted;
* with a climatology every record joins the one period whatever its year; with a time series a
  year outside the driver period is clamped to the nearest driver year (counted), and a record
  without a year is dropped (counted);
* ``veg_bin`` of a record is kept where the SRDB gives one (1..5) and filled from the map's
  ``veg_bin`` of the joined cell where it is 0 or missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from srgpu.config import PREDICTOR_NAMES
from srgpu.errors import InputError

EARTH_RADIUS_KM = 6371.0

REQUIRED_COLUMNS = ("lat", "lon", "year")


def _xyz(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    lat = np.deg2rad(lat_deg)
    lon = np.deg2rad(lon_deg)
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def _chord_to_km(chord: np.ndarray) -> np.ndarray:
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def _own_index(values: np.ndarray, axis: np.ndarray, *, periodic: bool) -> np.ndarray:
    """Index of the cell containing each value on a regular ascending axis (-1 if outside).

    ``periodic`` (longitude): the offset from the first cell edge is taken modulo 360, so that a
    site at -170 finds a grid stored as 170..210.
    """
    step = float(np.diff(axis).mean())
    n = axis.size
    offset = values - (axis[0] - step / 2.0)
    if periodic:
        offset = np.mod(offset, 360.0)
    pos = np.floor(offset / step)
    pos = np.where(np.isfinite(pos), pos, -1)
    return np.where((pos >= 0) & (pos < n), pos, -1).astype(np.int64)


def predictor_columns(predictors: xr.Dataset) -> list[str]:
    """The predictor variables of ``predictors`` (names from ``PREDICTOR_NAMES``), in order."""
    return [n for n in PREDICTOR_NAMES if n in predictors.data_vars]


def site_table(
    obs: pd.DataFrame, predictors: xr.Dataset, *, max_distance_km: float = 50.0
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Join observation records to the predictor grid.

    Returns ``(table, counts)``. ``table`` keeps every column of ``obs`` for the joined rows (in
    their original order, fresh index) and adds ``ilat``, ``ilon`` (cell indices), ``iyear``
    (index into ``predictors.year``), ``cell_lat``, ``cell_lon``, ``distance_km`` (0 in the own
    cell), ``year_used`` (the driver year joined), a filled ``veg_bin`` and one float column per
    predictor variable. ``counts``: ``rows_in``, ``own_cell``, ``neighbour_cell``,
    ``dropped_no_cell``, ``dropped_no_year``, ``years_clamped``.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in obs.columns]
    if missing:
        raise InputError(
            "observation table lacks columns", field=",".join(missing), expected="lat, lon, year"
        )
    if max_distance_km < 0:
        raise InputError("max_distance_km must be >= 0", value=max_distance_km)
    names = predictor_columns(predictors)
    lat = np.asarray(predictors["lat"].values, dtype=float)
    lon = np.asarray(predictors["lon"].values, dtype=float)
    years = np.asarray(predictors["year"].values, dtype=np.int64)
    climatology = bool(int(predictors.attrs.get("climatology", 0)))

    valid = np.ones((lat.size, lon.size), dtype=bool)
    for n in names:
        valid &= np.isfinite(predictors[n].values).all(axis=0)

    slat = pd.to_numeric(obs["lat"], errors="coerce").to_numpy(dtype=float)
    slon = pd.to_numeric(obs["lon"], errors="coerce").to_numpy(dtype=float)
    ilat = _own_index(slat, lat, periodic=False)
    ilon = _own_index(slon, lon, periodic=True)
    inside = (ilat >= 0) & (ilon >= 0)
    own = inside.copy()
    own[inside] = valid[ilat[inside], ilon[inside]]
    distance = np.where(own, 0.0, np.nan)

    located = np.isfinite(slat) & np.isfinite(slon)
    need = np.flatnonzero(~own & located)
    moved = np.zeros(len(obs), dtype=bool)
    if need.size and valid.any():
        vi, vj = np.nonzero(valid)
        tree = cKDTree(_xyz(lat[vi], lon[vj]))
        bound = 2.0 * np.sin(min(max_distance_km / EARTH_RADIUS_KM, np.pi) / 2.0)
        chord, k = tree.query(
            _xyz(slat[need], slon[need]), k=1, distance_upper_bound=bound * (1 + 1e-12)
        )
        hit = np.isfinite(chord)
        rows = need[hit]
        ilat[rows] = vi[k[hit]]
        ilon[rows] = vj[k[hit]]
        distance[rows] = _chord_to_km(chord[hit])
        moved[rows] = True
    joined = own | moved

    syear = pd.to_numeric(obs["year"], errors="coerce").to_numpy(dtype=float)
    if climatology:
        iyear = np.zeros(len(obs), dtype=np.int64)
        clamped = np.zeros(len(obs), dtype=bool)
        has_year = np.ones(len(obs), dtype=bool)
    else:
        has_year = np.isfinite(syear)
        y = np.where(has_year, np.rint(syear), years[0]).astype(np.int64)
        pos = np.clip(np.searchsorted(years, y), 0, years.size - 1)
        left = np.clip(pos - 1, 0, years.size - 1)
        iyear = np.where(np.abs(years[left] - y) <= np.abs(years[pos] - y), left, pos)
        clamped = has_year & (years[iyear] != y)

    keep = joined & has_year
    out = obs.loc[keep].copy()
    r = np.flatnonzero(keep)
    out["ilat"] = ilat[r]
    out["ilon"] = ilon[r]
    out["iyear"] = iyear[r]
    out["year_used"] = years[iyear[r]]
    out["cell_lat"] = lat[ilat[r]]
    out["cell_lon"] = lon[ilon[r]]
    out["distance_km"] = distance[r]
    if "veg_bin" in predictors:
        map_bin = np.asarray(predictors["veg_bin"].values)[ilat[r], ilon[r]].astype(np.int64)
        if "veg_bin" in out.columns:
            rec = pd.to_numeric(out["veg_bin"], errors="coerce").fillna(0).to_numpy(np.int64)
            out["veg_bin"] = np.where(rec > 0, rec, map_bin)
        else:
            out["veg_bin"] = map_bin
    for n in names:
        out[n] = np.asarray(predictors[n].values)[iyear[r], ilat[r], ilon[r]].astype(np.float64)
    out = out.reset_index(drop=True)
    counts = {
        "rows_in": int(len(obs)),
        "own_cell": int((own & has_year).sum()),
        "neighbour_cell": int((moved & has_year).sum()),
        "dropped_no_cell": int((~joined).sum()),
        "dropped_no_year": int((joined & ~has_year).sum()),
        "years_clamped": int((keep & clamped).sum()),
    }
    return out, counts
