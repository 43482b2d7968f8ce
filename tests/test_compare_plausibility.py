"""Issue 16 item 2: implausible model input is refused (file, variable, value) unless the user
overrides it for that model; a missing calendar attribute is inferred only where unambiguous."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare.calendars import infer_calendar
from srgpu.analysis.compare.models import read_model, spherical_cell_area
from srgpu.analysis.compare.plausibility import PLAUSIBLE_TOTALS
from srgpu.errors import InputError

LAT = np.arange(-85.0, 90.0, 10.0)
LON = np.arange(5.0, 360.0, 10.0)
AREA = spherical_cell_area(LAT, LON)
TARGET_PG = 60.0  # a plausible global rh


def _rate(days: float) -> float:
    """kg m-2 s-1 giving ``TARGET_PG`` over ``days`` days on every cell of the globe."""
    return TARGET_PG * 1e15 / AREA.sum() / 1e3 / (days * 86400.0)


def _write(path, *, values=None, units="kg m-2 s-1", time=None, time_attrs=None, nyears=2):
    """A global monthly rh file (every cell land) with raw time values and attributes."""
    if time is None:
        time = 15.0 + 30.0 * np.arange(12 * nyears)
    time_attrs = {"units": "days since 2001-01-01"} if time_attrs is None else time_attrs
    if values is None:
        values = np.full((len(time), LAT.size, LON.size), _rate(365.0))
    ds = xr.Dataset(
        {"rh": (("time", "lat", "lon"), values, {"units": units})},
        coords={"time": ("time", np.asarray(time, float), time_attrs), "lat": LAT, "lon": LON},
    )
    ds.to_netcdf(path)
    return path


def _standard_days(nyears: int = 2) -> np.ndarray:
    """Mid-month days since 2001-01-01 in the standard calendar (2001-2002: no leap year)."""
    import cftime

    out = []
    for y in range(2001, 2001 + nyears):
        for m in range(1, 13):
            a = cftime.datetime(y, m, 1, calendar="standard")
            b = cftime.datetime(y + (m == 12), m % 12 + 1, 1, calendar="standard")
            mid = a + (b - a) / 2
            out.append((mid - cftime.datetime(2001, 1, 1, calendar="standard")).total_seconds())
    return np.array(out) / 86400.0


def _total(model) -> float:
    d = model.data
    return float((d["rh"] * d["cell_area"] * d["land_fraction"]).sum(("lat", "lon")).mean()) / 1e15


def test_good_file_passes(tmp_path):
    model = read_model(
        _write(tmp_path / "ok.nc", time=_standard_days(), time_attrs=_std_attrs()), name="ok"
    )
    assert _total(model) == pytest.approx(TARGET_PG, rel=1e-9)


def _std_attrs():
    return {"units": "days since 2001-01-01", "calendar": "standard"}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("all_negative", "negative values"),
        ("negative_patch", "negative values"),
        ("mislabelled_units", "implausible global total"),
        ("hundredfold", "implausible global total"),
    ],
)
def test_implausible_input_names_file_variable_value(tmp_path, case, message):
    good = np.full((24, LAT.size, LON.size), _rate(365.0))
    units = "kg m-2 s-1"
    if case == "all_negative":
        values = -good
    elif case == "negative_patch":  # a tropical patch at -0.5 x the rate
        values = good.copy()
        values[:, 8:10, 0:6] = -0.5 * good[:, 8:10, 0:6]
    elif case == "mislabelled_units":  # kg m-2 s-1 data labelled g m-2 d-1
        values, units = good, "g m-2 d-1"
    else:
        values = 100.0 * good
    path = _write(tmp_path / f"{case}_rh.nc", values=values, units=units, time_attrs=_std_attrs())
    with pytest.raises(InputError, match=message) as err:
        read_model(path, name=case)
    text = str(err.value)
    assert f"{case}_rh.nc" in text and "'rh'" in text and "got " in text
    if case == "mislabelled_units":
        # 60 Pg C/yr of kg m-2 s-1 read as g m-2 d-1: 60 x 1e-3 / 86400
        assert "'g m-2 d-1'" in text and "6.944e-07 Pg C yr-1" in text
    # the explicit per-model override reads it and says so
    model = read_model(path, name=case, skip_checks={"rh"})
    assert "plausibility checks of rh skipped on request" in model.notes
    assert read_model(path, name=case, skip_checks={"all"}).data["rh"].size


def test_plausible_ranges_are_documented():
    for canon, rng in PLAUSIBLE_TOTALS.items():
        assert 0 < rng.low < rng.high and rng.source and rng.units.startswith("Pg C"), canon


def test_360_day_file_without_calendar_is_inferred(tmp_path):
    rate = _rate(360.0)  # a 360-day year gives exactly TARGET_PG
    values = np.full((24, LAT.size, LON.size), rate)
    path = _write(tmp_path / "d360_rh.nc", values=values)  # 15, 45, ... 30-day steps, no calendar
    model = read_model(path, name="d360")
    assert _total(model) == pytest.approx(TARGET_PG, rel=1e-9)  # read as standard: +1.39 %
    assert any("inferred '360_day'" in n for n in model.notes)
    explicit = _write(
        tmp_path / "e360_rh.nc",
        values=values,
        time_attrs={"units": "days since 2001-01-01", "calendar": "360_day"},
    )
    assert _total(read_model(explicit)) == pytest.approx(_total(model), rel=1e-12)


def test_standard_without_calendar_is_inferred_when_unambiguous(tmp_path):
    model = read_model(_write(tmp_path / "std_rh.nc", time=_standard_days()), name="std")
    assert any("inferred 'standard'" in n for n in model.notes)
    assert _total(model) == pytest.approx(TARGET_PG, rel=1e-9)


def test_calendar_inference_refuses_what_it_cannot_tell(tmp_path):
    # mid-month days of 2003-2004 (a leap February): standard and noleap both fit, weights differ
    days = _standard_days(4)[24:] + 0.0
    ds = xr.Dataset(coords={"time": ("time", days, {"units": "days since 2001-01-01"})})
    with pytest.raises(InputError, match="several calendars") as err:
        infer_calendar(ds, file="leap.nc")
    assert "leap.nc" in str(err.value) and "standard" in str(err.value)
    # daily steps: no monthly or annual axis in any calendar
    daily = xr.Dataset(
        coords={"time": ("time", np.arange(40.0), {"units": "days since 2001-01-01"})}
    )
    with pytest.raises(InputError, match="cannot be inferred"):
        infer_calendar(daily, file="daily.nc")
    # bounds decide: 30-day bounds on 360-day steps
    bnds = np.stack([30.0 * np.arange(24), 30.0 * np.arange(1, 25)], axis=1)
    with_bounds = xr.Dataset(
        {"time_bnds": (("time", "nv"), bnds)},
        coords={
            "time": (
                "time",
                bnds.mean(1),
                {"units": "days since 2001-01-01", "bounds": "time_bnds"},
            )
        },
    )
    assert infer_calendar(with_bounds, file="b.nc") == "360_day"
    # a calendar attribute is never second-guessed
    ds["time"].attrs["calendar"] = "noleap"
    assert infer_calendar(ds, file="x.nc") is None


def test_cli_refuses_then_accepts_with_override(tmp_path):
    from typer.testing import CliRunner

    from srgpu.cli import app
    from tests.test_compare_synthetic import write_store

    store = write_store(tmp_path / "ensemble.zarr")
    bad = _write(tmp_path / "neg_rh.nc", values=-np.full((24, 18, 36), _rate(365.0)))
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(store), "--model", f"NEG={bad}"])
    assert result.exit_code == 2
    assert "neg_rh.nc" in result.output and "'rh'" in result.output and "negative" in result.output
    result = runner.invoke(
        app,
        ["compare", str(store), "--model", f"NEG={bad}", "--skip-checks", "NEG=rh"],
    )
    assert result.exit_code == 0, result.output
    assert "NEG: plausibility checks of rh skipped on request" in result.output
    result = runner.invoke(
        app, ["compare", str(store), "--model", f"NEG={bad}", "--skip-checks", "OTHER"]
    )
    assert result.exit_code == 2 and "no --model named 'OTHER'" in result.output
    result = runner.invoke(
        app, ["compare", str(store), "--model", f"NEG={bad}", "--skip-checks", "NEG=rhh"]
    )
    assert result.exit_code == 2 and "unknown variable(s) ['rhh']" in result.output


def test_broken_calendar_message_is_complete(tmp_path):
    path = _write(
        tmp_path / "cal_rh.nc",
        time_attrs={"units": "days since 2001-01-01", "calendar": "martian"},
    )
    with pytest.raises(InputError) as err:
        read_model(path)
    text = str(err.value)
    assert "time cannot be decoded: unable to decode time units" in text
    assert "'martian'" in text and text.endswith("(standard, noleap, 360_day, ...)")
    assert "decode_times=False" not in text  # xarray's advice to programmers is dropped
