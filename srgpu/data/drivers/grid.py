"""Driver grids: regular, monotonic, identical across sources; ascending lat/lon in [-180, 180)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu.data.drivers.roles import Found
from srgpu.errors import GridMismatch


def _axis_name(ds: xr.Dataset, *, axis: str) -> str | None:
    names = ("lat", "latitude", "y") if axis == "Y" else ("lon", "longitude", "x")
    std = "latitude" if axis == "Y" else "longitude"
    for name in ds.coords:
        attrs = ds[name].attrs
        if ds[name].ndim == 1 and (attrs.get("standard_name") == std or attrs.get("axis") == axis):
            return str(name)
    for name in names:
        if name in ds.coords or name in ds.dims:
            return name
    return None


def _regular_spacing(values: np.ndarray, *, label: str, field: str) -> float:
    if values.size < 2:
        raise GridMismatch(
            "a grid axis needs at least 2 points", file=label, field=field, value=values.size
        )
    d = np.diff(values)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise GridMismatch(
            "coordinate is not monotonic",
            file=label,
            field=field,
            expected="strictly monotonic values",
        )
    step = float(np.median(np.abs(d)))
    if not np.allclose(np.abs(d), step, rtol=0.0, atol=1e-6 * max(step, 1e-9) + 1e-9):
        raise GridMismatch(
            "coordinate is irregular",
            file=label,
            field=field,
            value=(float(np.abs(d).min()), float(np.abs(d).max())),
            expected="a regular lat/lon grid (regrid it first, e.g. with xarray-regrid)",
        )
    return step


def normalise_grid(ds: xr.Dataset, *, label: str) -> xr.Dataset:
    """Rename the horizontal axes ``lat``/``lon``, sort latitude ascending and longitude into
    ascending [-180, 180) (unless that breaks a regional grid crossing the antimeridian); check
    that both axes are regular and monotonic."""
    ylat = _axis_name(ds, axis="Y")
    xlon = _axis_name(ds, axis="X")
    if ylat is None or xlon is None:
        return ds  # no horizontal grid (nothing to find in it); variables are checked on use
    ds = ds.rename({k: v for k, v in ((ylat, "lat"), (xlon, "lon")) if k != v})
    lat_values = np.asarray(ds["lat"].values, dtype=float)
    outside = ~((lat_values >= -90.0) & (lat_values <= 90.0))
    if outside.any():
        raise GridMismatch(
            "latitude outside [-90, 90]",
            file=label,
            field="lat",
            value=float(lat_values[outside][0]),
            expected="latitudes in degrees north",
        )
    _regular_spacing(lat_values, label=label, field="lat")
    _regular_spacing(np.asarray(ds["lon"].values, dtype=float), label=label, field="lon")
    lon = np.asarray(ds["lon"].values, dtype=float)
    wrapped = ((lon + 180.0) % 360.0) - 180.0
    if not np.array_equal(wrapped, lon) and _stays_regular(wrapped):
        ds = ds.assign_coords(lon=("lon", wrapped, ds["lon"].attrs))
    if not _is_ascending(ds["lon"].values):
        ds = ds.sortby("lon")
    if not _is_ascending(ds["lat"].values):
        ds = ds.sortby("lat")
    return ds


def _stays_regular(lon: np.ndarray) -> bool:
    """True when the longitudes, sorted, are still evenly spaced (a regional grid that crosses
    the antimeridian is not, and keeps its original longitudes)."""
    d = np.diff(np.sort(lon))
    return bool(d.size and np.allclose(d, d[0], rtol=0.0, atol=1e-6 * abs(d[0]) + 1e-9))


def _is_ascending(v: np.ndarray) -> bool:
    return bool(np.all(np.diff(np.asarray(v, dtype=float)) > 0))


def check_same_grid(reference: Found, other: Found) -> xr.DataArray:
    """Return ``other.da`` on the reference coordinates, or raise :class:`GridMismatch`."""
    a, b = reference.da, other.da
    for axis in ("lat", "lon"):
        va = np.asarray(a[axis].values, dtype=float)
        vb = np.asarray(b[axis].values, dtype=float)
        step = float(np.abs(np.diff(va)).min())
        if va.shape != vb.shape or not np.allclose(va, vb, rtol=0.0, atol=1e-3 * step):
            raise GridMismatch(
                f"grid of {other.name!r} differs from that of {reference.name!r} in "
                f"{reference.label} along {axis}",
                file=other.label,
                field=axis,
                value=f"{vb.size} points {vb.min()}..{vb.max()}" if vb.size else "no points",
                expected=f"{va.size} points {va.min()}..{va.max()} (regrid first)",
            )
    return b.assign_coords(lat=a["lat"], lon=a["lon"])
