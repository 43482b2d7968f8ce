"""Reading model output: units, calendars, SR from root respiration, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare.models import annualise, conversion_factor, days_in_year, read_model
from srgpu.errors import GridMismatch, InputError, UnitError
from tests.test_compare_synthetic import make_store_dataset, monthly_time, write_model

YEAR_S = 365 * 86400.0


@pytest.mark.parametrize(
    ("units", "kind", "factor"),
    [
        ("kg m-2 s-1", "flux", 1000.0),
        ("kg C m-2 s-1", "flux", 1000.0),
        ("kgC m-2 s-1", "flux", 1000.0),
        ("kg m^-2 s^-1", "flux", 1000.0),
        ("kg m**-2 s**-1", "flux", 1000.0),
        ("gC/m2/yr", "flux", 1.0 / YEAR_S),
        ("g C m-2 yr-1", "flux", 1.0 / YEAR_S),
        ("g m-2 d-1", "flux", 1.0 / 86400.0),
        ("gC m-2 day-1", "flux", 1.0 / 86400.0),
        ("Mg C m-2 yr-1", "flux", 1e6 / YEAR_S),
        ("kg m-2", "stock", 1.0),
        ("g C m-2", "stock", 1e-3),
        ("kgC/m2", "stock", 1.0),
    ],
)
def test_conversion_factor(units, kind, factor):
    assert conversion_factor(units, kind=kind) == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize(
    ("units", "kind"),
    [
        (None, "flux"),
        ("", "flux"),
        ("kg m-2 month-1", "flux"),
        ("mol m-2 s-1", "flux"),
        ("kg m-2", "flux"),
        ("kg m-2 s-1", "stock"),
        ("W m-2", "flux"),
        ("1", "stock"),
    ],
)
def test_conversion_factor_rejects(units, kind):
    with pytest.raises(UnitError) as err:
        conversion_factor(units, kind=kind, file="m_rh.nc", field="rh")
    assert "m_rh.nc" in str(err.value) and "'rh'" in str(err.value)


@pytest.mark.parametrize(
    ("calendar", "days"),
    [
        ("noleap", 365),
        ("360_day", 360),
        ("all_leap", 366),
        ("standard", 366),
        ("proleptic_gregorian", 366),
        ("julian", 366),
    ],
)
def test_annual_total_uses_the_calendar(calendar, days):
    # a constant 1 g m-2 s-1 in 2000: the year's total is the seconds of that calendar's year
    time = monthly_time(calendar)[:12]
    da = xr.DataArray(np.ones(12), dims="time", coords={"time": time})
    total = annualise(da, kind="flux")
    assert days_in_year(2000, calendar=calendar) == days
    assert total.sel(year=2000).item() == pytest.approx(days * 86400.0)


def test_monthly_means_weighted_by_days_in_month():
    time = monthly_time("360_day")[:12]
    rate = np.arange(1.0, 13.0)
    da = xr.DataArray(rate, dims="time", coords={"time": time})
    assert annualise(da, kind="flux").item() == pytest.approx(rate.sum() * 30 * 86400.0)
    time = monthly_time("noleap")[:12]
    da = xr.DataArray(rate, dims="time", coords={"time": time})
    month_days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    assert annualise(da, kind="flux").item() == pytest.approx((rate * month_days).sum() * 86400)
    # stocks: the day-weighted mean
    assert annualise(da, kind="stock").item() == pytest.approx((rate * month_days).sum() / 365)


def test_incomplete_years_are_dropped():
    time = monthly_time("noleap")[:30]  # 2000, 2001 and half of 2002
    da = xr.DataArray(np.ones(30), dims="time", coords={"time": time})
    assert list(annualise(da, kind="flux")["year"].values) == [2000, 2001]


def test_annual_data():
    times = xr.date_range(
        "2000-07-01", periods=3, freq="YS-JUL", calendar="standard", use_cftime=True
    )
    da = xr.DataArray(np.ones(3), dims="time", coords={"time": times})
    out = annualise(da, kind="flux")
    np.testing.assert_allclose(out.values, np.array([366, 365, 365]) * 86400.0)


def test_read_model_directory_and_single_file(tmp_path):
    store = make_store_dataset()
    per_var = read_model(write_model(tmp_path / "a", store, scale=1.2), name="A")
    one = read_model(write_model(tmp_path / "b", store, scale=1.2, one_file=True), name="B")
    for model in (per_var, one):
        data = model.data
        assert {"rh", "raRoot", "gpp", "cSoil", "HR", "AR", "SR"} <= set(data.data_vars)
        assert data["SR"].attrs["units"] == "g C m-2 yr-1"
        assert list(data["year"].values) == [2000, 2001, 2002]
        # SR = HR + AR = 1.2 (HR + AR) of the store, cell by cell (nested 5 degree grid)
        assert np.nanmax(data["SR"].values) == pytest.approx(
            1.2 * np.nanmax(store["SR_mean"].values), rel=1e-6
        )
        assert data["lat"].values[0] < data["lat"].values[-1]
        assert float(data["land_fraction"].max()) <= 1.0
        assert "AR = raRoot" in model.notes


def test_sr_rule_when_only_total_ra(tmp_path):
    store = make_store_dataset()
    path = write_model(tmp_path / "m", store, variables=("rh", "ra"))
    plain = read_model(path)
    assert "SR" not in plain.data and "AR" not in plain.data and "HR" in plain.data
    assert any("only total ra" in n for n in plain.notes)
    opted = read_model(path, root_fraction=0.5)
    np.testing.assert_allclose(opted.data["AR"], 0.5 * opted.data["ra"])
    np.testing.assert_allclose(opted.data["SR"], opted.data["HR"] + opted.data["AR"])
    with pytest.raises(InputError, match="root_fraction"):
        read_model(path, root_fraction=1.5)


def _cmor(path, **overrides):
    time = monthly_time("noleap")[:12]
    lat, lon = np.array([-45.0, 45.0]), np.array([90.0, 270.0])
    ds = xr.Dataset(
        {"rh": (("time", "lat", "lon"), np.ones((12, 2, 2)), {"units": "kg m-2 s-1"})},
        coords={"time": time, "lat": lat, "lon": lon},
    )
    for value in overrides.values():
        ds = value(ds) if callable(value) else ds
    ds.to_netcdf(path)
    return path


def test_bad_files_name_file_and_field(tmp_path):
    # no units
    nounits = _cmor(
        tmp_path / "nounits_rh.nc", f=lambda d: d.assign(rh=d["rh"].assign_attrs(units=""))
    )
    with pytest.raises(UnitError, match="nounits_rh.nc.*'rh'"):
        read_model(nounits)
    # wrong dims
    extra = tmp_path / "pft_rh.nc"
    xr.Dataset(
        {"rh": (("time", "pft", "lat", "lon"), np.ones((12, 3, 2, 2)), {"units": "kg m-2 s-1"})},
        coords={"time": monthly_time("noleap")[:12], "lat": [-45.0, 45.0], "lon": [90.0, 270.0]},
    ).to_netcdf(extra)
    with pytest.raises(InputError, match="pft_rh.nc.*'rh'.*unexpected dimensions"):
        read_model(extra)
    # unknown calendar
    badcal = tmp_path / "cal_rh.nc"
    xr.Dataset(
        {"rh": (("time", "lat", "lon"), np.ones((2, 1, 1)), {"units": "kg m-2 s-1"})},
        coords={
            "time": (
                "time",
                [15.0, 45.0],
                {"units": "days since 2000-01-01", "calendar": "martian"},
            ),
            "lat": [0.0],
            "lon": [0.0],
        },
    ).to_netcdf(badcal)
    with pytest.raises(InputError, match="cal_rh.nc.*'time'.*martian"):
        read_model(badcal)
    # not NetCDF
    text = tmp_path / "text_rh.nc"
    text.write_text("rh,1,2,3\n")
    with pytest.raises(InputError, match="text_rh.nc.*cannot be read"):
        read_model(text)
    # truncated
    good = _cmor(tmp_path / "good_rh.nc")
    truncated = tmp_path / "trunc_rh.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="trunc_rh.nc"):
        read_model(truncated)
    # no known variable
    other = tmp_path / "other.nc"
    xr.Dataset({"tas": ("x", [1.0])}).to_netcdf(other)
    with pytest.raises(InputError, match="no model variable"):
        read_model(other)


def test_duplicate_variable_and_grid_mismatch(tmp_path):
    d = tmp_path / "dup"
    d.mkdir()
    _cmor(d / "a_rh.nc")
    _cmor(d / "b_rh.nc")
    with pytest.raises(InputError, match="also given"):
        read_model(d)
    d2 = tmp_path / "mismatch"
    d2.mkdir()
    _cmor(d2 / "m_rh.nc")
    xr.Dataset(
        {"gpp": (("lat", "lon"), np.ones((3, 2)), {"units": "kg m-2 s-1"})},
        coords={"lat": [-60.0, 0.0, 60.0], "lon": [90.0, 270.0]},
    ).to_netcdf(d2 / "m_gpp.nc")
    with pytest.raises(GridMismatch):
        read_model(d2)
