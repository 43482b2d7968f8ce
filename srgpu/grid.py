"""Geometry of a regular lat/lon grid on the sphere: cell bounds and cell areas.

Written against the array API (numpy, cupy, ``array_api_strict``) like :mod:`srgpu.run.stats`,
in float64. One radius for every area in srgpu (:data:`srgpu.constants.EARTH_RADIUS_M`); the
prediction grid (:mod:`srgpu.data.predictors`) and the model-output reader
(:mod:`srgpu.analysis.compare.models`) both take their areas from :func:`cell_area_from_centres`.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from srgpu.constants import EARTH_RADIUS_M
from srgpu.errors import InputError

__all__ = ["bounds_from_centres", "cell_area_from_centres", "cell_area_m2"]

Array = Any


def _ns(*arrays: Array):
    return array_api_compat.array_namespace(*arrays)


def _as_float64(xp, x: Array) -> Array:
    return x if x.dtype == xp.float64 else xp.astype(x, xp.float64)


def _check_bounds(xp, b: Array, *, field: str, limit: float) -> None:
    if b.ndim != 2 or b.shape[1] != 2:
        raise InputError(
            "cell bounds have the wrong shape", field=field, value=tuple(b.shape), expected="(n, 2)"
        )
    if b.shape[0] and bool(xp.any(xp.isnan(b) | (xp.abs(b) > limit))):
        raise InputError(
            "cell bounds out of range or NaN", field=field, expected=f"degrees within ±{limit}"
        )


def cell_area_m2(
    lat_bounds: Array, lon_bounds: Array, *, radius_m: float = EARTH_RADIUS_M
) -> Array:
    """Areas (m²) of the cells of a regular lat/lon grid on a sphere; shape ``(nlat, nlon)``.

    ``lat_bounds`` ``(nlat, 2)`` and ``lon_bounds`` ``(nlon, 2)`` are in degrees (CF
    ``lat_bnds``/``lon_bnds``); either order of the two bounds is accepted. Each cell has area
    ``R² · Δλ · |sin φ_hi − sin φ_lo|`` (exact on the sphere), computed in float64.
    """
    xp = _ns(lat_bounds, lon_bounds)
    lat = _as_float64(xp, lat_bounds)
    lon = _as_float64(xp, lon_bounds)
    _check_bounds(xp, lat, field="lat_bounds", limit=90.0)
    _check_bounds(xp, lon, field="lon_bounds", limit=720.0)
    rad = math.pi / 180.0
    band = xp.abs(xp.sin(lat[:, 1] * rad) - xp.sin(lat[:, 0] * rad))
    dlon = xp.abs(lon[:, 1] - lon[:, 0])
    if lon.shape[0] and bool(xp.any(dlon > 360.0)):
        raise InputError("a cell is wider than 360°", field="lon_bounds", expected="width <= 360")
    return (radius_m * radius_m) * band[:, None] * (dlon * rad)[None, :]


def bounds_from_centres(
    centres: Array, *, lower: float | None = None, upper: float | None = None
) -> Array:
    """CF-style cell bounds ``(n, 2)`` of an axis given only its centres: edges midway between
    neighbours, the outer edges mirrored; clipped to ``[lower, upper]`` (e.g. ±90 for latitude).
    A single centre gets a 1-degree cell."""
    xp = _ns(centres)
    c = _as_float64(xp, centres)
    n = c.shape[0]
    if n == 1:
        edges = xp.concat([c - 0.5, c + 0.5])
    else:
        mid = (c[:-1] + c[1:]) / 2
        first = c[:1] - (mid[:1] - c[:1])
        last = c[-1:] + (c[-1:] - mid[-1:])
        edges = xp.concat([first, mid, last])
    if lower is not None or upper is not None:
        edges = xp.clip(edges, min=lower, max=upper)
    return xp.stack([edges[:-1], edges[1:]], axis=1)


def cell_area_from_centres(
    lat: np.ndarray, lon: np.ndarray, *, radius_m: float = EARTH_RADIUS_M
) -> np.ndarray:
    """Areas (m2) of a regular lat/lon grid's cells given its centres (degrees): edges midway
    between centres (clipped to +-90 degrees latitude); shape ``(nlat, nlon)``."""
    return cell_area_m2(
        bounds_from_centres(np.asarray(lat, dtype=float), lower=-90.0, upper=90.0),
        bounds_from_centres(np.asarray(lon, dtype=float)),
        radius_m=radius_m,
    )
