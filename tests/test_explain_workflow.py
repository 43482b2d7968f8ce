"""``srgpu explain``'s workflow as library calls (plan -> run -> write) on a tiny demo run."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.explain import explain_flux, explain_run, plan_explain
from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
from srgpu.errors import ConfigError

TINY = EnsembleConfig(
    replicates=2,
    batch_size=2,
    forest=ForestConfig(trees=5),
    predict=PredictConfig(engine="sklearn"),
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path_factory.mktemp("run")
    run_ensemble(TINY, out=out)
    return out


def test_plan_checks_the_request(run_dir):
    plan = plan_explain(run_dir / "ensemble.zarr", replicates=10, fluxes=["HR"])
    assert plan.replicates == 2 and plan.n_replicates == 2 and plan.fluxes == ("HR",)
    assert plan.run.out == run_dir
    with pytest.raises(ConfigError):
        plan_explain(run_dir, replicates=0)
    with pytest.raises(ConfigError):
        plan_explain(run_dir, fluxes=["AR"])


def test_explain_run_is_explain_flux_of_the_stored_config(run_dir):
    from srgpu.data.inputs import prepare_inputs

    plan = plan_explain(run_dir, replicates=1, fluxes=["SR"])
    result = explain_run(plan, engine="sklearn", repeats=2, points=3, rows=40)
    direct = explain_flux(
        prepare_inputs(plan.config), plan.config, flux="SR", replicates=[0], repeats=2,
        points=3, rows=40,
    )  # fmt: skip
    np.testing.assert_array_equal(result.explanations[0].permutation, direct.permutation)
    path, figs = result.write()
    assert path == run_dir / "explain.nc" and len(figs) == 3
    ds = xr.open_dataset(path)
    assert ds["SR_perm_importance"].attrs["units"] == "g C m-2 yr-1"
    assert any(line.startswith("SR permutation importance") for line in result.summary_lines())
