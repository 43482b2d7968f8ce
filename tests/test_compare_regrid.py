"""Regridding to the ensemble grid with xarray-regrid: totals kept, lon conventions, nearest."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare.models import spherical_cell_area
from srgpu.analysis.compare.regrid import area_total, regrid_fields, target_grid
from srgpu.errors import InputError
from tests.test_compare_synthetic import fine_grid, make_store_dataset, upsample


def _da(values, lat, lon):
    return xr.DataArray(values, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})


@pytest.mark.parametrize(
    ("dlat", "dlon", "lon0"),
    [(1.25, 1.875, 0.0), (0.5, 0.5, -180.0), (2.0, 2.5, 0.0), (0.75, 0.9, -180.0)],
)
def test_conservative_keeps_global_totals(dlat, dlon, lon0):
    """flux x land x area summed over the globe is the same on the 10 degree target.

    The source total is checked against a hand sum (R^2 dlon dsin(lat) x land x flux). Measured
    relative change of the total through the regridding: 7.1e-6, 5.8e-7, 7.6e-6, 1.4e-6 (the
    four grids in order); tolerance 1.5e-5 (the worst measured x 2)."""
    rng = np.random.default_rng(1)
    lat = np.arange(-90 + dlat / 2, 90, dlat)
    lon = np.arange(lon0 + dlon / 2, lon0 + 360, dlon)
    land = np.where(
        rng.uniform(size=(lat.size, lon.size)) < 0.4,
        0.0,
        rng.uniform(0.2, 1.0, (lat.size, lon.size)),
    )
    flux = np.where(land > 0, rng.uniform(50, 1500, (2, lat.size, lon.size)), np.nan)
    data = xr.Dataset(
        {"rh": (("year", "lat", "lon"), flux)},
        coords={"year": [2000, 2001], "lat": lat, "lon": lon},
    )
    lf = _da(land, lat, lon)
    src_total = area_total(
        data["rh"], area=_da(spherical_cell_area(lat, lon), lat, lon), land_fraction=lf
    )
    r_earth = 6_371_000.0
    lat_edges = np.linspace(-90.0, 90.0, lat.size + 1)
    lon_edges = np.linspace(lon0, lon0 + 360.0, lon.size + 1)
    area = r_earth**2 * np.outer(
        np.diff(np.sin(np.radians(lat_edges))), np.radians(np.diff(lon_edges))
    )
    by_hand = np.nansum(flux * area * land, axis=(1, 2)) * 1e-15
    np.testing.assert_allclose(src_total.values, by_hand, rtol=1e-12)  # measured <= 2.2e-16
    target = target_grid(make_store_dataset())
    out = regrid_fields(data, target=target, land_fraction=lf, method="conservative")
    t_area = _da(
        spherical_cell_area(target["lat"].values, target["lon"].values),
        target["lat"],
        target["lon"],
    )
    dst_total = area_total(out["rh"], area=t_area, land_fraction=out["model_land_fraction"])
    np.testing.assert_allclose(dst_total.values, src_total.values, rtol=1.5e-5)
    assert out["rh"].dims == ("year", "lat", "lon")
    # a mean over land: never outside the source range
    assert np.nanmin(out["rh"]) >= 50 and np.nanmax(out["rh"]) <= 1500


def test_nested_field_comes_back_exactly():
    store = make_store_dataset()
    lat, lon = fine_grid(2)
    coarse = store["SR"].values
    data = xr.Dataset(
        {"SR": (("lat", "lon"), upsample(coarse, 2))}, coords={"lat": lat, "lon": lon}
    )
    land = _da(np.ones((lat.size, lon.size)), lat, lon)
    for method in ("conservative", "nearest"):
        out = regrid_fields(data, target=target_grid(store), land_fraction=land, method=method)
        np.testing.assert_allclose(out["SR"].values, coarse, rtol=1e-10)


def test_unknown_method():
    store = make_store_dataset()
    data = xr.Dataset(
        {"SR": (("lat", "lon"), np.ones((2, 2)))},
        coords={"lat": [-45.0, 45.0], "lon": [90.0, 270.0]},
    )
    with pytest.raises(InputError, match="method"):
        regrid_fields(data, target=target_grid(store), land_fraction=data["SR"], method="bilinear")
