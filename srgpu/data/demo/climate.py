"""Climate of the demo world: a zonal monthly climatology plus seeded year-to-year anomalies,
and the monthly drivers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import RegularGridInterpolator
from scipy.ndimage import gaussian_filter

from srgpu.data.demo.geography import _RAIN, _ellipse_distance, _Geography, _Grid

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
