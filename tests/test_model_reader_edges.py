"""Known answers for the model-output reader's numbers: calendars, annualisation, cell areas,
land fractions and the soil-flux rule (:mod:`srgpu.analysis.compare.models`).

Written for the mutants that survived the rest of the suite (issue 21, deliver 4;
``tests/mutation/``). The functions are called on small in-memory arrays (no NetCDF file), the
expected values are computed by hand (days of the calendars, the spherical band area
R^2 dlon (sin phi2 - sin phi1), percent / 100), and error messages are checked in full because
the CLI prints exactly that one line.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare.models import (
    _area_and_land,
    annualise,
    days_in_year,
    soil_fluxes,
    spherical_cell_area,
)
from srgpu.constants import EARTH_RADIUS_M
from srgpu.errors import InputError, UnitError

DAY_S = 86400.0
NOLEAP_MONTHS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)


def _months(n: int, *, calendar: str = "noleap", start: str = "2000-01-01") -> xr.DataArray:
    times = xr.date_range(start, periods=n, freq="MS", calendar=calendar, use_cftime=True)
    return xr.DataArray(times, dims="time")


def _series(values, time) -> xr.DataArray:
    values = np.asarray(values, dtype=float)
    dims = ("time", *[f"d{i}" for i in range(values.ndim - 1)])
    return xr.DataArray(values, dims=dims, coords={"time": time})


# -- calendars -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "calendar", "days"),
    [
        (1900, "proleptic_gregorian", 365),  # a century, not divisible by 400
        (1900, "julian", 366),  # every 4th year
        (2001, "standard", 365),
        (2004, "noleap", 365),
        (2001, "all_leap", 366),
        (2001, "360_day", 360),
    ],
)
def test_days_in_year(year, calendar, days):
    assert days_in_year(year, calendar=calendar) == days


# -- annualisation -------------------------------------------------------------------------------


def test_annual_steps_take_the_days_of_their_own_year():
    # one value a year in 1999..2001, proleptic Gregorian: 365, 366, 365 days
    times = xr.date_range(
        "1999-07-01", periods=3, freq="YS-JUL", calendar="proleptic_gregorian", use_cftime=True
    )
    rate = np.array([1.0, 2.0, 3.0])
    flux = annualise(_series(rate, times), kind="flux")
    assert flux["year"].values.tolist() == [1999, 2000, 2001]
    np.testing.assert_allclose(flux.values, rate * np.array([365, 366, 365]) * DAY_S, rtol=1e-15)
    # a stock given once a year is its own annual mean
    stock = annualise(_series(rate, times), kind="stock")
    np.testing.assert_allclose(stock.values, rate, rtol=1e-15)


def test_monthly_stock_is_the_day_weighted_mean_per_cell_and_year():
    time = _months(24)
    rate = np.arange(1.0, 25.0)
    both = np.stack([rate, 2 * rate + 1], axis=1)  # two cells
    stock = annualise(_series(both, time), kind="stock")
    for k, year in enumerate((2000, 2001)):
        r = rate[12 * k : 12 * (k + 1)]
        mean = (r * NOLEAP_MONTHS).sum() / 365
        np.testing.assert_allclose(stock.sel(year=year).values, [mean, 2 * mean + 1], rtol=1e-14)
    flux = annualise(_series(both, time), kind="flux")
    np.testing.assert_allclose(
        flux.sel(year=2001).values[0], (rate[12:] * NOLEAP_MONTHS).sum() * DAY_S, rtol=1e-14
    )


def test_a_cell_missing_all_year_stays_missing():
    time = _months(12)
    values = np.ones((12, 2))
    values[:, 1] = np.nan  # an ocean cell
    for kind in ("flux", "stock"):
        out = annualise(_series(values, time), kind=kind)
        assert np.isfinite(out.values[0, 0]) and np.isnan(out.values[0, 1]), kind


def test_a_year_starting_mid_series_is_complete_only_with_12_months():
    # March 2000 .. February 2002: 10 months of 2000, all of 2001, 2 of 2002
    time = _months(24, start="2000-03-01")
    out = annualise(_series(np.ones(24), time), kind="flux")
    assert out["year"].values.tolist() == [2001]
    assert out.item() == pytest.approx(365 * DAY_S, rel=1e-15)


def test_time_axes_that_are_neither_monthly_nor_annual():
    daily = xr.DataArray(
        xr.date_range("2000-01-01", periods=40, freq="D", calendar="noleap", use_cftime=True),
        dims="time",
    )
    with pytest.raises(InputError) as e:
        annualise(_series(np.ones(40), daily), kind="flux", file="m_rh.nc", field="rh")
    assert str(e.value) == (
        "m_rh.nc: field 'rh:time': time axis is neither monthly nor annual (got '40 steps in "
        "one year'); expected monthly means (12 a year) or annual values"
    )
    with pytest.raises(InputError) as e:
        annualise(_series(np.ones(40), daily), kind="flux")
    assert str(e.value).startswith("field 'time': time axis is neither monthly nor annual")
    # four steps a year (quarterly) are not monthly either
    quarterly = xr.DataArray(
        xr.date_range("2000-01-01", periods=8, freq="QS", calendar="noleap", use_cftime=True),
        dims="time",
    )
    with pytest.raises(InputError, match="neither monthly nor annual .got '4 steps"):
        annualise(_series(np.ones(8), quarterly), kind="stock")
    # four-weekly steps (28 days, each within the monthly 27-32 day spacing): 13 in 2000
    four_weekly = xr.DataArray(
        xr.date_range("2000-01-01", periods=13, freq="28D", calendar="noleap", use_cftime=True),
        dims="time",
    )
    with pytest.raises(InputError, match="neither monthly nor annual .got '13 steps"):
        annualise(_series(np.ones(13), four_weekly), kind="flux")


def test_no_complete_year_names_file_and_field():
    with pytest.raises(InputError) as e:
        annualise(_series(np.ones(11), _months(11)), kind="flux", file="m_rh.nc", field="rh")
    assert str(e.value) == (
        "m_rh.nc: field 'rh': no complete year of monthly data; expected 12 monthly steps in "
        "at least one year"
    )


# -- cell areas and land fraction ----------------------------------------------------------------


def test_spherical_cell_area_is_the_band_area():
    lat = np.array([-60.0, 0.0, 60.0])  # edges -90, -30, 30, 90
    lon = np.array([0.0, 90.0, 180.0, 270.0])  # 90 degrees wide
    area = spherical_cell_area(lat, lon)
    r2 = EARTH_RADIUS_M**2
    band = r2 * (math.pi / 2) * np.array([1 - 0.5, 0.5 + 0.5, 1 - 0.5])
    assert area.shape == (3, 4)
    np.testing.assert_allclose(area, np.repeat(band[:, None], 4, axis=1), rtol=1e-14)
    assert area.sum() == pytest.approx(4 * math.pi * r2, rel=1e-14)


def _grid_field(values, *, lat=(-45.0, 45.0), lon=(0.0, 180.0), years=None) -> xr.DataArray:
    values = np.asarray(values, dtype=float)
    coords = {"lat": list(lat), "lon": list(lon)}
    dims = ("lat", "lon")
    if years is not None:
        dims = ("year", *dims)
        coords["year"] = list(years)
    return xr.DataArray(values, dims=dims, coords=coords)


def _fixed(values, units=None, name="sftlf"):
    attrs = {} if units is None else {"units": units}
    da = xr.DataArray(
        np.asarray(values, dtype=float),
        dims=("latitude", "lon"),  # a file's own dim name, standardised by the reader
        coords={"latitude": [-45.0, 45.0], "lon": [0.0, 180.0]},
        attrs=attrs,
        name=name,
    )
    return da, Path(f"m_{name}.nc")


@pytest.mark.parametrize("years", [(2000, 2001), (2000,)])
def test_area_and_land_from_the_files(years):
    rh = _grid_field(np.ones((len(years), 2, 2)), years=years)
    area_file = _fixed([[1.0, 2.0], [3.0, 4.0]], units="m2", name="areacella")
    # a fixed file's coordinates written with less precision: the fields' grid is kept
    area_file[0]["latitude"] = [-45.00001, 45.00001]
    area_file[0]["lon"] = [0.00001, 180.00001]
    land_file = _fixed([[100.0, 50.0], [np.nan, 0.0]], units="%")
    land_file[0]["latitude"] = [-44.99999, 44.99999]
    land_file[0]["lon"] = [-0.00001, 179.99999]
    found = {"rh": (rh, Path("m_rh.nc")), "areacella": area_file, "sftlf": land_file}
    area, land = _area_and_land(found, rh, {"rh": rh})
    assert area.dims == ("lat", "lon") and area.dtype == np.float64
    np.testing.assert_array_equal(area.values, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(land.values, [[1.0, 0.5], [0.0, 0.0]])  # missing -> 0
    for da in (area, land):
        assert set(da.coords) == {"lat", "lon"}
        assert da["lat"].values.tolist() == [-45.0, 45.0]
        assert da["lon"].values.tolist() == [0.0, 180.0]
    assert dict(area.attrs) == {"units": "m2", "standard_name": "cell_area"}
    assert dict(land.attrs) == {"units": "1", "standard_name": "land_area_fraction"}


@pytest.mark.parametrize(
    ("units", "scale"),
    [("%", 0.01), (" percent ", 0.01), (None, 0.01), ("1", 1.0), ("", 1.0), ("fraction", 1.0)],
)
def test_land_fraction_units(units, scale):
    rh = _grid_field(np.ones((2, 2)))
    found = {"rh": (rh, Path("m_rh.nc")), "sftlf": _fixed([[0.5, 1.0], [0.0, 0.25]], units)}
    _, land = _area_and_land(found, rh, {"rh": rh})
    np.testing.assert_allclose(land.values, scale * np.array([[0.5, 1.0], [0.0, 0.25]]))


def test_land_fraction_in_other_units_is_refused():
    rh = _grid_field(np.ones((2, 2)))
    found = {"rh": (rh, Path("m_rh.nc")), "sftlf": _fixed(np.ones((2, 2)), "km2")}
    with pytest.raises(UnitError) as e:
        _area_and_land(found, rh, {"rh": rh})
    assert str(e.value) == (
        "m_sftlf.nc: field 'sftlf': land fraction units (got 'km2'); expected '%' or '1'"
    )


def test_without_files_the_area_is_spherical_and_land_is_where_any_field_is_finite():
    lat, lon = (-60.0, 0.0, 60.0), (0.0, 90.0, 180.0, 270.0)
    rh = np.full((2, 3, 4), np.nan)
    rh[0, 0, 0] = 1.0  # finite in one year only: land
    cs = np.full((3, 4), np.nan)
    cs[2, 3] = 5.0  # a stock without years: land
    fields = {
        "rh": _grid_field(rh, lat=lat, lon=lon, years=(2000, 2001)),
        "cSoil": _grid_field(cs, lat=lat, lon=lon),
    }
    found = {k: (v, Path(f"m_{k}.nc")) for k, v in fields.items()}
    area, land = _area_and_land(found, fields["rh"], fields)
    np.testing.assert_allclose(area.values, spherical_cell_area(np.array(lat), np.array(lon)))
    assert area["lon"].values.tolist() == list(lon) and area.dims == ("lat", "lon")
    assert set(area.coords) == set(land.coords) == {"lat", "lon"}  # no year left over
    assert dict(area.attrs) == {"units": "m2", "standard_name": "cell_area"}
    expected = np.zeros((3, 4))
    expected[0, 0] = expected[2, 3] = 1.0
    assert land.dtype == np.float64
    np.testing.assert_array_equal(land.values, expected)
    assert land.dims == ("lat", "lon")


# -- soil fluxes ---------------------------------------------------------------------------------


def _fluxes(**values) -> xr.Dataset:
    return xr.Dataset({k: _grid_field(np.full((2, 2), v)) for k, v in values.items()})


def test_sr_is_hr_plus_root_respiration():
    data = _fluxes(rh=300.0, raRoot=200.0, ra=900.0)
    out, notes = soil_fluxes(data, root_fraction=0.5)  # raRoot wins over the fraction
    assert notes == ["AR = raRoot"]
    np.testing.assert_array_equal(out["SR"].values, np.full((2, 2), 500.0))
    np.testing.assert_array_equal(out["AR"].values, np.full((2, 2), 200.0))
    np.testing.assert_array_equal(out["HR"].values, np.full((2, 2), 300.0))
    for name, long_name in (
        ("HR", "heterotrophic respiration (rh)"),
        ("AR", "root autotrophic respiration"),
        ("SR", "soil respiration"),
    ):
        assert out[name].attrs == {"units": "g C m-2 yr-1", "long_name": long_name}
    assert "HR" not in data and "SR" not in data  # the input is not changed


@pytest.mark.parametrize("fraction", [0.25, 1.0])
def test_root_fraction_of_total_ra(fraction):
    out, notes = soil_fluxes(_fluxes(rh=300.0, ra=800.0), root_fraction=fraction)
    assert notes == [f"AR = {fraction} x ra (no root respiration in the output)"]
    np.testing.assert_allclose(out["AR"].values, 800.0 * fraction, rtol=1e-15)
    np.testing.assert_allclose(out["SR"].values, 300.0 + 800.0 * fraction, rtol=1e-15)
    assert out["AR"].attrs == {
        "units": "g C m-2 yr-1",
        "long_name": f"root autotrophic respiration = {fraction} x ra",
    }


def test_what_is_not_computed_is_said():
    out, notes = soil_fluxes(_fluxes(rh=300.0, ra=800.0))
    assert "AR" not in out and "SR" not in out and "HR" in out
    assert notes == ["AR, SR not computed: only total ra is given (set root_fraction to estimate)"]
    out, notes = soil_fluxes(_fluxes(gpp=1000.0))
    assert notes == ["HR not computed: no rh", "AR, SR not computed: no raRoot or ra"]
    assert set(out.data_vars) == {"gpp"}
    out, notes = soil_fluxes(_fluxes(raRoot=200.0))
    assert notes == ["HR not computed: no rh", "AR = raRoot"]
    assert "SR" not in out and "AR" in out


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.0000001, 2.0])
def test_root_fraction_out_of_range(fraction):
    with pytest.raises(InputError) as e:
        soil_fluxes(_fluxes(rh=300.0, ra=800.0), root_fraction=fraction)
    assert str(e.value) == (
        f"field 'root_fraction': root fraction out of range (got {fraction!r}); expected 0 < f <= 1"
    )


@pytest.mark.parametrize(("key", "name"), [("areacella", "areacella"), ("sftlf", "landfrac")])
def test_a_fixed_field_without_a_grid_names_its_file_and_variable(key, name):
    rh = _grid_field(np.ones((2, 2)))
    da = xr.DataArray(np.ones(2), dims="cell", name=name, attrs={"units": "1"})
    found = {"rh": (rh, Path("m_rh.nc")), key: (da, Path("m_fx.nc"))}
    with pytest.raises(InputError) as e:
        _area_and_land(found, rh, {"rh": rh})
    assert str(e.value) == (
        f"m_fx.nc: field '{name}': no latitude/longitude dimensions (got ('cell',)); "
        "expected dims (time, lat, lon) or (lat, lon)"
    )
