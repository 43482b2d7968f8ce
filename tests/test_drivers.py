"""Driver discovery, CF unit conversion, grid checks and file handling."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.data.drivers import (
    Found,
    convert_units,
    expand_sources,
    find_variable,
    normalise_grid,
    open_sources,
)
from srgpu.data.predictors import build_predictors
from srgpu.errors import GridMismatch, InputError, UnitError
from tests.test_predictors import make_drivers


def _found(role: str, units: str | None, values=(1.0,), label="f.nc", name="v") -> Found:
    attrs = {} if units is None else {"units": units}
    return Found(role, label, name, xr.DataArray(np.asarray(values, dtype=float), attrs=attrs))


@pytest.mark.parametrize(
    ("role", "units", "value", "days", "expected"),
    [
        ("tas", "K", 273.15, None, 0.0),
        ("tas", "degC", 5.0, None, 5.0),
        ("tas", "degrees_Celsius", -3.0, None, -3.0),
        ("pr", "kg m-2 s-1", 1e-5, 31, 26.784),
        ("pr", "kg m**-2 s**-1", 1e-5, 30, 25.92),
        ("pr", "mm/day", 2.0, 28, 56.0),
        ("pr", "mm month-1", 80.0, 31, 80.0),
        ("pr", "m s-1", 1e-8, 30, 25.92),
        ("hurs", "%", 55.0, None, 55.0),
        ("hurs", "1", 0.55, None, 55.0),
        ("lai", "m2 m-2", 2.5, None, 2.5),
        ("lai", "1", 2.5, None, 2.5),
        ("rsds", "W m-2", 100.0, 30, 259.2),
        ("rsds", "MJ m-2 d-1", 10.0, 31, 310.0),
        ("par", "umol m-2 s-1", 457.0, 30, 259.2),
        ("soc", "kg m-2", 7.0, None, 7.0),
        ("soc", "g m-2", 7000.0, None, 7.0),
        ("soc", "t ha-1", 70.0, None, 7.0),
        ("sftlf", "%", 40.0, None, 0.4),
        ("sftlf", "1", 0.4, None, 0.4),
    ],
)
def test_unit_conversions(role, units, value, days, expected):
    f = _found(role, units, [value])
    out = convert_units(f.da, found=f, days=days)
    np.testing.assert_allclose(out.values, [expected], rtol=1e-9)
    assert out.attrs["source_units"] == units


def test_missing_units_names_file_and_variable():
    f = _found("tas", None, label="drivers/tas.nc", name="t2m")
    with pytest.raises(UnitError, match="no 'units'") as err:
        convert_units(f.da, found=f)
    assert err.value.file == "drivers/tas.nc" and err.value.field == "t2m"
    assert "drivers/tas.nc" in str(err.value) and "t2m" in str(err.value)


@pytest.mark.parametrize(
    ("role", "units"),
    [("tas", "furlongs"), ("pr", "m"), ("soc", "g kg-1"), ("lai", "%"), ("rsds", "J m-2")],
)
def test_unknown_units(role, units):
    f = _found(role, units, label="x.nc", name="var")
    with pytest.raises(UnitError) as err:
        convert_units(f.da, found=f, days=30)
    assert err.value.value == units and err.value.field == "var" and err.value.file == "x.nc"


def test_unit_error_through_build_predictors():
    drv = make_drivers()
    drv["pr"].attrs["units"] = "inches"
    with pytest.raises(UnitError, match="inches"):
        build_predictors(drivers=[drv], vegetation=None, names=["Prec"])
    drv["pr"].attrs.pop("units")
    with pytest.raises(UnitError, match="'pr'"):
        build_predictors(drivers=[drv], vegetation=None, names=["Prec"])


def test_degC_and_fraction_inputs_give_same_predictors():
    a = make_drivers()
    b = a.copy()
    b["tas"] = (a["tas"] - 273.15).assign_attrs(units="degC")
    b["hurs"] = (a["hurs"] / 100).assign_attrs(units="1")
    names = ["MAT", "RH", "RH_GS"]
    pa = build_predictors(drivers=[a], vegetation=None, names=names)
    pb = build_predictors(drivers=[b], vegetation=None, names=names)
    for n in names:
        np.testing.assert_allclose(pa[n].values, pb[n].values, rtol=1e-6)


def test_discovery_by_standard_name_then_short_name():
    ds = make_drivers().rename(tas="air")  # found by standard_name air_temperature
    srcs = open_sources([ds])
    assert find_variable(srcs, "tas").name == "air"
    assert find_variable(srcs, "pr").name == "pr"
    assert find_variable(srcs, "hurs").name == "hurs"
    assert find_variable(srcs, "par") is None
    ds = ds.rename(pr="PRE")  # short names are case-insensitive
    assert find_variable(open_sources([ds]), "pr").name == "PRE"


def test_grid_normalisation_descending_lat_and_360_lon():
    ds = make_drivers(years=(2003,))
    flipped = ds.isel(lat=slice(None, None, -1))
    shifted = ds.assign_coords(lon=ds.lon + 350.0)  # 360.5, 361.5, 362.5 -> 0.5, 1.5, 2.5
    assert normalise_grid(flipped, label="a")["lat"].values.tolist() == [-0.5, 0.5]
    np.testing.assert_allclose(normalise_grid(shifted, label="b")["lon"].values, [0.5, 1.5, 2.5])
    across = ds.assign_coords(lon=[170.0, 190.0, 210.0])  # regional, across the antimeridian
    np.testing.assert_allclose(normalise_grid(across, label="c")["lon"].values, [170, 190, 210])
    a = build_predictors(drivers=[ds], vegetation=None, names=["MAT"])
    b = build_predictors(drivers=[flipped], vegetation=None, names=["MAT"])
    np.testing.assert_allclose(a["MAT"].values, b["MAT"].values)


def test_irregular_and_non_monotonic_grids():
    ds = make_drivers(years=(2003,))
    irregular = ds.assign_coords(lon=[10.5, 11.5, 13.0])
    with pytest.raises(GridMismatch, match="irregular") as err:
        normalise_grid(irregular, label="irregular.nc")
    assert err.value.file == "irregular.nc" and err.value.field == "lon"
    shuffled = ds.assign_coords(lon=[10.5, 12.5, 11.5])
    with pytest.raises(GridMismatch, match="monotonic"):
        normalise_grid(shuffled, label="shuffled.nc")


def test_mismatched_grids_between_sources():
    a = make_drivers(years=(2003,))[["tas"]]
    b = make_drivers(years=(2003,))[["pr"]].assign_coords(lon=[20.5, 21.5, 22.5])
    with pytest.raises(GridMismatch, match="grid of 'pr'") as err:
        build_predictors(drivers=[a, b], vegetation=None, names=["MAT", "Prec"])
    assert err.value.file == "<dataset 1>"


def test_files_directories_and_globs(tmp_path):
    ds = make_drivers(years=(2003,))
    (tmp_path / "drv").mkdir()
    ds[["tas", "pr"]].to_netcdf(tmp_path / "drv" / "a_tas_pr.nc")
    ds[["rsds"]].to_zarr(tmp_path / "drv" / "b_rsds.zarr", zarr_format=2)
    files = expand_sources([tmp_path / "drv"])
    assert [p.name for p in files] == ["a_tas_pr.nc", "b_rsds.zarr"]
    assert [p.name for p in expand_sources([str(tmp_path / "drv" / "*.nc")])] == ["a_tas_pr.nc"]
    out = build_predictors(drivers=[tmp_path / "drv"], vegetation=None, names=["MAT", "PAR"])
    np.testing.assert_allclose(out["MAT"].values[0, 0, 0], 10.0, atol=1e-5)
    assert "a_tas_pr.nc" in out["MAT"].attrs["source"]
    with pytest.raises(InputError, match="file not found"):
        build_predictors(drivers=[tmp_path / "nope.nc"], vegetation=None, names=["MAT"])
    with pytest.raises(InputError, match="no file matches"):
        expand_sources([str(tmp_path / "*.grib")])


def test_unit_error_names_the_file(tmp_path):
    ds = make_drivers(years=(2003,))[["tas"]]
    ds["tas"].attrs["units"] = "F"
    path = tmp_path / "bad_tas.nc"
    ds.to_netcdf(path)
    with pytest.raises(UnitError) as err:
        build_predictors(drivers=[path], vegetation=None, names=["MAT"])
    assert err.value.file == str(path) and "bad_tas.nc" in str(err.value)


def test_daily_data_is_refused():
    ds = make_drivers(years=(2003,))
    daily = ds.isel(time=[0, 0]).assign_coords(
        time=ds.time.values[[0, 0]] + np.array([0, 1], "timedelta64[D]")
    )
    with pytest.raises(InputError, match="more than one step in a month"):
        build_predictors(drivers=[daily], vegetation=None, names=["MAT"])
