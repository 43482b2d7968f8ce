"""The embedded synthetic demo world: drivers, land cover and an SRDB-like table with a known truth.

srgpu runs on this world when no data is given, and the tests use it to check that the ensemble
recovers a known answer. :func:`make_demo_world` returns exactly what a user would bring (CF
``xarray.Dataset`` drivers and land cover, an SRDB-format ``pandas.DataFrame``) plus the truth:
the annual predictors, the noise-free SR and HR fields and the global totals.

The world in four steps:

1. **Geography** (fixed, whatever the seed): a regular global grid at ``resolution`` degrees,
   crude continents built from rotated ellipses (about 29 % land), "mountain" blobs that cool
   Greenland, Antarctica, Tibet, the Rockies and the Andes, and a continentality index (the land
   share smoothed over about 12 degrees).
2. **Climate**: a zonal monthly climatology (warm tropics, cold poles, a seasonal cycle of the
   right sign per hemisphere that grows with latitude and continentality; wet tropics, dry
   subtropics, drier interiors), plus seeded year-to-year anomalies (smooth fields drawn on a
   fixed 10 degree grid, so the same seed gives the same anomalies at any resolution). Humidity,
   leaf area, shortwave radiation and soil carbon follow from temperature and precipitation.
3. **Land cover** (fixed): an IGBP class per land cell from the climatology, a secondary class
   that shares the primary's vegetated status, per-class fractions and ``sftlf``.
4. **Sites** (seeded): SRDB-like clusters (many records in temperate North America, Europe and
   East Asia, few in the tropics and shrublands), fluxes from :func:`true_flux` at the site's
   cell and year(s) times lognormal noise, and the rows that exercise the selection (treated
   plots, Rh >= Rs, missing coordinates, missing years, missing fluxes).

Everything is numpy inside; xarray and pandas at the edges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import gaussian_filter

from srgpu.config import FLUXES
from srgpu.data.vegetation import IGBP_TO_BIN
from srgpu.errors import ConfigError, InputError

__all__ = [
    "DEMO_PAR_FRACTION",
    "EARTH_RADIUS_M",
    "FLUX_PREDICTORS",
    "DemoTruth",
    "DemoWorld",
    "make_demo_world",
    "true_flux",
]

EARTH_RADIUS_M = 6_371_000.0
"""Sphere radius used for the cell areas of the truth (m)."""

DEMO_PAR_FRACTION = 0.48
"""PAR = 0.48 x rsds (the default ``par_fraction`` of :class:`srgpu.config.EnsembleConfig`)."""

FLUX_PREDICTORS: dict[str, tuple[str, ...]] = {
    "SR": ("MAT", "Prec", "RH", "RH_GS", "LAI_GS"),
    "HR": ("MAT", "Prec", "RH", "RH_GS", "LAI_GS", "PAR"),
}
"""The predictors each true response reads (subsets of the paper's sets)."""

PREDICTOR_UNITS: dict[str, str] = {
    "MAT": "degC",
    "Prec": "mm yr-1",
    "RH": "%",
    "LAI": "m2 m-2",
    "PAR": "MJ m-2 yr-1",
    "SOC": "kg m-2",
    "Prec_GS": "mm",
    "RH_GS": "%",
    "LAI_GS": "m2 m-2",
    "PAR_GS": "MJ m-2",
}
"""Units of the annual predictors in :attr:`DemoTruth.predictors`."""

FLUX_UNITS = "g C m-2 yr-1"
TOTAL_UNITS = "Pg C yr-1"

IGBP_NAMES: tuple[str, ...] = tuple(
    "water evergreen_needleleaf_forests evergreen_broadleaf_forests deciduous_needleleaf_forests"
    " deciduous_broadleaf_forests mixed_forests closed_shrublands open_shrublands woody_savannas"
    " savannas grasslands permanent_wetlands croplands urban_and_built_up_lands"
    " cropland_natural_vegetation_mosaics permanent_snow_and_ice barren".split()
)
"""IGBP class names by code (0 = water, as in MODIS MCD12C1)."""

SECONDARY_CLASS: dict[int, int] = {
    1: 5, 2: 8, 3: 1, 4: 5, 5: 4, 6: 7, 7: 6, 8: 9, 9: 10, 10: 9, 12: 14, 14: 12,
}  # fmt: skip
"""Secondary IGBP class of a cell, by primary class: always of the same vegetated status, so that
the vegetated area is the same by majority class and by per-class fractions. Classes absent here
(wetland, ice, barren) fill their cells' land alone."""

SECONDARY_SHARE = 0.25
"""Share of a cell's land held by its secondary class."""


# =============================================================================================
# Public API
# =============================================================================================


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


@dataclass(frozen=True)
class DemoWorld:
    """The inputs a user would bring, and the truth behind them."""

    drivers: xr.Dataset
    vegetation: xr.Dataset
    srdb: pd.DataFrame
    truth: DemoTruth


def make_demo_world(
    *,
    seed: int = 0,
    resolution: float = 4.0,
    years: tuple[int, int] = (2001, 2005),
    n_sites: int = 700,
) -> DemoWorld:
    """Build the synthetic world.

    ``resolution``: grid spacing in degrees (must divide 180). ``years``: first and last year of
    the monthly drivers (inclusive). ``n_sites``: number of distinct SRDB sites; each gives one
    or more records. The geography, base climate and land cover do not depend on ``seed``; the
    year-to-year anomalies, the sites and the noise do. Same arguments, same world.
    """
    _check_args(seed=seed, resolution=resolution, years=years, n_sites=n_sites)
    root = np.random.SeedSequence(seed)
    rng_anom, rng_sites = (np.random.default_rng(s) for s in root.spawn(2))

    grid = _Grid.regular(resolution)
    land = _land_fraction(grid)
    is_land = land > 0
    geo = _Geography(grid=grid, land=land, is_land=is_land)
    clim = _climatology(geo)
    cover = _land_cover(geo, clim)
    monthly = _monthly_drivers(geo, clim, years=years, rng=rng_anom)

    drivers = _drivers_dataset(grid, monthly)
    vegetation = _vegetation_dataset(grid, land, cover)
    pred = _annual_predictors(drivers, par_fraction=DEMO_PAR_FRACTION)
    truth_fields = {flux: true_flux(flux, pred) for flux in FLUXES}
    srdb, records = _srdb_table(geo, cover, pred, truth_fields, n_sites=n_sites, rng=rng_sites)
    truth = _truth(geo, cover, pred, truth_fields, records)
    return DemoWorld(drivers=drivers, vegetation=vegetation, srdb=srdb, truth=truth)


def true_flux(flux: str, predictors: Mapping[str, ArrayLike]) -> np.ndarray:
    """The known response of the demo world (g C m-2 yr-1), a function of predictor values.

    ``flux``: ``"SR"`` or ``"HR"``. ``predictors``: anything indexable by predictor name (a
    dict of arrays, an ``xarray.Dataset``, a ``pandas.DataFrame``) holding at least
    :data:`FLUX_PREDICTORS` ``[flux]`` in the units of :data:`PREDICTOR_UNITS` (MAT in degC,
    Prec in mm yr-1, RH and RH_GS in %, LAI_GS in m2 m-2, PAR in MJ m-2 yr-1). Arrays broadcast;
    NaN in, NaN out. Both responses increase with every predictor they read::

        SR = 700 x 1.6 ** ((MAT - 15) / 10) x fP(Prec; 700) x fM x fL(LAI_GS; 0.40)
        HR = 400 x 1.8 ** ((MAT - 15) / 10) x fP(Prec; 600) x fM x fL(LAI_GS; 0.30)
                 x (PAR / 2500) ** 0.2
        fP(P; s) = (1 - exp(-P / s)) / (1 - exp(-1000 / s))          (saturating, 1 at 1000 mm)
        fM = (0.75 + 0.5 m) / 1.075,  m = (RH + RH_GS) / 200          (mild, 1 at m = 0.65)
        fL(L; a) = (1 - a + a (1 - exp(-L / 2))) / (1 - a + a (1 - exp(-1)))   (1 at L = 2)
    """
    if flux not in FLUX_PREDICTORS:
        raise ConfigError(
            f"true_flux: unknown flux {flux!r}; expected one of {tuple(FLUX_PREDICTORS)}"
        )
    values = {}
    for name in FLUX_PREDICTORS[flux]:
        try:
            values[name] = np.asarray(predictors[name], dtype=float)
        except KeyError:
            raise InputError(
                "predictor missing for the demo's true response",
                field=name,
                expected=f"all of {FLUX_PREDICTORS[flux]} for {flux}",
            ) from None
    mat, prec = values["MAT"], np.maximum(values["Prec"], 0.0)
    m = (values["RH"] + values["RH_GS"]) / 200.0
    f_m = (0.75 + 0.5 * m) / 1.075
    lai = np.maximum(values["LAI_GS"], 0.0)
    if flux == "SR":
        return 700.0 * 1.6 ** ((mat - 15.0) / 10.0) * _f_prec(prec, 700.0) * f_m * _f_lai(lai, 0.40)
    par = np.maximum(values["PAR"], 0.0)
    return (
        400.0
        * 1.8 ** ((mat - 15.0) / 10.0)
        * _f_prec(prec, 600.0)
        * f_m
        * _f_lai(lai, 0.30)
        * (par / 2500.0) ** 0.2
    )


def _f_prec(prec: np.ndarray, scale: float) -> np.ndarray:
    return (1.0 - np.exp(-prec / scale)) / (1.0 - np.exp(-1000.0 / scale))


def _f_lai(lai: np.ndarray, weight: float) -> np.ndarray:
    ref = 1.0 - weight + weight * (1.0 - np.exp(-1.0))
    return (1.0 - weight + weight * (1.0 - np.exp(-lai / 2.0))) / ref


def _check_args(*, seed: int, resolution: float, years: tuple[int, int], n_sites: int) -> None:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"demo seed must be a non-negative integer, got {seed!r}")
    ratio = 180.0 / resolution if resolution > 0 else 0.0
    if resolution <= 0 or abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(f"demo resolution must divide 180 degrees, got {resolution!r}")
    if len(years) != 2 or int(years[0]) > int(years[1]):
        raise ConfigError(f"demo years must be (first, last) with first <= last, got {years!r}")
    if n_sites < 1:
        raise ConfigError(f"demo n_sites must be >= 1, got {n_sites}")


