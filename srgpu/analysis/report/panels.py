"""Plot helpers of the report's figures: map panels, cell edges, area weights, colour limits."""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu.analysis.report.constants import OCEAN, OTHER_LAND
from srgpu.schema import CELL_AREA, DOMAIN, LAND_FRACTION


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _edges(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([lo, hi])
    mid = (c[1:] + c[:-1]) / 2
    first = c[0] - (mid[0] - c[0])
    last = c[-1] + (c[-1] - mid[-1])
    return np.clip(np.concatenate([[first], mid, [last]]), lo, hi)


def _weights(store: xr.Dataset) -> np.ndarray:
    """``cell_area x land_fraction`` (m2) on the domain, 0 elsewhere."""
    w = np.asarray(store[CELL_AREA].values, float) * np.asarray(store[LAND_FRACTION].values, float)
    return np.where(np.asarray(store[DOMAIN].values).astype(bool), np.nan_to_num(w), 0.0)


def _robust_limits(values: np.ndarray, *, upper_pct: float = 98.0) -> tuple[float, float]:
    """Colour limits: from 0 (or the low percentile where it is negative) to the
    ``upper_pct`` percentile of the finite values, so that a few extreme cells do not wash
    out the map."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo = min(0.0, float(np.percentile(v, 100 - upper_pct)))
    hi = float(np.percentile(v, upper_pct))
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return lo, hi


def _map_panel(ax, store, values, *, title, cmap, vmin, vmax, label, extend="max"):
    plt = _plt()
    lat, lon = store["lat"].values, store["lon"].values
    lat_e, lon_e = _edges(lat, -90, 90), _edges(lon, -180, 360)
    land = np.asarray(store[LAND_FRACTION].values, float)
    domain = np.asarray(store[DOMAIN].values).astype(bool)
    ax.set_facecolor(OCEAN)
    other = np.where((np.nan_to_num(land) > 0) & ~domain, 1.0, np.nan)
    ax.pcolormesh(
        lon_e, lat_e, other, cmap=plt.matplotlib.colors.ListedColormap([OTHER_LAND]), vmin=0, vmax=1
    )
    mesh = ax.pcolormesh(
        lon_e, lat_e, np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax
    )
    ax.set_xlim(lon_e[0], lon_e[-1])
    ax.set_ylim(-60 if lat_e[0] < -60 and not np.isfinite(values[lat < -60]).any() else -90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(-180, 181, 60) if lon_e[0] < 0 else np.arange(0, 361, 60))
    ax.set_yticks(np.arange(-60, 91, 30))
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    cb = plt.colorbar(mesh, ax=ax, orientation="horizontal", pad=0.12, fraction=0.06, extend=extend)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return mesh
