"""Predictor maths on hand-made drivers with known answers, and on the real 0.5 degree grids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from srgpu.data.predictors import build_predictors
from srgpu.errors import ConfigError, InputError

LAT = np.array([-0.5, 0.5])
LON = np.array([10.5, 11.5, 12.5])
GS_MONTHS = np.array([4, 5, 6, 7, 8, 9])  # months of cell (0, 1) above 0 degC
NAMES_ALL = ("MAT", "Prec", "RH", "LAI", "PAR", "SOC", "Prec_GS", "RH_GS", "LAI_GS", "PAR_GS")


def monthly_time(years, *, calendar="standard") -> xr.CFTimeIndex | pd.DatetimeIndex:
    start = f"{years[0]:04d}-01-01"
    n = 12 * len(years)
    if calendar == "standard":
        return pd.date_range(start, periods=n, freq="MS") + pd.Timedelta(days=14)
    return xr.date_range(start, periods=n, freq="MS", calendar=calendar, use_cftime=True)


def make_drivers(*, years=(2003, 2004), calendar="standard", climatology=False) -> xr.Dataset:
    """Monthly drivers on a 2 x 3 grid.

    Cell (0, 0): 10 degC all year. Cell (0, 1): -10 degC except April-September (20 degC).
    Cell (0, 2): -5 degC all year (no growing season). Row 1 repeats row 0. Precipitation
    1e-5 kg m-2 s-1, shortwave 100 W m-2, LAI 1 outside / 3 inside the GS of cell (0, 1),
    RH 80 % outside / 50 % inside; SOC 12 kg m-2 static.
    """
    time = monthly_time(list(years), calendar=calendar)
    months = np.asarray(xr.DataArray(time, dims="t").dt.month.values)
    nt = len(time)
    tas = np.empty((nt, LAT.size, LON.size))
    tas[:, :, 0] = 283.15
    summer = np.isin(months, GS_MONTHS)
    tas[:, :, 1] = np.where(summer, 293.15, 263.15)[:, None]
    tas[:, :, 2] = 268.15
    hurs = np.where(summer, 50.0, 80.0)[:, None, None] * np.ones((1, LAT.size, LON.size))
    lai = np.where(summer, 3.0, 1.0)[:, None, None] * np.ones((1, LAT.size, LON.size))
    dims = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            "tas": (dims, tas, {"units": "K", "standard_name": "air_temperature"}),
            "pr": (dims, np.full(tas.shape, 1e-5), {"units": "kg m-2 s-1"}),
            "hurs": (dims, hurs, {"units": "%"}),
            "lai": (dims, lai, {"units": "1"}),
            "rsds": (dims, np.full(tas.shape, 100.0), {"units": "W m-2"}),
            "soc": (("lat", "lon"), np.full((LAT.size, LON.size), 12.0), {"units": "kg m-2"}),
        },
        coords={
            "time": ("time", time, {"climatology": "climatology_bounds"} if climatology else {}),
            "lat": ("lat", LAT, {"units": "degrees_north"}),
            "lon": ("lon", LON, {"units": "degrees_east"}),
        },
    )
    return ds


def make_vegetation() -> xr.Dataset:
    """IGBP fractions: every cell 60 % grassland (bin 4), 30 % barren, 10 % water."""
    classes = np.arange(1, 17)
    frac = np.zeros((16, LAT.size, LON.size))
    frac[9] = 0.6  # class 10 grasslands
    frac[15] = 0.3  # class 16 barren
    frac[0, 1, 2] = 0.6  # cell (1, 2): evergreen needleleaf forest instead of grassland
    frac[9, 1, 2] = 0.0
    majority = np.full((2, 3), 10, dtype=np.int16)
    majority[1, 2] = 1
    return xr.Dataset(
        {
            "land_cover_on_land": (("lat", "lon"), majority),
            "land_cover_fraction": (("class", "lat", "lon"), frac, {"units": "1"}),
            "sftlf": (("lat", "lon"), np.full((2, 3), 90.0), {"units": "%"}),
        },
        coords={"class": classes, "lat": LAT, "lon": LON},
    )


@pytest.fixture(scope="module")
def synthetic() -> xr.Dataset:
    return build_predictors(drivers=[make_drivers()], vegetation=make_vegetation(), names=NAMES_ALL)


def test_annual_predictors_known_answers(synthetic):
    ds = synthetic
    assert list(ds["year"].values) == [2003, 2004]
    assert ds.attrs["climatology"] == 0 and ds.attrs["period"] == "2003-2004"
    assert ds["MAT"].dims == ("year", "lat", "lon")
    mat = ds["MAT"].sel(year=2003).values[0]
    # cell 1: 182 days at -10, 183 days at +20 in 2003 (non-leap)
    np.testing.assert_allclose(mat, [10.0, (-10 * 182 + 20 * 183) / 365, -5.0], atol=1e-5)
    # leap year 2004: 182 + 1 days of winter
    np.testing.assert_allclose(
        ds["MAT"].sel(year=2004).values[0, 1], (-10 * 183 + 20 * 183) / 366, atol=1e-5
    )
    np.testing.assert_allclose(ds["Prec"].values[:, 0, 0], [0.864 * 365, 0.864 * 366], rtol=1e-6)
    np.testing.assert_allclose(ds["PAR"].values[0, 0, 0], 0.48 * 100 * 86400 * 365 / 1e6, rtol=1e-6)
    np.testing.assert_allclose(ds["RH"].values[0, 0, 1], (80 * 182 + 50 * 183) / 365, rtol=1e-6)
    np.testing.assert_allclose(ds["LAI"].values[0, 0, 1], (1 * 182 + 3 * 183) / 365, rtol=1e-6)
    np.testing.assert_allclose(ds["SOC"].values, 12.0)
    for n in NAMES_ALL:
        assert ds[n].attrs["units"] and ds[n].attrs["long_name"]
    assert ds["Prec"].attrs["units"] == "mm yr-1" and ds["MAT"].attrs["units"] == "degC"


def test_growing_season_predictors(synthetic):
    ds = synthetic.sel(year=2003)
    assert list(ds["gs_months"].values[0]) == [12, 6, 0]
    # cell 1: April-September = 183 days
    np.testing.assert_allclose(ds["Prec_GS"].values[0], [0.864 * 365, 0.864 * 183, 0.0], rtol=1e-6)
    np.testing.assert_allclose(ds["PAR_GS"].values[0, 1], 0.48 * 100 * 86400 * 183 / 1e6, rtol=1e-6)
    assert ds["PAR_GS"].values[0, 2] == 0.0
    np.testing.assert_allclose(ds["RH_GS"].values[0, 1], 50.0, rtol=1e-6)
    np.testing.assert_allclose(ds["LAI_GS"].values[0, 1], 3.0, rtol=1e-6)
    # no growing season: GS means fall back to the annual means
    np.testing.assert_allclose(ds["RH_GS"].values[0, 2], ds["RH"].values[0, 2])
    np.testing.assert_allclose(ds["LAI_GS"].values[0, 2], ds["LAI"].values[0, 2])


def test_missing_months_and_nan_rule():
    drv = make_drivers(years=(2003,))
    drv["tas"][0, 0, 0] = np.nan  # January temperature of cell (0, 0) missing
    drv["pr"][0, 0, 1] = np.nan  # January rain of cell (0, 1): outside its GS
    drv["pr"][5, 1, 1] = np.nan  # June rain of cell (1, 1): inside its GS
    ds = build_predictors(drivers=[drv], vegetation=None, names=["MAT", "Prec", "Prec_GS"])
    assert np.isnan(ds["MAT"].values[0, 0, 0]) and np.isnan(ds["Prec_GS"].values[0, 0, 0])
    assert np.isnan(ds["Prec"].values[0, 0, 1])
    np.testing.assert_allclose(ds["Prec_GS"].values[0, 0, 1], 0.864 * 183, rtol=1e-6)
    assert np.isnan(ds["Prec_GS"].values[0, 1, 1])
    assert ds["gs_months"].values[0, 0, 0] == -1
    assert not ds["domain"].values[0, 0] and ds["domain"].values[1, 0]


def test_incomplete_year_is_dropped():
    drv = make_drivers(years=(2003, 2004)).isel(time=slice(0, 20))
    ds = build_predictors(drivers=[drv], vegetation=None, names=["MAT"])
    assert list(ds["year"].values) == [2003]


@pytest.mark.parametrize(
    ("calendar", "days"),
    [("noleap", [365, 365]), ("360_day", [360, 360]), ("all_leap", [366, 366])],
)
def test_calendars(calendar, days):
    ds = build_predictors(
        drivers=[make_drivers(calendar=calendar)], vegetation=None, names=["Prec", "PAR"]
    )
    np.testing.assert_allclose(ds["Prec"].values[:, 0, 0], 0.864 * np.array(days), rtol=1e-6)


def test_climatology_gives_one_period():
    drv = make_drivers(years=(2000,), climatology=True)
    bounds = np.stack(
        [
            pd.date_range("2000-01-01", periods=12, freq="MS"),
            pd.date_range("2025-02-01", periods=12, freq="MS"),
        ],
        axis=1,
    )
    drv["climatology_bounds"] = (("time", "bnds"), bounds)
    ds = build_predictors(drivers=[drv], vegetation=None, names=["MAT", "Prec"])
    assert ds.attrs["climatology"] == 1
    assert ds.attrs["period"] == "2000-2025"
    assert list(ds["year"].values) == [2000]
    # month lengths of a common year although 2000 is a leap year
    np.testing.assert_allclose(ds["Prec"].values[0, 0, 0], 0.864 * 365, rtol=1e-6)


def test_cell_methods_flag_only_for_twelve_months():
    flagged = make_drivers(years=(2001,))
    flagged["tas"].attrs["cell_methods"] = "time: mean within years time: mean over years"
    ds = build_predictors(drivers=[flagged], vegetation=None, names=["MAT"])
    assert ds.attrs["climatology"] == 1 and ds.attrs["period"] == "2001"
    series = make_drivers(years=(2001, 2002))
    series["tas"].attrs["cell_methods"] = "time: mean over years"
    ds = build_predictors(drivers=[series], vegetation=None, names=["MAT"])
    assert ds.attrs["climatology"] == 0 and ds["year"].values.tolist() == [2001, 2002]


def test_month_axis_climatology_and_time_series_mix():
    clim = make_drivers(years=(2001,))[["rsds"]]
    clim = clim.assign_coords(time=np.arange(1, 13)).rename(time="month")
    series = make_drivers(years=(2003, 2004))[["tas", "pr"]]
    ds = build_predictors(drivers=[series, clim], vegetation=None, names=["MAT", "PAR_GS"])
    assert ds.attrs["climatology"] == 0 and list(ds["year"].values) == [2003, 2004]
    np.testing.assert_allclose(ds["PAR_GS"].values[:, 0, 1], 0.48 * 100 * 0.0864 * 183, rtol=1e-6)


def test_only_requested_inputs_are_needed():
    drv = make_drivers()[["tas", "pr"]]
    ds = build_predictors(drivers=[drv], vegetation=None, names=["MAT", "Prec_GS"])
    assert set(ds.data_vars) >= {"MAT", "Prec_GS"} and "RH" not in ds
    with pytest.raises(InputError, match="RH_GS") as err:
        build_predictors(drivers=[drv], vegetation=None, names=["MAT", "RH_GS"])
    assert err.value.field == "RH_GS"
    with pytest.raises(InputError, match="SOC"):
        build_predictors(drivers=[drv], vegetation=None, names=["SOC"])


def test_overrides_and_par_variable():
    drv = make_drivers().rename(tas="t_air", rsds="swr")
    drv["t_air"].attrs.pop("standard_name")
    drv["par"] = drv["swr"] * 0.5
    drv["par"].attrs = {
        "units": "W m-2",
        "standard_name": "surface_downwelling_photosynthetic_radiative_flux_in_air",
    }
    ds = build_predictors(
        drivers=[drv], vegetation=None, names=["MAT", "PAR"], variables={"MAT": "t_air"}
    )
    np.testing.assert_allclose(ds["PAR"].values[0, 0, 0], 50 * 0.0864 * 365, rtol=1e-6)
    ds = build_predictors(
        drivers=[drv],
        vegetation=None,
        names=["MAT", "PAR"],
        variables={"tas": "t_air", "PAR": "swr"},
    )
    np.testing.assert_allclose(ds["PAR"].values[0, 0, 0], 0.48 * 100 * 0.0864 * 365, rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown key"):
        build_predictors(drivers=[drv], vegetation=None, names=["MAT"], variables={"temp": "t_air"})
    with pytest.raises(ConfigError, match="unknown predictor"):
        build_predictors(drivers=[drv], vegetation=None, names=["NDVI"])


def test_static_fields_and_domain(synthetic):
    ds = synthetic
    np.testing.assert_allclose(ds["land_fraction"].values, 0.9)
    assert ds["veg_bin"].dtype == np.int8
    assert ds["veg_bin"].values.tolist() == [[4, 4, 4], [4, 4, 2]]
    np.testing.assert_allclose(ds["bin_fraction"].sel(bin=4).values[0], 0.6)
    np.testing.assert_allclose(ds["bin_fraction"].sel(bin=2).values[1, 2], 0.6)
    # vegetated share of the land part 0.6 / 0.9 >= 0.5 -> every cell is in the domain
    assert ds["domain"].values.all()
    # cell areas of 1 degree cells at +-0.5 degrees latitude on R = 6371 km
    expect = 6371e3**2 * np.deg2rad(1.0) * (np.sin(np.deg2rad(1.0)) - 0.0)
    np.testing.assert_allclose(ds["cell_area"].values, expect, rtol=1e-12)


def test_domain_vegetated_share_rule():
    veg = make_vegetation()
    veg["land_cover_fraction"][9, 0, 0] = 0.3  # grass 0.3 + barren 0.3 + 0.3 lost to water
    veg["land_cover_fraction"][15, 0, 0] = 0.6
    ds = build_predictors(drivers=[make_drivers()], vegetation=veg, names=["MAT"])
    assert not ds["domain"].values[0, 0]
    assert ds["domain"].values.sum() == 5


# ---------------------------------------------------------------------- real 0.5 degree grids
REAL_NAMES = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI")


@pytest.fixture(scope="module")
def real(grids_dir) -> xr.Dataset:
    drivers = [
        grids_dir / "era5_monthly_climatology_0p5.nc",
        grids_dir / "merra2_rsds_monthly_climatology_0p5.nc",
        grids_dir / "lai_proxy_fapar_0p5.nc",
    ]
    return build_predictors(
        drivers=drivers, vegetation=grids_dir / "modis_igbp_2019_0p5.nc", names=REAL_NAMES
    )


@pytest.mark.parametrize(
    ("lat", "lon", "mat", "prec", "lai"),
    [
        (-3.10, -60.02, 27.0, 3112, 1.77),
        (62.03, 129.73, -8.1, 275, 0.74),
        (51.51, -0.13, 10.9, 716, 1.32),
    ],
)
def test_real_spot_values(real, lat, lon, mat, prec, lai):
    cell = real.sel(lat=lat, lon=lon, method="nearest").isel(year=0)
    assert float(cell["MAT"]) == pytest.approx(mat, abs=0.05)
    assert float(cell["Prec"]) == pytest.approx(prec, abs=0.5)
    assert float(cell["LAI"]) == pytest.approx(lai, abs=0.005)
    assert bool(cell["domain"])


def test_real_yakutsk_growing_season(real):
    cell = real.sel(lat=62.25, lon=129.75).isel(year=0)
    assert int(cell["gs_months"]) == 5
    assert 0 < float(cell["Prec_GS"]) < float(cell["Prec"])
    assert 0 < float(cell["PAR_GS"]) < float(cell["PAR"])


def test_real_attributes_and_domain(real):
    assert real.attrs["climatology"] == 1 and real.attrs["period"] == "2000-2025"
    assert real["year"].values.tolist() == [2000]
    assert int((real["land_fraction"] > 0).sum()) == 92161  # grids README: land = sftlf > 0
    assert int(real["domain"].sum()) == 53806
    land_km2 = float((real["cell_area"] * real["land_fraction"]).sum()) / 1e6
    assert land_km2 == pytest.approx(1.449e8, rel=1e-3)
    assert set(np.unique(real["veg_bin"].values[real["domain"].values])) == {1, 2, 3, 4, 5}


def test_real_missing_rh_names_it(grids_dir):
    with pytest.raises(InputError, match="predictor RH needs relative humidity"):
        build_predictors(
            drivers=[grids_dir / "era5_monthly_climatology_0p5.nc"],
            vegetation=None,
            names=["MAT", "RH"],
        )
