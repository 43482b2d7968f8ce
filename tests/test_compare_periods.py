"""Issue 16 item 1: the ensemble and every model are compared over the same years."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.analysis.compare import compare
from srgpu.analysis.compare.periods import comparison_period
from srgpu.cli import app
from srgpu.errors import InputError
from tests.test_compare_synthetic import write_model, write_store


def _cut_years(directory, first: int, last: int) -> None:
    """Keep only ``first``..``last`` in every file with a time axis of a model directory."""
    for path in sorted(directory.glob("*.nc")):
        with xr.open_dataset(path, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True)) as ds:
            ds = ds.load()
        if "time" in ds.dims:
            years = ds["time"].dt.year
            ds = ds.sel(time=(years >= first) & (years <= last))
        ds.to_netcdf(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("periods")
    store_path = write_store(tmp / "ensemble.zarr")
    store = xr.open_zarr(store_path, consolidated=False).load()
    model = write_model(tmp / "m", store, scale=1.0, name="m", variables=("rh", "raRoot"))
    _cut_years(model, 2001, 2002)  # the ensemble has 2000-2002
    return tmp, store_path, store, model


def _row(df, source, flux):
    sel = df[(df["source"] == source) & (df["flux"] == flux)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_period_is_the_overlap_and_every_score_uses_it(setup):
    _, store_path, store, model = setup
    result = compare(store_path, {"M": model})
    cmp, tables = result.comparison, result.tables
    assert cmp.period.years == (2001, 2002) and cmp.period.label == "2001-2002"
    assert not cmp.period.full and cmp.periods["M"] == (2001, 2002)
    totals = tables["global_totals"]
    rf = _row(totals, "RF", "SR")
    expected = store["SR_replicate_total"].sel(year=[2001, 2002]).mean("year").mean()
    assert rf["total_pg"] == pytest.approx(float(expected), rel=1e-12)
    assert rf["period"] == "2001-2002"
    # the model is the ensemble of the same years: no difference anywhere
    # (over all three years the ensemble is 1.5 % lower and the model would look biased)
    for flux in ("SR", "HR", "AR"):
        m = _row(totals, "M", flux)
        assert m["period"] == "2001-2002"
        assert abs(m["diff_pct"]) < 1e-3, flux
        assert m["total_domain_pg"] == pytest.approx(_row(totals, "RF", flux)["total_domain_pg"])
        t = _row(tables["taylor"], "M", flux)
        assert abs(t["bias_pct"]) < 1e-3 and t["r"] == pytest.approx(1.0, abs=1e-9)
        u = _row(tables["uncertainty_scores"], "M", flux)
        assert u["mean_abs_z"] < 1e-3 and u["within_2sd"] == pytest.approx(1.0)
    # zonal profiles and biomes: the same per-band / per-bin values for RF and the model
    prof = (
        tables["latitudinal_profiles"]
        .query("flux == 'SR'")
        .pivot(index="lat", columns="source", values="zonal_total_tg")
    )
    np.testing.assert_allclose(prof["M"], prof["RF"], rtol=1e-4, atol=1e-9)
    # replicate maps are all-year means: no zonal band for a sub-period
    assert tables["latitudinal_profiles"].query("source == 'RF'")["rf_q025"].isna().all()
    biomes = (
        tables["biome_totals"]
        .query("flux == 'HR'")
        .pivot(index="bin", columns="source", values="value")
    )
    np.testing.assert_allclose(biomes["M"], biomes["RF"], rtol=1e-4)
    # the SD over a sub-period: the mean of the yearly SDs
    np.testing.assert_allclose(
        cmp.rf_sd["SR"].values,
        store["SR_sd"].sel(year=[2001, 2002]).mean("year").where(store["domain"]).values,
    )


def test_years_option_cuts_the_overlap_and_disjoint_years_fail(setup):
    tmp, store_path, store, model = setup
    result = compare(store_path, {"M": model}, years=(2002, 2010))
    cmp, tables = result.comparison, result.tables
    assert cmp.period.years == (2002,)
    assert _row(tables["global_totals"], "RF", "HR")["period"] == "2002"
    late = write_model(tmp / "late", store, scale=1.0, name="late", variables=("rh",))
    _cut_years(late, 2000, 2000)
    with pytest.raises(InputError, match="no year shared") as err:
        compare(store_path, {"M": model, "LATE": late})
    assert "M 2001-2002" in str(err.value) and "LATE 2000-2000" in str(err.value)


def test_comparison_period_rules():
    p = comparison_period(ensemble_years=None, model_years={"a": [1990, 1991], "b": None})
    assert p.years == (1990, 1991) and p.full and p.ensemble_label == "climatology"
    p = comparison_period(ensemble_years=[2000, 2001], model_years={"a": [1999, 2000, 2001]})
    assert p.full and p.label == "2000-2001"
    with pytest.raises(InputError, match="no year shared"):
        comparison_period(ensemble_years=[2000], model_years={"a": [2000]}, requested=(2005, 2006))


def test_cli_prints_and_writes_the_period(setup, tmp_path):
    _, store_path, _, model = setup
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["compare", str(store_path), "--model", f"M={model}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "comparison period: 2001-2002" in result.output
    meta = json.loads((out / "compare.json").read_text())
    assert meta["period"]["years"] == [2001, 2002] and meta["period"]["ensemble_years"] == [
        2000,
        2001,
        2002,
    ]
    totals = pd.read_csv(out / "global_totals.csv")
    assert set(totals["period"]) == {"2001-2002"}
