"""Known-answer scores: models = ensemble x scale, so biases, totals and Taylor statistics are
known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.analysis.compare import compare
from srgpu.analysis.compare.reference import RF_VALUES, TEN_MODELS, model_table, reference_table
from srgpu.analysis.compare.scores import comparison_maps
from tests.test_compare_synthetic import SD_FRACTION, write_model, write_store

SCALES = {"hi": 1.2, "lo": 0.8, "same": 1.0}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    store_path = write_store(tmp / "ensemble.zarr")
    import xarray as xr

    store = xr.open_zarr(store_path, consolidated=False).load()
    models = {}
    for name, scale in SCALES.items():
        variables = ("rh", "raRoot", "gpp", "npp", "cSoil")
        models[name] = write_model(tmp / name, store, scale=scale, name=name, variables=variables)
    return compare(store_path, models)


def _row(df, source, flux):
    sel = df[(df["source"] == source) & (df["flux"] == flux)]
    assert len(sel) == 1, (source, flux)
    return sel.iloc[0]


@pytest.mark.parametrize("name", list(SCALES))
@pytest.mark.parametrize("flux", ["SR", "HR", "AR"])
def test_global_totals(result, name, flux):
    _, tables = result
    df = tables["global_totals"]
    row, rf = _row(df, name, flux), _row(df, "RF", flux)
    scale = SCALES[name]
    assert row["total_pg"] == pytest.approx(scale * rf["rf_mean"], rel=1e-5)
    assert row["total_domain_pg"] == pytest.approx(scale * rf["total_domain_pg"], rel=1e-5)
    assert row["diff_pct"] == pytest.approx(100 * (scale - 1), abs=1e-3)
    assert bool(row["in_band"]) == (scale == 1.0)
    assert rf["rf_q025"] < rf["rf_mean"] < rf["rf_q975"]


@pytest.mark.parametrize("name", list(SCALES))
def test_taylor_and_uncertainty(result, name):
    _, tables = result
    scale = SCALES[name]
    for flux in ("SR", "HR", "AR"):
        t = _row(tables["taylor"], name, flux)
        assert t["sd_norm"] == pytest.approx(scale, rel=1e-5)
        assert t["r"] == pytest.approx(1.0, abs=1e-6)
        assert t["crmsd_norm"] == pytest.approx(abs(scale - 1), abs=1e-5)
        assert t["bias_pct"] == pytest.approx(100 * (scale - 1), abs=1e-3)
        # the Taylor identity
        crmsd2 = t["sd_ref"] ** 2 + t["sd_model"] ** 2 - 2 * t["sd_ref"] * t["sd_model"] * t["r"]
        assert t["crmsd"] ** 2 == pytest.approx(crmsd2, rel=1e-6, abs=1e-6)
        u = _row(tables["uncertainty_scores"], name, flux)
        z = abs(scale - 1) / SD_FRACTION
        assert u["mean_abs_z"] == pytest.approx(z, rel=1e-5, abs=1e-5)  # float32 files
        assert u["z_score"] == pytest.approx(np.exp(-z), rel=1e-5)
        assert u["within_2sd"] == pytest.approx(1.0 if z <= 2 else 0.0)
        expected = np.exp(-max(abs(scale - 1) - SD_FRACTION, 0))
        assert u["ilamb_bias_score"] == pytest.approx(expected, rel=1e-5)


def test_site_scores(result):
    _, tables = result
    df = tables["site_scores"]
    for flux in ("SR", "HR"):
        rf = _row(df, "RF", flux)
        assert rf["rmse"] == pytest.approx(0.0, abs=1e-9) and rf["r"] == pytest.approx(1.0)
        for name, scale in SCALES.items():
            row = _row(df, name, flux)
            assert row["n"] == rf["n"] > 5
            # the model uses the site year: sim = scale x obs exactly
            assert row["bias"] == pytest.approx((scale - 1) * row["obs_mean"], rel=1e-5, abs=1e-4)
            assert row["r"] == pytest.approx(1.0, abs=1e-6)


def test_profiles_biomes_relationships(result):
    cmp, tables = result
    prof = tables["latitudinal_profiles"]
    rf = prof[(prof["source"] == "RF") & (prof["flux"] == "SR")].set_index("lat")
    hi = prof[(prof["source"] == "hi") & (prof["flux"] == "SR")].set_index("lat")
    np.testing.assert_allclose(hi["zonal_total_tg"], 1.2 * rf["zonal_total_tg"], rtol=1e-5)
    np.testing.assert_allclose(hi["zonal_mean"], 1.2 * rf["zonal_mean"], rtol=1e-5)
    land = rf["zonal_total_tg"] > 0
    assert (rf.loc[land, "rf_q025"] <= rf.loc[land, "zonal_total_tg"] * 1.0001).all()
    # zonal totals add up to the domain total
    glob = _row(tables["global_totals"], "RF", "SR")["total_domain_pg"]
    assert rf["zonal_total_tg"].sum() * 1e-3 == pytest.approx(glob, rel=1e-9)

    cv = tables["biome_cv"]
    sr = cv[cv["flux"] == "SR"]
    assert (sr["n_models"] == 3).all()
    # scales 1.2, 0.8, 1.0: sd/mean = 0.2 exactly
    np.testing.assert_allclose(sr["cv_pct"], 20.0, rtol=1e-5)
    ratio = cv[cv["flux"] == "AR/SR"]
    np.testing.assert_allclose(ratio["cv_pct"], 0.0, atol=1e-4)

    rel = tables["relationships"].set_index(["y", "x"])
    # gpp = 3 SR and npp = 1.5 SR in every model: slopes 1/3 and 2/3, r = 1
    assert rel.loc[("SR", "gpp"), "slope"] == pytest.approx(1 / 3, rel=1e-5)
    assert rel.loc[("SR", "npp"), "slope"] == pytest.approx(2 / 3, rel=1e-5)
    assert rel.loc[("HR", "gpp"), "r"] == pytest.approx(1.0, abs=1e-6)
    assert rel.loc[("SR", "cLitter"), "n"] == 0 and np.isnan(rel.loc[("SR", "cLitter"), "slope"])
    g = tables["model_globals"].set_index("source")
    assert g.loc["hi", "AR_SR"] == pytest.approx(g.loc["RF", "AR_SR"], rel=1e-5)

    maps = comparison_maps(cmp)
    assert list(maps["source"].values) == ["RF", *SCALES]
    np.testing.assert_allclose(
        maps["SR"].sel(source="hi"), 1.2 * maps["SR"].sel(source="RF"), rtol=1e-5
    )
    np.testing.assert_allclose(
        maps["AR_SR"].sel(source="lo"), maps["AR_SR"].sel(source="RF"), rtol=1e-5
    )


def test_reference_table():
    table = model_table()
    assert len(table) == 4 * len(TEN_MODELS) == 40
    values = table.set_index(["model", "flux"])["value"]
    assert values[("CLASS-CTEM", "SR")] == 91.7 and values[("BEPS", "AR")] == 12.0
    assert values[("LPJ-GUESS", "AR/SR")] == 0.48
    assert np.isnan(values[("VEGAS", "SR")])  # not given in the text: missing, not invented
    assert table["value"].notna().sum() == 8
    ref = reference_table().set_index(["model", "flux"])["value"]
    assert ref[("ten-model mean", "SR")] == 76.9 and ref[("ten-model mean", "HR")] == 50.4
    assert ref[("ten-model mean", "AR")] == 26.5 and RF_VALUES["AR/SR"] == 0.41
    assert ref[("ten-model min", "SR")] == min(v for v in values.xs("SR", level=1) if v == v)


def test_ilamb_reference(tmp_path):
    from srgpu.analysis.compare import ilamb_reference
    from tests.test_compare_synthetic import make_store_dataset

    store = make_store_dataset()
    ds = ilamb_reference(store, flux="HR")
    assert ds["rh"].dims == ("time", "lat", "lon")
    assert ds["rh"].attrs["ancillary_variables"] == "rh_sd"
    assert ds["rh_sd"].dims == ds["rh"].dims
    assert ds["rh"].attrs["units"] == "kg m-2 s-1"
    back = float(ds["rh"].isel(time=0).max()) * 1e3 * 365.25 * 86400
    assert back == pytest.approx(float(store["HR"].max()), rel=1e-12)
    ds.to_netcdf(tmp_path / "rh.nc")
    import xarray as xr

    again = xr.open_dataset(tmp_path / "rh.nc", decode_times=xr.coders.CFDatetimeCoder(True))
    assert again["time"].attrs["bounds"] == "time_bnds"
    assert again["time_bnds"].values[0, 1].year == 2003