# =============================================================================================
# Geography: grid, continents, mountains, continentality
# =============================================================================================


@dataclass(frozen=True)
class _Grid:
    lat: np.ndarray  # cell centres, ascending
    lon: np.ndarray
    lat_bnds: np.ndarray  # (n, 2)
    lon_bnds: np.ndarray
    resolution: float

    @classmethod
    def regular(cls, resolution: float) -> _Grid:
        ny, nx = round(180.0 / resolution), round(360.0 / resolution)
        lat_edges = np.linspace(-90.0, 90.0, ny + 1)
        lon_edges = np.linspace(-180.0, 180.0, nx + 1)
        return cls(
            lat=0.5 * (lat_edges[:-1] + lat_edges[1:]),
            lon=0.5 * (lon_edges[:-1] + lon_edges[1:]),
            lat_bnds=np.stack([lat_edges[:-1], lat_edges[1:]], axis=1),
            lon_bnds=np.stack([lon_edges[:-1], lon_edges[1:]], axis=1),
            resolution=float(resolution),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat.size, self.lon.size

    def cell_area(self) -> np.ndarray:
        """Cell areas on a sphere of radius :data:`EARTH_RADIUS_M` (m2), shape (lat, lon)."""
        dsin = np.diff(np.sin(np.deg2rad(self.lat_bnds)), axis=1)[:, 0]
        dlon = np.deg2rad(np.diff(self.lon_bnds, axis=1)[:, 0])
        return EARTH_RADIUS_M**2 * dsin[:, None] * dlon[None, :]


# (lon, lat, semi-axis in lon, semi-axis in lat, rotation in degrees): crude continents.
_CONTINENTS: tuple[tuple[float, float, float, float, float], ...] = (
    (-100.0, 50.0, 34.0, 18.0, -8.0),  # North America
    (-95.0, 68.0, 26.0, 5.0, 0.0),  # Arctic Canada
    (-152.0, 64.0, 13.0, 6.0, 0.0),  # Alaska
    (-100.0, 25.0, 10.0, 9.0, -35.0),  # Mexico
    (-86.0, 12.0, 4.0, 7.0, -45.0),  # Central America
    (-42.0, 73.0, 12.0, 9.0, 0.0),  # Greenland
    (-60.0, -8.0, 19.0, 15.0, 0.0),  # South America, north
    (-66.0, -30.0, 8.0, 20.0, 8.0),  # South America, south
    (12.0, 50.0, 22.0, 9.0, 15.0),  # Europe
    (20.0, 64.0, 7.0, 8.0, 30.0),  # Scandinavia
    (-3.0, 40.0, 6.0, 4.0, 0.0),  # Iberia
    (-2.0, 54.0, 3.0, 4.0, 0.0),  # Britain
    (92.0, 54.0, 58.0, 16.0, 0.0),  # Siberia and Central Asia
    (100.0, 70.0, 45.0, 5.0, 0.0),  # Arctic Siberia
    (108.0, 33.0, 20.0, 12.0, 0.0),  # China
    (78.0, 21.0, 9.0, 11.0, 0.0),  # India
    (47.0, 24.0, 10.0, 9.0, -30.0),  # Arabia
    (102.0, 15.0, 7.0, 9.0, 0.0),  # Indochina
    (138.0, 37.0, 3.0, 6.0, 35.0),  # Japan
    (113.0, -1.0, 13.0, 4.0, -10.0),  # Indonesia
    (140.0, -5.0, 8.0, 4.0, 0.0),  # New Guinea
    (14.0, 16.0, 31.0, 18.0, 0.0),  # Africa, north
    (24.0, -10.0, 15.0, 24.0, 0.0),  # Africa, south
    (47.0, -19.0, 3.0, 7.0, 15.0),  # Madagascar
    (134.0, -25.0, 19.0, 12.0, 0.0),  # Australia
    (172.0, -42.0, 3.0, 6.0, 35.0),  # New Zealand
)
_ANTARCTIC_EDGE = -66.0  # land south of this latitude

# (lon, lat, semi-axis lon, semi-axis lat, height in km): Gaussian "mountains" (lapse 6.5 K/km).
_MOUNTAINS: tuple[tuple[float, float, float, float, float], ...] = (
    (88.0, 33.0, 12.0, 5.0, 4.0),  # Tibet
    (-112.0, 44.0, 6.0, 12.0, 1.6),  # Rockies
    (-69.0, -20.0, 3.0, 16.0, 3.0),  # Andes
    (-42.0, 73.0, 9.0, 7.0, 2.2),  # Greenland
    (0.0, -90.0, 720.0, 22.0, 2.6),  # Antarctica (wide in lon: all longitudes)
    (37.0, 2.0, 6.0, 9.0, 1.2),  # East African highlands
)

# Rain blobs (lon, lat, semi-axis lon, semi-axis lat, log factor): east coasts, monsoons.
_RAIN: tuple[tuple[float, float, float, float, float], ...] = (
    (-82.0, 36.0, 14.0, 10.0, 0.7),  # eastern North America
    (115.0, 30.0, 14.0, 10.0, 0.9),  # East Asian monsoon
    (138.0, 37.0, 6.0, 6.0, 0.6),  # Japan
    (80.0, 22.0, 10.0, 8.0, 0.5),  # Indian monsoon
    (0.0, 50.0, 14.0, 8.0, 0.3),  # western Europe
    (-47.0, -22.0, 8.0, 8.0, 0.5),  # southeast Brazil
    (-125.0, 50.0, 5.0, 8.0, 0.5),  # Pacific Northwest
    (150.0, -30.0, 5.0, 8.0, 0.4),  # eastern Australia
)

# Wetland blobs (lon, lat, semi-axes): Hudson Bay lowlands, West Siberian lowland.
_WETLANDS: tuple[tuple[float, float, float, float], ...] = (
    (-88.0, 55.0, 6.0, 3.5),
    (75.0, 61.0, 9.0, 4.0),
)

# Crop belts (lon, lat, semi-axes): US Midwest, Europe, North China plain, India, Pampas.
_CROP_BELTS: tuple[tuple[float, float, float, float], ...] = (
    (-93.0, 42.0, 8.0, 4.0),
    (14.0, 50.0, 9.0, 4.0),
    (116.0, 35.0, 6.0, 4.0),
    (79.0, 24.0, 7.0, 6.0),
    (-62.0, -34.0, 6.0, 4.0),
    (35.0, 50.0, 9.0, 3.0),
)


def _ellipse_distance(
    lon: np.ndarray,
    lat: np.ndarray,
    c_lon: float,
    c_lat: float,
    a: float,
    b: float,
    rot: float = 0.0,
) -> np.ndarray:
    """Normalised distance from an ellipse's centre (1 on its edge), longitudes wrapped."""
    dx = (lon - c_lon + 180.0) % 360.0 - 180.0
    dy = lat - c_lat
    t = np.deg2rad(rot)
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    return np.sqrt((u / a) ** 2 + (v / b) ** 2)


def _in_blobs(lon: np.ndarray, lat: np.ndarray, blobs: tuple[tuple[float, ...], ...]) -> np.ndarray:
    inside = np.zeros(np.broadcast(lon, lat).shape, dtype=bool)
    for c_lon, c_lat, a, b, *rot in blobs:
        inside |= _ellipse_distance(lon, lat, c_lon, c_lat, a, b, rot[0] if rot else 0.0) < 1.0
    return inside


def _land_fraction(grid: _Grid) -> np.ndarray:
    """Land share of each cell (0-1) from sub-cell samples of the continent ellipses."""
    sub = 4 if grid.resolution > 1.0 else 2
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    lat_s = (grid.lat[:, None] + offsets[None, :] * grid.resolution).ravel()
    lon_s = (grid.lon[:, None] + offsets[None, :] * grid.resolution).ravel()
    lon2, lat2 = np.meshgrid(lon_s, lat_s)
    inside = _in_blobs(lon2, lat2, _CONTINENTS) | (lat2 < _ANTARCTIC_EDGE)
    ny, nx = grid.shape
    return inside.reshape(ny, sub, nx, sub).mean(axis=(1, 3))


@dataclass(frozen=True)
class _Geography:
    grid: _Grid
    land: np.ndarray  # land fraction 0-1 (lat, lon)
    is_land: np.ndarray  # land > 0

    def lonlat(self) -> tuple[np.ndarray, np.ndarray]:
        return np.meshgrid(self.grid.lon, self.grid.lat)

    def height_km(self) -> np.ndarray:
        lon, lat = self.lonlat()
        h = np.zeros(self.grid.shape)
        for c_lon, c_lat, a, b, top in _MOUNTAINS:
            h += top * np.exp(-(_ellipse_distance(lon, lat, c_lon, c_lat, a, b) ** 2))
        return h

    def continentality(self) -> np.ndarray:
        """Land share smoothed over about 12 degrees (0 open ocean .. 1 deep interior)."""
        sigma = 12.0 / self.grid.resolution
        return np.clip(gaussian_filter(self.land, sigma=sigma, mode=("nearest", "wrap")), 0.0, 1.0)


# =============================================================================================
# Climate
# =============================================================================================

_NOLEAP_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
_MID_DOY_NOLEAP = np.cumsum(_NOLEAP_DAYS) - 0.5 * _NOLEAP_DAYS  # day of year of mid-month


@dataclass(frozen=True)
class _Climatology:
    """Base monthly climatology (12, lat, lon) in degC and mm per day, plus static fields."""

    tas_c: np.ndarray
    pr_mm_day: np.ndarray
    mat: np.ndarray  # (lat, lon) degC
    prec: np.ndarray  # (lat, lon) mm/yr
    soc: np.ndarray  # kg m-2


def _seasonal_phase(doy: np.ndarray) -> np.ndarray:
    """-cos of the annual cycle: -1 in mid-January, +1 in mid-July."""
    return -np.cos(2.0 * np.pi * (doy - 15.0) / 365.0)


def _climatology(geo: _Geography) -> _Climatology:
    lon, lat = geo.lonlat()
    coslat = np.cos(np.deg2rad(lat))
    sinlat = np.sin(np.deg2rad(lat))
    cont = geo.continentality()
    mat = -22.0 + 49.0 * coslat**1.1 - 6.5 * geo.height_km()
    amp = (1.0 + 17.0 * np.abs(sinlat) ** 1.2 * (0.5 + 0.9 * cont)) * np.tanh(lat / 5.0)
    phase = _seasonal_phase(_MID_DOY_NOLEAP)[:, None, None]
    tas_c = mat[None] + amp[None] * phase

    alat = np.abs(lat)
    zonal = (
        300.0
        + 2300.0 * np.exp(-((lat / 12.0) ** 2))
        + 650.0 * np.exp(-(((alat - 48.0) / 14.0) ** 2))
        - 250.0 * np.exp(-(((alat - 25.0) / 8.0) ** 2))
    )
    inland = cont * (1.0 - np.exp(-((lat / 15.0) ** 2)))
    rain = sum(
        k * np.exp(-(_ellipse_distance(lon, lat, c_lon, c_lat, a, b) ** 2))
        for c_lon, c_lat, a, b, k in _RAIN
    )
    prec = np.maximum(zonal * (1.35 - 0.85 * inland) * np.exp(rain), 20.0)
    # Monsoon-like seasonality: strong in the outer tropics, wet in local summer.
    a = 0.9 * np.exp(-(((alat - 12.0) / 10.0) ** 2)) + 0.25 * (alat > 30.0)
    shape = 1.0 + (a * np.sign(lat))[None] * phase
    weights = _NOLEAP_DAYS[:, None, None] * shape
    monthly_mm = prec[None] * weights / weights.sum(axis=0, keepdims=True)
    pr_mm_day = monthly_mm / _NOLEAP_DAYS[:, None, None]

    cold = 1.0 / (1.0 + np.exp((mat - 2.0) / 6.0))
    soc = 2.0 + 16.0 * cold * prec / (prec + 500.0) + 3.0 * prec / (prec + 1500.0)
    return _Climatology(tas_c=tas_c, pr_mm_day=pr_mm_day, mat=mat, prec=prec, soc=soc)


def _smooth_anomaly(rng: np.random.Generator, n: int, grid: _Grid) -> np.ndarray:
    """``n`` smooth unit-variance fields: noise on a fixed 10 degree grid, bilinear to ``grid``."""
    c_lat = np.arange(-85.0, 86.0, 10.0)
    c_lon = np.arange(-175.0, 176.0, 10.0)
    noise = rng.standard_normal((n, c_lat.size, c_lon.size))
    noise = gaussian_filter(noise, sigma=(0, 0.8, 0.8), mode=("nearest", "nearest", "wrap"))
    noise /= noise.std(axis=(1, 2), keepdims=True)
    lon_pad = np.concatenate([[c_lon[-1] - 360.0], c_lon, [c_lon[0] + 360.0]])
    noise = np.concatenate([noise[:, :, -1:], noise, noise[:, :, :1]], axis=2)
    lat_q = np.clip(grid.lat, c_lat[0], c_lat[-1])
    lon2, lat2 = np.meshgrid(grid.lon, lat_q)
    pts = np.stack([lat2.ravel(), lon2.ravel()], axis=1)
    out = np.empty((n, *grid.shape))
    for i in range(n):
        interp = RegularGridInterpolator((c_lat, lon_pad), noise[i])
        out[i] = interp(pts).reshape(grid.shape)
    return out


@dataclass(frozen=True)
class _Monthly:
    time_start: np.ndarray  # datetime64[s], first instant of each month
    time_end: np.ndarray
    tas: np.ndarray  # K (time, lat, lon)
    pr: np.ndarray  # kg m-2 s-1
    hurs: np.ndarray  # %
    lai: np.ndarray  # 1
    rsds: np.ndarray  # W m-2
    soc: np.ndarray  # kg m-2 (lat, lon)


def _insolation(lat: np.ndarray, doy: np.ndarray) -> np.ndarray:
    """Daily-mean top-of-atmosphere insolation (W m-2), shape (doy, lat)."""
    phi = np.deg2rad(lat)[None, :]
    delta = np.deg2rad(23.44) * np.sin(2.0 * np.pi * (doy[:, None] - 80.0) / 365.0)
    h0 = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    q = (
        1361.0
        / np.pi
        * (h0 * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(h0))
    )
    return np.maximum(q, 0.0)


def _monthly_drivers(
    geo: _Geography, clim: _Climatology, *, years: tuple[int, int], rng: np.random.Generator
) -> _Monthly:
    first, last = int(years[0]), int(years[1])
    n_years = last - first + 1
    starts = np.array(
        [
            np.datetime64(f"{y:04d}-{m:02d}-01", "s")
            for y in range(first, last + 1)
            for m in range(1, 13)
        ]
    )
    ends = np.concatenate([starts[1:], [np.datetime64(f"{last + 1:04d}-01-01", "s")]])
    days = ((ends - starts) / np.timedelta64(1, "D")).astype(float)
    year_start = np.repeat(starts[::12], 12)
    mid_doy = (starts - year_start) / np.timedelta64(1, "D") + 0.5 * days

    anomalies = _smooth_anomaly(rng, 2 * n_years, geo.grid)
    d_tas = 0.6 * anomalies[:n_years] + 0.15 * rng.standard_normal((n_years, 1, 1))
    d_tas += 0.03 * (np.arange(n_years) - 0.5 * (n_years - 1))[:, None, None]
    d_pr = np.exp(0.12 * anomalies[n_years:] - 0.5 * 0.12**2)

    month = np.tile(np.arange(12), n_years)
    year_idx = np.repeat(np.arange(n_years), 12)
    f32 = np.float32  # the monthly cubes are large at fine resolution: build them in float32
    tas_c = clim.tas_c.astype(f32)[month] + d_tas.astype(f32)[year_idx]
    pr_mm_day = clim.pr_mm_day.astype(f32)[month] * d_pr.astype(f32)[year_idx]

    # Relative humidity: wetter climates and cold ones are more humid; wet months more so.
    prec_ann = clim.prec[None]
    rh_base = (
        35.0
        + 50.0 * prec_ann / (prec_ann + 700.0)
        + 10.0 / (1.0 + np.exp((clim.mat[None] + 5.0) / 8.0))
    ).astype(f32)
    ratio = pr_mm_day / np.maximum(clim.pr_mm_day.mean(axis=0, keepdims=True), 1e-6).astype(f32)
    hurs = np.clip(rh_base + np.clip(12.0 * (ratio - 1.0), -15.0, 15.0), 5.0, 100.0)

    # Leaf area: a climatic maximum, leaf-on above about 5 degC, dropped in dry months.
    warmest = clim.tas_c.max(axis=0)
    lai_max = 6.5 * prec_ann / (prec_ann + 800.0) / (1.0 + np.exp(-(warmest[None] - 8.0) / 3.0))
    lai_max = lai_max.astype(f32)
    leaf_on = 1.0 / (1.0 + np.exp(-(tas_c - 5.0) / 2.5))
    water = np.sqrt(np.minimum(1.0, pr_mm_day * 30.0 / 60.0))
    lai = lai_max * (0.1 + 0.9 * leaf_on * water)

    # Shortwave: insolation x a transmissivity that falls with monthly rain (clouds).
    toa = _insolation(geo.grid.lat, mid_doy).astype(f32)[:, :, None]
    cloud = pr_mm_day * 30.0 / (pr_mm_day * 30.0 + 80.0)
    rsds = toa * (0.75 - 0.35 * cloud)

    ocean = ~geo.is_land
    out = {}
    for name, arr in (
        ("tas", tas_c + 273.15),
        ("pr", pr_mm_day / 86400.0),
        ("hurs", hurs),
        ("lai", lai),
        ("rsds", rsds),
    ):
        arr = np.asarray(arr, dtype=np.float32)
        arr[:, ocean] = np.nan
        out[name] = arr
    soc = clim.soc.astype(np.float32)
    soc[ocean] = np.nan
    return _Monthly(time_start=starts, time_end=ends, soc=soc, **out)


# =============================================================================================
# Land cover
# =============================================================================================


@dataclass(frozen=True)
class _Cover:
    primary: np.ndarray  # IGBP code of the majority land class, 0 over ocean (lat, lon)
    secondary: np.ndarray  # IGBP code of the secondary class (== primary where none)
    fraction: np.ndarray  # (16, lat, lon): share of the whole cell per class 1..16
    majority: np.ndarray  # majority class with water counted (0 = water)


def _land_cover(geo: _Geography, clim: _Climatology) -> _Cover:
    lon, lat = geo.lonlat()
    mat, prec = clim.mat, clim.prec
    warmest = clim.tas_c.max(axis=0)
    dry_months = (clim.pr_mm_day * _NOLEAP_DAYS[:, None, None] < 60.0).sum(axis=0)
    crops = _in_blobs(lon, lat, _CROP_BELTS)
    wet = _in_blobs(lon, lat, _WETLANDS)

    # warm: MAT >= 18 degC
    warm = np.where(prec >= 600.0, np.where(crops, 12, 9), 10)
    warm = np.where(prec >= 1000.0, 8, warm)
    warm = np.where((prec >= 1700.0) & (dry_months <= 3), 2, warm)
    # temperate: 3 <= MAT < 18
    temp = np.where(prec >= 500.0, np.where(crops, 12, 14), 10)
    temp = np.where(prec >= 650.0, np.where(crops, 12, np.where(mat < 8.0, 5, 4)), temp)
    # boreal: MAT < 3 with a warmest month >= 10 degC (the tree line); tundra shrubs beyond
    boreal = np.where((lon > 100.0) & (lat > 50.0), 3, 1)
    boreal = np.where((mat > 0.0) & (prec > 600.0), 5, boreal)
    boreal = np.where(prec < 450.0, 10, boreal)
    boreal = np.where(warmest < 10.0, 7, boreal)
    cls = np.where(mat >= 18.0, warm, np.where(mat >= 3.0, temp, boreal))
    # dry land: shrubs, then barren; wetland lowlands; ice where no month is warm enough
    cls = np.where(prec < 300.0, np.where((mat >= 15.0) & (prec >= 220.0), 6, 7), cls)
    cls = np.where(prec < 130.0, 16, cls)
    cls = np.where(wet & (mat < 5.0) & (prec >= 300.0), 11, cls)
    cls = np.where((lat < -60.0) | (warmest <= 5.0), 15, cls)
    cls = np.where(geo.is_land, cls, 0).astype(np.int16)

    lut = np.arange(17, dtype=np.int16)
    for code, second in SECONDARY_CLASS.items():
        lut[code] = second
    secondary = lut[cls]
    has_second = geo.is_land & (secondary != cls)
    frac = np.zeros((16, *cls.shape))
    iy, ix = np.nonzero(geo.is_land)
    main_share = np.where(has_second[iy, ix], 1.0 - SECONDARY_SHARE, 1.0)
    frac[cls[iy, ix] - 1, iy, ix] += main_share * geo.land[iy, ix]
    sy, sx = np.nonzero(has_second)
    frac[secondary[sy, sx] - 1, sy, sx] += SECONDARY_SHARE * geo.land[sy, sx]
    main = frac.max(axis=0)
    majority = np.where(geo.is_land & (main > 1.0 - geo.land), cls, 0).astype(np.int16)
    return _Cover(primary=cls, secondary=secondary, fraction=frac, majority=majority)


def _bin_of(codes: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, dtype=np.int16)
    for code, b in IGBP_TO_BIN.items():
        lut[code] = b
    return lut[np.asarray(codes, dtype=np.int64)]


# =============================================================================================
# CF datasets
# =============================================================================================


def _cf(standard_name: str | None, long_name: str, units: str, **extra: Any) -> dict[str, Any]:
    attrs = {"standard_name": standard_name, "long_name": long_name, "units": units, **extra}
    return {k: v for k, v in attrs.items() if v is not None}


def _grid_coords(grid: _Grid) -> tuple[dict[str, Any], dict[str, Any]]:
    """CF lat/lon coordinates (ascending cell centres) and their bounds variables."""
    coords = {
        "lat": (
            "lat",
            grid.lat,
            _cf("latitude", "latitude", "degrees_north", axis="Y", bounds="lat_bnds"),
        ),
        "lon": (
            "lon",
            grid.lon,
            _cf("longitude", "longitude", "degrees_east", axis="X", bounds="lon_bnds"),
        ),
    }
    bounds = {
        "lat_bnds": (("lat", "bnds"), grid.lat_bnds, {"units": "degrees_north"}),
        "lon_bnds": (("lon", "bnds"), grid.lon_bnds, {"units": "degrees_east"}),
    }
    return coords, bounds


def _global_attrs(title: str) -> dict[str, str]:
    return {
        "Conventions": "CF-1.8",
        "title": title,
        "source": "srgpu.data.demo: synthetic demo world (no real data)",
        "comment": "synthetic: crude continents and a smooth analytic climate; see docs/demo.md",
    }


def _drivers_dataset(grid: _Grid, m: _Monthly) -> xr.Dataset:
    """Monthly CF drivers: tas, pr, hurs, lai, rsds on (time, lat, lon); static soc."""
    coords, bounds = _grid_coords(grid)
    mid = m.time_start + (m.time_end - m.time_start) / 2
    since = f"days since {str(m.time_start[0])[:10]}"
    encoding = {"units": since, "calendar": "standard", "dtype": "float64"}
    time = xr.Variable(
        "time",
        mid.astype("datetime64[ns]"),
        _cf("time", "time", None, axis="T", bounds="time_bnds"),  # type: ignore[arg-type]
        encoding=encoding,
    )
    bnds = np.stack([m.time_start, m.time_end], axis=1).astype("datetime64[ns]")
    tll = ("time", "lat", "lon")
    cm = {"cell_methods": "area: mean time: mean"}
    data_vars = {
        **bounds,
        "time_bnds": xr.Variable(("time", "bnds"), bnds, encoding=dict(encoding)),
        "tas": (tll, m.tas, _cf("air_temperature", "Near-surface air temperature", "K", **cm)),
        "pr": (tll, m.pr, _cf("precipitation_flux", "Precipitation", "kg m-2 s-1", **cm)),
        "hurs": (
            tll,
            m.hurs,
            _cf("relative_humidity", "Near-surface relative humidity", "%", **cm),
        ),
        "lai": (tll, m.lai, _cf("leaf_area_index", "Leaf area index", "1", **cm)),
        "rsds": (
            tll,
            m.rsds,
            _cf(
                "surface_downwelling_shortwave_flux_in_air",
                "Surface downwelling shortwave radiation",
                "W m-2",
                **cm,
            ),
        ),
        "soc": (
            ("lat", "lon"),
            m.soc,
            _cf(
                "soil_mass_content_of_carbon",
                "Soil organic carbon content, 0-30 cm",
                "kg m-2",
                cell_methods="area: mean",
                comment="static; organic carbon in the top 0.3 m of soil",
            ),
        ),
    }
    attrs = _global_attrs("srgpu demo world: monthly drivers")
    return xr.Dataset(data_vars, coords={**coords, "time": time}, attrs=attrs)


def _vegetation_dataset(grid: _Grid, land: np.ndarray, cover: _Cover) -> xr.Dataset:
    """Land cover laid out like the MODIS MCD12C1 file: majority codes, fractions, sftlf."""
    coords, bounds = _grid_coords(grid)
    codes = np.arange(17, dtype=np.int16)
    flags = {"flag_values": codes, "flag_meanings": " ".join(IGBP_NAMES)}
    coords["class"] = (
        "class",
        codes[1:],
        _cf(None, "IGBP land cover class code", "1", flag_values=codes[1:],
            flag_meanings=" ".join(IGBP_NAMES[1:])),
    )  # fmt: skip
    ll = ("lat", "lon")
    data_vars = {
        **bounds,
        "land_cover": (
            ll,
            cover.majority,
            _cf(
                None, "IGBP class with the largest share of the cell (water included)", "1", **flags
            ),
        ),
        "land_cover_on_land": (
            ll,
            cover.primary,
            _cf(
                None,
                "IGBP class with the largest share of the cell's land (0: no land)",
                "1",
                **flags,
            ),
        ),
        "land_cover_fraction": (
            ("class", "lat", "lon"),
            cover.fraction.astype(np.float32),
            _cf(
                "area_fraction",
                "share of the cell's area in each IGBP land class",
                "1",
                cell_methods="area: sum",
                comment="water share = 1 - sum over classes = 1 - sftlf / 100",
            ),
        ),
        "sftlf": (
            ll,
            (100.0 * land).astype(np.float32),
            _cf("land_area_fraction", "land area fraction", "%"),
        ),
    }
    attrs = _global_attrs("srgpu demo world: IGBP land cover")
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


# =============================================================================================
# Annual predictors (the rules the pipeline's predictors must agree with)
# =============================================================================================


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


# =============================================================================================
# SRDB-like table
# =============================================================================================

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


# =============================================================================================
# Truth
# =============================================================================================


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
        flux: np.einsum("yij,ij->y", np.nan_to_num(f), weight) / 1e15 for flux, f in fields.items()
    }
    per_year["AR"] = per_year["SR"] - per_year["HR"]
    totals = xr.Dataset(
        {k: ("year", v, {"units": TOTAL_UNITS}) for k, v in per_year.items()},
        coords={"year": pred["year"]},
        attrs={
            "domain": "land cells whose majority land class is in vegetation bins 1-5",
            "weights": "cell area (sphere R = 6371 km) x land fraction",
        },
    )
    return DemoTruth(
        predictors=pred,
        sr=da["SR"],
        hr=da["HR"],
        cell_area=xr.DataArray(
            area, dims=("lat", "lon"), coords=coords, name="cell_area", attrs={"units": "m2"}
        ),
        land_fraction=xr.DataArray(
            geo.land, dims=("lat", "lon"), coords=coords, name="land_fraction", attrs={"units": "1"}
        ),
        vegetated=xr.DataArray(vegetated, dims=("lat", "lon"), coords=coords, name="vegetated"),
        totals=totals,
        mean_totals={k: float(np.mean(v)) for k, v in per_year.items()},
        records=records,
    )
