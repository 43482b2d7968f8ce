"""The demo world's SRDB-like table: clustered sites, noisy fluxes and the rows that exercise
the selection."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.data.demo.constants import SECONDARY_SHARE
from srgpu.data.demo.cover import _bin_of, _Cover
from srgpu.data.demo.geography import _Geography

# (lon, lat, weight, spread in degrees): where SRDB's sites cluster.
_HOTSPOTS: tuple[tuple[float, float, float, float], ...] = (
    (-80.0, 38.0, 10.0, 7.0),  # eastern US
    (-118.0, 42.0, 2.5, 6.0),  # western US
    (-100.0, 55.0, 2.0, 9.0),  # boreal Canada
    (-150.0, 64.0, 0.8, 5.0),  # Alaska
    (8.0, 50.0, 12.0, 8.0),  # Europe
    (25.0, 62.0, 3.0, 5.0),  # Fennoscandia
    (15.0, 41.0, 1.5, 4.0),  # Mediterranean
    (113.0, 35.0, 11.0, 7.0),  # China
    (138.0, 37.0, 3.0, 3.0),  # Japan
    (95.0, 55.0, 0.8, 14.0),  # Siberia
    (-60.0, -5.0, 0.5, 7.0),  # Amazon
    (-48.0, -15.0, 0.6, 5.0),  # Brazilian cerrado
    (105.0, 5.0, 0.8, 6.0),  # Southeast Asia
    (20.0, 0.0, 0.2, 8.0),  # Congo
    (78.0, 21.0, 0.6, 6.0),  # India
    (145.0, -32.0, 0.5, 6.0),  # eastern Australia
)
_HOTSPOT_FLOOR = 0.002  # relative site density far from every hotspot

_MANIPULATIONS: dict[str, float] = {
    "Fertilized": 0.8,
    "Warmed": 1.25,
    "Irrigated": 1.2,
    "CO2": 1.15,
    "Drought": 0.7,
    "Litter manipulation": 0.75,
}
"""Treatments and the factor they apply to a record's fluxes (the selection must drop them)."""

_NOISE_SD = 0.17  # log-scale sd of the multiplicative observation noise

# IGBP class -> (Ecosystem_type, Leaf_habit)
_ECOSYSTEM: dict[int, tuple[str, str]] = {
    1: ("Forest", "Evergreen"),
    2: ("Forest", "Evergreen"),
    3: ("Forest", "Deciduous"),
    4: ("Forest", "Deciduous"),
    5: ("Forest", "Mixed"),
    6: ("Shrubland", "Evergreen"),
    7: ("Shrubland", "Deciduous"),
    8: ("Savanna", "Deciduous"),
    9: ("Savanna", "Deciduous"),
    10: ("Grassland", "Deciduous"),
    11: ("Wetland", "Deciduous"),
    12: ("Agriculture", "Deciduous"),
    14: ("Agriculture", "Deciduous"),
}


def _biome(mat: float, cls: int) -> str:
    if cls == 7 and mat < -5.0:
        return "Arctic"
    if cls == 2:
        return "Tropical" if mat >= 22.0 else "Subtropical"
    if mat < 3.0:
        return "Boreal"
    if mat < 18.0:
        return "Temperate"
    return "Subtropical" if mat < 22.0 else "Tropical"


def _site_cells(
    geo: _Geography, cover: _Cover, rng: np.random.Generator, n_sites: int
) -> np.ndarray:
    """Flat indices of the sites' cells: clustered like SRDB, on vegetated (or wetland) land."""
    lon, lat = geo.lonlat()
    density = np.full(geo.grid.shape, _HOTSPOT_FLOOR)
    coslat = np.cos(np.deg2rad(lat))
    for c_lon, c_lat, w, s in _HOTSPOTS:
        dx = ((lon - c_lon + 180.0) % 360.0 - 180.0) * coslat
        density += w / 10.0 * np.exp(-0.5 * (dx**2 + (lat - c_lat) ** 2) / s**2)
    eligible = (_bin_of(cover.primary) > 0) | (cover.primary == 11)
    p = density * geo.grid.cell_area() * geo.land * eligible
    p = p.ravel() / p.sum()
    return rng.choice(p.size, size=n_sites, p=p)


