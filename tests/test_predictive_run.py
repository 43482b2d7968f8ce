"""The predictive distribution inside a run (``config.predictive = "moments"``): the store's
per-replicate moments, their pooled SD map, the summary keys and the held-out calibration,
checked against independent recomputations from the library and from the store's own rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.constants import G_PER_PG
from srgpu.data.inputs import prepare_inputs
from srgpu.forest.predictive import heldout_calibration, leaf_tables, predictive_moments
from srgpu.run.ensemble import run_ensemble
from srgpu.run.replicate import train_replicate
from srgpu.schema import (
    CALIBRATION,
    CALIBRATION_METRICS,
    SITE_FOREST_MEAN,
    SITE_HELDOUT,
    flux_var,
)

CFG = EnsembleConfig(replicates=4, batch_size=2, forest=ForestConfig(trees=25))


@pytest.fixture(scope="module")
def inputs():
    return prepare_inputs(CFG)


@pytest.fixture(scope="module")
def run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("pred")
    summary = run_ensemble(CFG, out=out, inputs=inputs)
    return out, summary, xr.open_zarr(out / "ensemble.zarr", consolidated=False).load()


def test_default_is_moments():
    assert EnsembleConfig().predictive == "moments"


def test_replicate_rows_equal_the_library_on_a_regrown_forest(run, inputs):
    """Replicate 3's stored moments and calibration = the library applied to the same forest,
    re-grown from its seed (an independent path through srgpu.forest.predictive)."""
    _, _, ds = run
    for j, flux in enumerate(("SR", "HR")):
        forest, split = train_replicate(inputs, CFG, replicate=3, flux=flux)
        data = inputs.fluxes[flux]
        tables = leaf_tables([forest], X=data.X, y=data.y, train_index=[split.train])
        pm = predictive_moments(tables, inputs.grid_X[flux])
        shape = (inputs.n_years, inputs.n_cells)
        np.testing.assert_array_equal(
            ds[flux_var(flux, "pred_replicate_mean")].values[3],
            pm.mean[0].reshape(shape).mean(axis=0).astype(np.float32),
        )
        cal = heldout_calibration(tables, data.X[split.test], data.y[split.test])
        row = ds[CALIBRATION].values[3, j]
        assert row[CALIBRATION_METRICS.index("crps")] == pytest.approx(cal["crps"], rel=1e-12)
        assert row[CALIBRATION_METRICS.index("coverage_0.9")] == cal["coverage"]["0.9"]


def test_pooled_sd_map_is_the_equal_mixture_of_the_stored_rows(run, inputs):
    _, summary, ds = run
    w = inputs.weight_m2
    for flux in ("SR", "HR"):
        m1 = ds[flux_var(flux, "pred_replicate_mean")].values.astype(np.float64)
        m2 = ds[flux_var(flux, "pred_replicate_second")].values.astype(np.float64)
        # mixture of 4 equally weighted components: E[Y] and E[Y^2] are plain means
        mean = m1.sum(axis=0) / 4
        sd = np.sqrt(np.clip(m2.sum(axis=0) / 4 - mean**2, 0, None))
        grid = ds[flux_var(flux, "pred_sd")].values[inputs.cell_ilat, inputs.cell_ilon]
        np.testing.assert_allclose(grid, sd, rtol=1e-12, atol=1e-9)
        got = summary["fluxes"][flux]["predictive"]["integrated_sd_pg_per_yr"]
        assert got == pytest.approx(float((sd * w).sum() / G_PER_PG), rel=1e-12)
        assert ds[flux_var(flux, "pred_sd")].attrs["units"] == "g m-2 yr-1"
        assert "cell_methods" in ds[flux_var(flux, "pred_sd")].attrs


def test_predictive_sd_is_of_the_observation_scale_not_the_replicate_spread(run):
    """The predictive SD of one observation is many times the spread of the replicate means
    (demo, 4 x 25 trees: about 10x); the paper's uncertainty is of the first kind."""
    _, summary, _ = run
    for flux in ("SR", "HR"):
        s = summary["fluxes"][flux]
        assert s["predictive"]["integrated_sd_pg_per_yr"] > 3 * s["integrated_sd_pg_per_yr"]


def test_summary_keys_and_ar(run):
    out, summary, _ = run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["fluxes"]["AR"]["predictive"] is None  # no joint SR/HR distribution
    for flux in ("SR", "HR"):
        p = on_disk["fluxes"][flux]["predictive"]
        assert set(p) >= {
            "integrated_sd_pg_per_yr",
            "integrated_mad_pg_per_yr",
            "integrated_mad_scaled_pg_per_yr",
        }
        cal = on_disk["calibration"][flux]
        assert set(cal["coverage"]) == {"0.5", "0.9", "0.95"}
        spread = on_disk["calibration_spread"][flux]
        # the same keys, but the leaf membership: the spread band has none
        assert cal["membership"] == p["membership"] == "all"
        assert set(spread) >= set(cal) - {"membership"} and "membership" not in spread
        assert set(spread["coverage"]) == set(cal["coverage"])
        assert len(cal["pit_hist"]) == 10 and sum(cal["pit_hist"]) == pytest.approx(1.0)
        assert cal["crps"]["mean"] > 0
        # coverage is a share, and wider intervals cover more
        c = [cal["coverage"][k]["mean"] for k in ("0.5", "0.9", "0.95")]
        assert 0 < c[0] < c[1] <= c[2] <= 1


def test_batch_size_does_not_change_the_predictive_rows(run, inputs, tmp_path):
    _, _, ds = run
    other = run_ensemble(CFG.replace(batch_size=4), out=tmp_path / "b4", inputs=inputs)
    ds4 = xr.open_zarr(tmp_path / "b4" / "ensemble.zarr", consolidated=False)
    for name in (
        flux_var("SR", "pred_replicate_second"),
        CALIBRATION,
        SITE_FOREST_MEAN,
        SITE_HELDOUT,
    ):
        np.testing.assert_array_equal(ds4[name].values, ds[name].values)
    assert other["calibration"] == run[1]["calibration"]
    assert other["calibration_spread"] == run[1]["calibration_spread"]


def test_none_writes_no_predictive_variables(inputs, tmp_path):
    summary = run_ensemble(
        CFG.replace(predictive="none", replicates=2), out=tmp_path / "none", inputs=inputs
    )
    ds = xr.open_zarr(tmp_path / "none" / "ensemble.zarr", consolidated=False)
    assert flux_var("SR", "pred_sd") not in ds and CALIBRATION not in ds
    assert SITE_FOREST_MEAN not in ds and SITE_HELDOUT not in ds
    assert summary["fluxes"]["SR"]["predictive"] is None and "calibration" not in summary
    assert "calibration_spread" not in summary
