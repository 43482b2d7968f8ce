"""``srgpu compare --band spread|predictive``: which uncertainty "within the ensemble's
uncertainty" uses, on the demo world with a synthetic model (the demo's own noise-free truth
written as CMOR-like files), and the fallback for stores without a predictive distribution."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.analysis.compare import compare
from srgpu.cli import app
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.data.inputs import prepare_inputs
from srgpu.errors import InputError
from srgpu.run.ensemble import run_ensemble
from tests.modelfiles import write_model_files
from tests.test_compare_synthetic import write_store

CFG = EnsembleConfig(replicates=4, batch_size=4, forest=ForestConfig(trees=20))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo run and its truth as a model: rh = true HR, raRoot = true SR - HR (>= 0), each
    year's annual value as 12 equal monthly rates (noleap, kg m-2 s-1), sftlf in %."""
    inputs = prepare_inputs(CFG)
    out = tmp_path_factory.mktemp("band")
    run_ensemble(CFG, out=out, inputs=inputs)
    store = xr.open_zarr(out / "ensemble.zarr", consolidated=False).load()
    truth = inputs.truth
    assert truth.sr.shape[1:] == (store.sizes["lat"], store.sizes["lon"])
    model = tmp_path_factory.mktemp("truth")
    write_model_files(model, store, {"rh": truth.hr.values, "raRoot": truth.ar.values}, prefix="T")
    return out, store, model


def _by_hand(cmp, store, flux, s_name, ref=None):
    """within_2sd and mean_abs_z from the regridded model, the store's map (or ``ref``) and
    ``s_name``."""
    w = (store["cell_area"] * store["land_fraction"]).where(store["domain"].astype(bool), 0.0)
    w = np.asarray(w.values, dtype=float)
    model = np.asarray(cmp.means["T"][flux].values, dtype=float)
    ref = np.asarray((store[flux] if ref is None else ref).values, dtype=float)
    s = np.asarray(store[s_name].values, dtype=float)
    ok = np.isfinite(model) & np.isfinite(ref) & np.isfinite(s) & (s > 0) & (w > 0)
    w = w[ok] / w[ok].sum()
    d = np.abs(model[ok] - ref[ok])
    return float(w @ (d <= 2 * s[ok])), float(w @ (d / s[ok]))


def test_both_bands_on_the_demo_by_hand(demo):
    """The scores use F_sd_map (spread) or F_pred_sd (predictive) as ``s``, recomputed by hand;
    AR keeps the spread under "predictive". The demo truth (4 replicates x 20 trees) lies within
    two replicate SDs on 48 % (SR) and 47 % (HR) of the area, within two predictive SDs on
    100 % and 99.8 % (measured; mean_abs_z 3.19 / 3.66 against 0.34 / 0.36)."""
    out, store, model = demo
    within = {}
    for band, kind in (("spread", "sd_map"), ("predictive", "pred_sd")):
        result = compare(out, {"T": model}, band=band)
        assert result.band == band
        assert result.meta["band"]["used"] == band and result.meta["band"]["requested"] == band
        u = result.tables["uncertainty_scores"].set_index("flux")
        for flux in ("SR", "HR", "AR"):
            used = kind if flux != "AR" else "sd_map"
            assert u.loc[flux, "band"] == ("spread" if used == "sd_map" else "predictive")
            w2, maz = _by_hand(result.comparison, store, flux, f"{flux}_{used}")
            assert u.loc[flux, "within_2sd"] == pytest.approx(w2, abs=1e-12)
            assert u.loc[flux, "mean_abs_z"] == pytest.approx(maz, rel=1e-12)
            within[band, flux] = w2
    for flux in ("SR", "HR"):
        assert within["spread", flux] < 0.6
        assert within["predictive", flux] > 0.95
    assert within["spread", "AR"] == within["predictive", "AR"]
    # the meta says which band and why AR differs
    result = compare(out, {"T": model}, band="predictive")
    assert result.meta["band"]["per_flux"] == {
        "SR": "predictive",
        "HR": "predictive",
        "AR": "spread",
    }
    assert any("AR" in n for n in result.meta["band"]["notes"])


def test_default_is_predictive_where_the_store_has_it(demo):
    out, _, model = demo
    result = compare(out, {"T": model})
    assert result.band == "predictive" and result.meta["band"]["requested"] is None


def test_store_without_predictive_falls_back_or_refuses(tmp_path):
    """A store without F_pred_sd (the synthetic one, like stores written before): the default
    falls back to the spread with a note; ``band="predictive"`` is an InputError."""
    from tests.test_compare_synthetic import make_store_dataset, write_model

    path = write_store(tmp_path / "ensemble.zarr")
    model = write_model(tmp_path / "M", make_store_dataset(), variables=("rh", "raRoot"))
    result = compare(path, {"M": model})
    assert result.band == "spread"
    assert any("no SR_pred_sd" in n for n in result.meta["band"]["notes"])
    assert set(result.tables["uncertainty_scores"]["band"]) == {"spread"}
    with pytest.raises(InputError, match="no predictive distribution"):
        compare(path, {"M": model}, band="predictive")
    with pytest.raises(InputError, match="unknown uncertainty band"):
        compare(path, {"M": model}, band="widest")


def test_cli_band_option(demo, tmp_path):
    out, _, model = demo
    runner = CliRunner()
    args = ["compare", str(out), "--model", f"T={model}"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert "uncertainty band: predictive" in result.output
    meta = json.loads((tmp_path / "p" / "compare.json").read_text())
    assert meta["band"]["used"] == "predictive"
    table = json.loads((tmp_path / "p" / "uncertainty_scores.json").read_text())
    assert {r["flux"]: r["band"] for r in table} == {
        "SR": "predictive",
        "HR": "predictive",
        "AR": "spread",
    }
    result = runner.invoke(app, [*args, "--band", "spread", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "uncertainty band: spread" in result.output
    assert json.loads((tmp_path / "s" / "compare.json").read_text())["band"]["used"] == "spread"
    result = runner.invoke(app, [*args, "--band", "widest", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown uncertainty band" in result.output


def test_sub_period_uses_the_whole_period_predictive_sd_with_a_note(demo):
    """Over one year the spread band is the year's SD (F_sd); the predictive SD exists for the
    run's whole period only: it is used as it is, and a note says so."""
    out, store, model = demo
    year = int(store["year"].values[0])
    result = compare(out, {"T": model}, band="predictive", years=(year, year))
    assert any("whole period" in n for n in result.meta["band"]["notes"])
    u = result.tables["uncertainty_scores"].set_index("flux")
    ref = store["SR_mean"].sel(year=[year]).mean("year")
    w2, maz = _by_hand(result.comparison, store, "SR", "SR_pred_sd", ref=ref)
    assert u.loc["SR", "within_2sd"] == pytest.approx(w2, abs=1e-12)
    assert u.loc["SR", "mean_abs_z"] == pytest.approx(maz, rel=1e-12)
