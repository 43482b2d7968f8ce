"""Synthetic ensemble stores and CMOR-like model files with known answers (used by the other
``test_compare_*`` modules), and tests of the fixtures themselves."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from srgpu.analysis.compare.models import spherical_cell_area

YEARS = (2000, 2001, 2002)
EPS = np.array([-0.05, -0.02, 0.02, 0.05])  # replicate offsets (mean 0)
SD_FRACTION = 0.08  # F_sd_map = 0.08 F
SECONDS_NOLEAP_YEAR = 365 * 86400.0


def coarse_grid() -> tuple[np.ndarray, np.ndarray]:
    """The store's 10 x 10 degree grid (centres)."""
    return np.arange(-85.0, 90.0, 10.0), np.arange(-175.0, 180.0, 10.0)


def make_store_dataset(*, seed: int = 0, n_sites: int = 30) -> xr.Dataset:
    """A tiny ensemble store following docs/store.md with known fields."""
    rng = np.random.default_rng(seed)
    lat, lon = coarse_grid()
    nlat, nlon, nyear, nrep = lat.size, lon.size, len(YEARS), EPS.size
    domain = (rng.uniform(size=(nlat, nlon)) < 0.45) & (np.abs(lat)[:, None] < 80)
    land = np.where(domain, rng.uniform(0.5, 1.0, (nlat, nlon)), 0.0)
    area = spherical_cell_area(lat, lon)
    base = 300.0 + 900.0 * np.cos(np.radians(lat))[:, None] + rng.uniform(0, 200, (nlat, nlon))
    year_factor = np.array([0.97, 1.0, 1.03])[:, None, None]
    fluxes = {"SR": base[None] * year_factor}
    fluxes["HR"] = 0.6 * fluxes["SR"]
    fluxes["AR"] = fluxes["SR"] - fluxes["HR"]
    ilat, ilon = np.nonzero(domain)
    ds = xr.Dataset(
        coords={
            "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
            "year": ("year", np.array(YEARS)),
            "replicate": ("replicate", np.arange(nrep)),
            "cell": ("cell", np.arange(ilat.size)),
            "bin": ("bin", np.arange(1, 6)),
        }
    )
    ds["lat_bnds"] = (("lat", "bnds"), np.stack([lat - 5, lat + 5], axis=1))
    ds["lon_bnds"] = (("lon", "bnds"), np.stack([lon - 5, lon + 5], axis=1))
    ds["cell_ilat"] = ("cell", ilat)
    ds["cell_ilon"] = ("cell", ilon)
    ds["cell_area"] = (("lat", "lon"), area, {"units": "m2"})
    ds["land_fraction"] = (("lat", "lon"), land, {"units": "1"})
    veg = np.where(domain, rng.integers(1, 6, (nlat, nlon)), 0)
    ds["veg_bin"] = (("lat", "lon"), veg)
    ds["domain"] = (("lat", "lon"), domain)
    weights = area * land
    for flux, cube in fluxes.items():
        cube = np.where(domain[None], cube, np.nan)
        tmean = cube.mean(axis=0)
        ds[f"{flux}_mean"] = (("year", "lat", "lon"), cube, {"units": "g C m-2 yr-1"})
        ds[f"{flux}_sd"] = (("year", "lat", "lon"), SD_FRACTION * cube, {"units": "g C m-2 yr-1"})
        ds[flux] = (
            ("lat", "lon"),
            tmean,
            {"units": "g C m-2 yr-1", "ancillary_variables": f"{flux}_sd_map"},
        )
        ds[f"{flux}_sd_map"] = (("lat", "lon"), SD_FRACTION * tmean, {"units": "g C m-2 yr-1"})
        rep_map = (1 + EPS)[:, None] * tmean[ilat, ilon][None, :]
        ds[f"{flux}_replicate_map"] = (("replicate", "cell"), rep_map.astype("float32"))
        year_tot = np.nansum(cube * weights[None], axis=(1, 2)) * 1e-15
        ds[f"{flux}_replicate_total"] = (
            ("replicate", "year"),
            (1 + EPS)[:, None] * year_tot[None, :],
            {"units": "Pg C yr-1"},
        )
    ds["AR_SR_ratio"] = ds["AR"] / ds["SR"]
    # sites: on domain cells, observed = the ensemble value of that cell-year (known answer)
    pick = rng.integers(0, ilat.size, n_sites)
    iyear = rng.integers(0, nyear, n_sites)
    flux_of = np.where(np.arange(n_sites) < 2 * n_sites // 3, "SR", "HR")
    values = np.array(
        [fluxes[f][iy, ilat[p], ilon[p]] for f, iy, p in zip(flux_of, iyear, pick, strict=True)]
    )
    ds["site_flux"] = ("site", flux_of.astype("U2"))
    ds["site_lat"] = ("site", lat[ilat[pick]])
    ds["site_lon"] = ("site", lon[ilon[pick]])
    ds["site_year"] = ("site", np.array(YEARS)[iyear])
    ds["site_value"] = ("site", values)
    ds["site_ilat"] = ("site", ilat[pick])
    ds["site_ilon"] = ("site", ilon[pick])
    ds["site_iyear"] = ("site", iyear)
    ds.attrs = {"Conventions": "CF-1.8", "config_hash": "test"}
    return ds


def write_store(path: Path, **kwargs) -> Path:
    """Write :func:`make_store_dataset` as Zarr (v3) at ``path``."""
    with warnings.catch_warnings():  # zarr: no v3 spec yet for fixed-length strings
        warnings.simplefilter("ignore")
        make_store_dataset(**kwargs).to_zarr(path, mode="w", consolidated=False)
    return path


def fine_grid(factor: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A model grid nesting ``factor`` x ``factor`` cells in each store cell, lon in 0..360."""
    step = 10.0 / factor
    lat = np.arange(-90 + step / 2, 90, step)
    lon = np.arange(step / 2, 360, step)
    return lat, lon


def upsample(coarse: np.ndarray, factor: int = 2) -> np.ndarray:
    """Store (lat, lon) field -> the :func:`fine_grid` (lon rolled to start at 0 degrees)."""
    fine = np.repeat(np.repeat(coarse, factor, axis=-2), factor, axis=-1)
    return np.roll(fine, -fine.shape[-1] // 2, axis=-1)  # -180..180 -> 0..360


def monthly_time(calendar: str = "noleap") -> xr.DataArray:
    """Mid-month times 2000-2002 in ``calendar``."""
    times = xr.date_range(
        f"{YEARS[0]}-01-01", periods=12 * len(YEARS), freq="MS", calendar=calendar, use_cftime=True
    )
    return xr.DataArray(times, dims="time")


def write_model(
    directory: Path,
    store: xr.Dataset,
    *,
    scale: float = 1.2,
    name: str = "M",
    factor: int = 2,
    variables: tuple[str, ...] = ("rh", "raRoot", "gpp", "cSoil"),
    one_file: bool = False,
) -> Path:
    """CMOR-like monthly files (noleap, kg m-2 s-1) whose annual totals are ``scale`` x the store's
    ``F_mean`` of each year (rh <- HR, raRoot <- AR, ra <- 2 AR, gpp <- 3 SR, npp <- 1.5 SR),
    with ``sftlf`` = the store's land fraction (%)."""
    directory.mkdir(parents=True, exist_ok=True)
    lat, lon = fine_grid(factor)
    time = monthly_time("noleap")
    src = {
        "rh": ("HR", 1.0),
        "raRoot": ("AR", 1.0),
        "ra": ("AR", 2.0),
        "gpp": ("SR", 3.0),
        "npp": ("SR", 1.5),
    }
    coords = {
        "time": time,
        "lat": ("lat", lat, {"units": "degrees_north"}),
        "lon": ("lon", lon, {"units": "degrees_east"}),
    }
    datasets = {}
    for var in variables:
        if var == "cSoil":
            field = upsample(np.where(store["domain"].values, 10.0 * scale, np.nan), factor)
            data = np.repeat(field[None], time.size, axis=0)
            units = "kg m-2"
        else:
            flux, k = src[var]
            annual = upsample(store[f"{flux}_mean"].values, factor) * scale * k  # g m-2 yr-1
            rate = annual / 1000.0 / SECONDS_NOLEAP_YEAR  # kg m-2 s-1, constant in each year
            data = np.repeat(rate, 12, axis=0)
            units = "kg m-2 s-1"
        datasets[var] = xr.Dataset(
            {var: (("time", "lat", "lon"), data.astype("float32"), {"units": units})},
            coords=coords,
        )
    land = upsample(store["land_fraction"].values * 100.0, factor)
    datasets["sftlf"] = xr.Dataset(
        {"sftlf": (("lat", "lon"), land, {"units": "%"})},
        coords={k: v for k, v in coords.items() if k != "time"},
    )
    if one_file:
        xr.merge(list(datasets.values())).to_netcdf(directory / f"{name}.nc")
    else:
        for var, ds in datasets.items():
            ds.to_netcdf(directory / f"{name}_{var}.nc")
    return directory


def test_store_layout(tmp_path):
    path = write_store(tmp_path / "ensemble.zarr")
    store = xr.open_zarr(path, consolidated=False)
    for name in ("SR", "HR_sd_map", "AR_replicate_total", "site_ilat", "cell_ilon", "veg_bin"):
        assert name in store
    assert store["SR_replicate_map"].dims == ("replicate", "cell")
    np.testing.assert_allclose(store["AR"], store["SR"] - store["HR"], rtol=1e-12)


def test_upsample_keeps_totals():
    store = make_store_dataset()
    lat, lon = fine_grid(2)
    fine = upsample(np.nan_to_num(store["SR"].values), 2)
    coarse_total = (np.nan_to_num(store["SR"].values) * store["cell_area"].values).sum()
    fine_total = (fine * spherical_cell_area(lat, lon)).sum()
    np.testing.assert_allclose(fine_total, coarse_total, rtol=1e-12)
