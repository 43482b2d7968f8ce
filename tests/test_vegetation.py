"""Vegetation bins from class maps and fractions, area shares on the sphere."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.data.predictors import build_predictors
from srgpu.data.vegetation import (
    IGBP_TO_BIN,
    VEG_BINS,
    bin_area_shares,
    bin_fractions_from_classes,
    bins_from_classes,
)
from srgpu.errors import InputError
from tests.test_predictors import make_drivers, make_vegetation


def test_mapping_unchanged():
    assert sorted(VEG_BINS) == [1, 2, 3, 4, 5]
    assert IGBP_TO_BIN[2] == 1 and IGBP_TO_BIN[12] == 5 and IGBP_TO_BIN[16] == 0


def test_bins_from_classes_handles_water_and_fill():
    codes = xr.DataArray([[0, 2, 7], [10, 17, np.nan]], dims=("lat", "lon"))
    assert bins_from_classes(codes).values.tolist() == [[0, 1, 3], [4, 0, 0]]
    assert bins_from_classes(codes, land=True).values.tolist() == [
        [False, True, True],
        [True, False, False],
    ]


def test_bin_fractions_from_classes():
    frac = xr.DataArray(
        np.array([0.1, 0.2, 0.3, 0.15, 0.25]),
        dims="class",
        coords={"class": [1, 2, 4, 12, 16]},
    )
    out = bin_fractions_from_classes(frac)
    assert out["bin"].values.tolist() == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(out.values, [0.2, 0.4, 0.0, 0.0, 0.15])


def _grid(lat, bin_fraction):
    lat = np.asarray(lat, dtype=float)
    area = np.cos(np.deg2rad(lat))[:, None] * np.ones((1, 1))
    return xr.Dataset(
        {
            "cell_area": (("lat", "lon"), area),
            "bin_fraction": (("bin", "lat", "lon"), np.asarray(bin_fraction, dtype=float)),
            "domain": (("lat", "lon"), np.array([[True], [False]])),
        },
        coords={"bin": [1, 2, 3, 4, 5], "lat": lat, "lon": [0.0]},
    )


def test_bin_area_shares_are_area_weighted():
    # cell at 0 deg all bin 1, cell at 60 deg (half the area) all bin 2
    bf = np.zeros((5, 2, 1))
    bf[0, 0, 0] = 1.0
    bf[1, 1, 0] = 1.0
    shares = bin_area_shares(_grid([0.0, 60.0], bf))
    assert shares.dims == ("bin",)
    np.testing.assert_allclose(shares.values, [2 / 3, 1 / 3, 0, 0, 0], rtol=1e-12)
    np.testing.assert_allclose(
        bin_area_shares(_grid([0.0, 60.0], bf), domain_only=True).values, [1, 0, 0, 0, 0]
    )


def test_bin_area_shares_without_vegetation_is_an_error():
    with pytest.raises(InputError, match="no vegetated land"):
        bin_area_shares(_grid([0.0, 60.0], np.zeros((5, 2, 1))))


def test_majority_class_only_map():
    veg = make_vegetation()[["land_cover_on_land"]]
    veg["land_cover_on_land"][0, 0] = 16  # barren: not vegetated, still land
    veg["land_cover_on_land"][0, 1] = 0  # water
    ds = build_predictors(drivers=[make_drivers()], vegetation=veg, names=["MAT"])
    np.testing.assert_allclose(ds["land_fraction"].values, [[1, 0, 1], [1, 1, 1]])
    assert ds["domain"].values.tolist() == [[False, False, True], [True, True, True]]
    # without fractions the majority bin holds the cell's land share
    np.testing.assert_allclose(ds["bin_fraction"].sel(bin=4).values, [[0, 0, 1], [1, 1, 0]])
    np.testing.assert_allclose(ds["bin_fraction"].sel(bin=2).values[1, 2], 1.0)


def test_vegetated_cell_with_barren_majority_gets_a_vegetated_bin():
    veg = make_vegetation()
    frac = veg["land_cover_fraction"]
    frac[:, 0, 0] = 0.0
    frac[15, 0, 0] = 0.4  # barren 40 % (the majority class)
    frac[6, 0, 0] = 0.3  # open shrubland 30 %
    frac[9, 0, 0] = 0.2  # grassland 20 %; land 90 %, vegetated 50/90 >= 0.5
    veg["land_cover_on_land"][0, 0] = 16
    ds = build_predictors(drivers=[make_drivers()], vegetation=veg, names=["MAT"])
    assert bool(ds["domain"].values[0, 0])
    assert int(ds["veg_bin"].values[0, 0]) == 3


def test_real_bin_shares_match_grids_readme(grids_dir):
    ds = build_predictors(
        drivers=[grids_dir / "era5_monthly_climatology_0p5.nc"],
        vegetation=grids_dir / "modis_igbp_2019_0p5.nc",
        names=["MAT"],
    )
    shares = bin_area_shares(ds)
    # grids README: 11.4, 9.3, 12.9, 53.8, 12.6 % of vegetated land (1.084e8 km2)
    np.testing.assert_allclose(shares.values * 100, [11.4, 9.3, 12.9, 53.8, 12.6], atol=0.05)
    area = float((ds["cell_area"] * ds["bin_fraction"]).sum()) / 1e6
    assert area == pytest.approx(1.084e8, rel=1e-3)