def _srdb_table(
    geo: _Geography,
    cover: _Cover,
    pred: xr.Dataset,
    truth: Mapping[str, np.ndarray],
    *,
    n_sites: int,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SRDB-format rows and, per row, the noise-free truth and the QC trigger planted in it."""
    grid = geo.grid
    years = pred["year"].values
    nx = grid.lon.size
    cells = np.sort(_site_cells(geo, cover, rng, n_sites))
    iy, ix = np.divmod(cells, nx)

    # One site: a class (primary or secondary patch), a point inside its cell, a study.
    use_second = (rng.random(n_sites) < SECONDARY_SHARE) & (
        cover.secondary[iy, ix] != cover.primary[iy, ix]
    )
    site_cls = np.where(use_second, cover.secondary[iy, ix], cover.primary[iy, ix])
    margin = 1e-3
    site_lat = rng.uniform(grid.lat_bnds[iy, 0] + margin, grid.lat_bnds[iy, 1] - margin).round(3)
    site_lon = rng.uniform(grid.lon_bnds[ix, 0] + margin, grid.lon_bnds[ix, 1] - margin).round(3)
    study_size = rng.integers(1, 4, size=n_sites)
    study = 1000 + np.repeat(np.arange(n_sites), study_size)[:n_sites]

    # Records: 1 + Poisson(0.6) distinct study periods per site; 35 % span two years (midyear .5).
    rows = []
    for s in range(n_sites):
        n_rec = min(1 + rng.poisson(0.6), years.size)
        for y0 in np.sort(rng.choice(years, size=n_rec, replace=False)):
            two = bool(y0 < years[-1] and rng.random() < 0.35)
            rows.append((s, int(y0), 2 if two else 1))
    site, first, span = (np.array(c) for c in zip(*rows, strict=True))
    n = site.size
    y_idx = first - years[0]
    r_iy, r_ix = iy[site], ix[site]
    true = {}
    for flux, field in truth.items():
        one = field[y_idx, r_iy, r_ix]
        two = field[np.minimum(y_idx + 1, years.size - 1), r_iy, r_ix]
        true[flux] = np.where(span == 2, 0.5 * (one + two), one)

    # Which fluxes a record reports; observation noise (lognormal, mean-preserving).
    kind = rng.choice(4, size=n, p=[0.62, 0.28, 0.06, 0.04])  # Rs only, both, Rh only, neither
    noise = np.exp(_NOISE_SD * rng.standard_normal((2, n)) - 0.5 * _NOISE_SD**2)
    rs = np.where(np.isin(kind, (0, 1)), true["SR"] * noise[0], np.nan)
    rh = np.where(np.isin(kind, (1, 2)), true["HR"] * noise[1], np.nan)

    qc = np.full(n, "", dtype=object)
    qc[kind == 3] = "no_flux"
    manipulation = np.full(n, "None", dtype=object)
    treated = rng.random(n) < 0.10
    names = list(_MANIPULATIONS)
    chosen = rng.integers(0, len(names), size=n)
    for k in np.nonzero(treated)[0]:
        name = names[chosen[k]]
        manipulation[k] = name
        rs[k] *= _MANIPULATIONS[name]
        rh[k] *= _MANIPULATIONS[name]
    qc[treated & (qc == "")] = "manipulated"

    def pick(count: int, mask: np.ndarray) -> np.ndarray:
        idx = np.nonzero(mask & (qc == ""))[0]
        return rng.choice(idx, size=min(count, idx.size), replace=False)

    ge = pick(max(2, round(0.03 * np.sum(kind == 1))), kind == 1)
    rh[ge] = rs[ge] * rng.uniform(1.0, 1.2, size=ge.size)
    rh[ge[:1]] = rs[ge[:1]]
    qc[ge] = "rh_ge_rs"
    no_xy = pick(max(2, round(0.01 * n)), kind != 3)
    qc[no_xy] = "missing_coordinates"
    no_year = pick(max(1, round(0.005 * n)), kind != 3)
    qc[no_year] = "missing_year"
    negative = pick(1, kind == 0)
    rs[negative] = -rs[negative] * 0.1
    qc[negative] = "nonpositive_flux"

    lat = site_lat[site].astype(float)
    lon = site_lon[site].astype(float)
    lat[no_xy] = np.nan
    lon[no_xy[1:]] = np.nan  # the first keeps its longitude: a half-missing pair
    midyear = first + np.where(span == 2, 0.5, 0.0)
    midyear[no_year] = np.nan

    cls = site_cls[site]
    mat = pred["MAT"].values[y_idx, r_iy, r_ix]
    eco = np.array([_ECOSYSTEM[int(c)][0] for c in cls], dtype=object)
    leaf = np.array([_ECOSYSTEM[int(c)][1] for c in cls], dtype=object)
    eco = np.where((cls == 7) & (mat < -5.0), "Tundra", eco)
    biome = np.array(
        [_biome(float(m), int(c)) for m, c in zip(mat, cls, strict=True)], dtype=object
    )
    state = np.where(
        np.isin(cls, (12, 14)),
        "Managed",
        rng.choice(["Natural", "Unmanaged", "Managed"], size=n, p=[0.5, 0.2, 0.3]),
    )
    no_eco = rng.random(n) < 0.01
    eco = np.where(no_eco, None, eco)
    quality = np.where(rng.random(n) < 0.15, "Q01", None)

    record = 1 + np.arange(n)
    srdb = pd.DataFrame(
        {
            "Record_number": record,
            "Study_number": study[site],
            "Quality_flag": quality,
            "Site_name": [f"Demo site {s + 1}" for s in site],
            "Site_ID": [f"DEMO{s + 1:04d}" for s in site],
            "Study_midyear": midyear,
            "YearsOfData": span.astype(float),
            "Latitude": lat,
            "Longitude": lon,
            "Manipulation": manipulation,
            "Biome": biome,
            "Ecosystem_type": eco,
            "Ecosystem_state": state,
            "Leaf_habit": leaf,
            "Rs_annual": np.round(rs, 1),
            "Rh_annual": np.round(rh, 1),
        }
    )
    records = pd.DataFrame(
        {
            "Record_number": record,
            "site": site + 1,
            "lat_index": r_iy,
            "lon_index": r_ix,
            "cell_lat": grid.lat[r_iy],
            "cell_lon": grid.lon[r_ix],
            "first_year": first,
            "n_years": span,
            "igbp_class": cls.astype(int),
            "bin": _bin_of(cls).astype(int),
            "SR_true": true["SR"],
            "HR_true": true["HR"],
            "qc": qc.astype(str),
        }
    )
    return srdb, records
