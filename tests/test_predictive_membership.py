"""``predictive_membership`` (config key, ``--membership`` flag): its constraint, the unchanged
hash of configs written before it, and a run with ``"oob"`` whose stored rows, pooled
quantiles and summary equal the library's on the same (re-grown) forests."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.config import PARAMETERS, EnsembleConfig, ForestConfig, TrainConfig
from srgpu.errors import ConfigError
from srgpu.forest import predictive as P
from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

# sha256 of two configs computed before the key existed (srgpu at the commit before it): a
# store written then must still resume, so its config must hash the same
OLD_HASHES = {
    "default": "f3e1076d2690684caf7baa0c6aebff4b7780008714421982cdb9a861af24bbd0",
    "quantiles_3": "d71bf8add59b2c7e60dc93dcee0b2c12994c9576a4f3773fca7ffced335b22f3",
}


def test_default_is_all_and_old_configs_keep_their_hash(tmp_path):
    plain = EnsembleConfig()
    assert plain.predictive_membership == "all"
    assert plain.hash() == OLD_HASHES["default"]
    q = EnsembleConfig(predictive="quantiles", replicates=3)
    assert q.hash() == OLD_HASHES["quantiles_3"]
    assert "predictive_membership" not in plain.to_dict()
    assert "predictive_membership" not in plain.to_toml()
    oob = plain.replace(predictive_membership="oob")
    assert oob.hash() != plain.hash() and oob.to_dict()["predictive_membership"] == "oob"
    path = tmp_path / "c.toml"
    path.write_text(oob.to_toml())
    back = EnsembleConfig.from_toml(path)
    assert back == oob and back.hash() == oob.hash()
    assert PARAMETERS["predictive_membership"].choices == P.MEMBERSHIPS == ("all", "inbag", "oob")


def test_a_changed_membership_is_named():
    from srgpu.config_diff import config_diff, describe_config_diff

    old = EnsembleConfig()
    new = old.replace(predictive_membership="oob")
    assert describe_config_diff(old, new) == "predictive_membership all -> oob"
    assert config_diff(old, old) == {}


def test_membership_constraints_name_both_keys():
    with pytest.raises(ConfigError, match=r"predictive_membership = 'honest': expected one of"):
        EnsembleConfig(predictive_membership="honest")
    with pytest.raises(ConfigError, match=r"'oob' with forest.bootstrap = false"):
        EnsembleConfig(predictive_membership="oob", forest=ForestConfig(bootstrap=False))
    assert EnsembleConfig(predictive_membership="inbag", forest=ForestConfig(bootstrap=False))
    for m in ("oob", "inbag"):
        with pytest.raises(ConfigError, match=rf"'{m}' with train.trainer = 'cuml'"):
            EnsembleConfig(predictive_membership=m, train=TrainConfig(device="gpu"))
        with pytest.raises(ConfigError, match=rf"'{m}' with predictive = 'none'"):
            EnsembleConfig(predictive_membership=m, predictive="none")
    assert EnsembleConfig(predictive="none").predictive_membership == "all"


def test_cli_flag(tmp_path):
    from typer.testing import CliRunner

    from srgpu.cli import app
    from srgpu.cli.ensemble import build_config

    cfg = build_config(config_file=None, membership="oob")
    assert cfg.predictive_membership == "oob"
    assert build_config(config_file=None).predictive_membership == "all"
    with pytest.raises(ConfigError, match=r"--membership: predictive_membership = 'x'"):
        build_config(config_file=None, membership="x")
    out = tmp_path / "o"
    for args, needle in (
        (["--membership", "x"], "--membership: predictive_membership = 'x'"),
        (["--membership", "oob", "--predictive", "none"], "with predictive = 'none'"),
    ):
        res = CliRunner().invoke(app, ["ensemble", "--out", str(out), "--quiet", *args])
        assert res.exit_code == 2 and needle in res.output, res.output
    assert not out.exists()  # refused before anything is written


CFG = EnsembleConfig(
    replicates=2,
    batch_size=2,
    forest=ForestConfig(trees=25),
    predictive="quantiles",
    predictive_membership="oob",
)


@pytest.fixture(scope="module")
def oob_run(tmp_path_factory):
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.ensemble import run_ensemble

    inputs = prepare_inputs(CFG)
    out = tmp_path_factory.mktemp("oob")
    summary = run_ensemble(CFG, out=out, inputs=inputs)
    return inputs, summary, xr.open_zarr(out / "ensemble.zarr", consolidated=False).load()


def test_oob_run_equals_the_library_on_the_regrown_forests(oob_run):
    """The run's per-replicate moments and calibration and its pooled median are those of
    ``membership="oob"`` tables of the same forests, re-grown from their seeds, with the
    bootstrap counts replayed (an independent path through srgpu.forest.predictive)."""
    from srgpu.run.replicate import train_replicate
    from srgpu.schema import CALIBRATION, CALIBRATION_METRICS, flux_var

    inputs, summary, ds = oob_run
    shape = (inputs.n_years, inputs.n_cells)
    for j, flux in enumerate(("SR", "HR")):
        data = inputs.fluxes[flux]
        tables = []
        for r in range(2):
            forest, split = train_replicate(inputs, CFG, replicate=r, flux=flux)
            seed = replicate_seed(CFG.seed, r, flux, PURPOSE_FOREST)
            inbag = P.inbag_counts(n_train=split.train.size, forest=CFG.forest, seed=seed)
            t = P.leaf_tables(
                [forest], X=data.X, y=data.y, train_index=[split.train], membership="oob",
                inbag=[inbag],
            )  # fmt: skip
            tables.append(t)
            pm = P.predictive_moments(t, inputs.grid_X[flux])
            np.testing.assert_array_equal(
                ds[flux_var(flux, "pred_replicate_mean")].values[r],
                pm.mean[0].reshape(shape).mean(axis=0).astype(np.float32),
            )
            cal = P.heldout_calibration(t, data.X[split.test], data.y[split.test])
            row = ds[CALIBRATION].values[r, j]
            assert row[CALIBRATION_METRICS.index("crps")] == pytest.approx(cal["crps"], rel=1e-12)
            assert row[CALIBRATION_METRICS.index("coverage_0.5")] == cal["coverage"]["0.5"]
            # and not the "all" distribution's (the membership reached the run)
            every = P.leaf_tables([forest], X=data.X, y=data.y, train_index=[split.train])
            alt = P.heldout_calibration(every, data.X[split.test], data.y[split.test])
            assert alt["crps"] != pytest.approx(cal["crps"], rel=1e-6)
        # pooled: the cell-year weights of both forests, each year 1 / n_years
        acc = P.WeightAccumulator.zeros(n_rows=inputs.n_cells, n_records=int(data.y.size))
        rows = np.arange(inputs.n_years * inputs.n_cells)
        for t in tables:
            acc.add(
                t, inputs.grid_X[flux], dest=rows % inputs.n_cells, share=1 / inputs.n_years,
                n_forests=2,
            )  # fmt: skip
        med = acc.summary(tables[0].y_sorted).median
        grid = ds[flux_var(flux, "pred_median")].values[inputs.cell_ilat, inputs.cell_ilon]
        assert np.isfinite(med).all()
        # measured: equal bit for bit (the same adds; another batch size may round differently)
        np.testing.assert_allclose(grid, med, rtol=1e-12)
        assert summary["calibration"][flux]["membership"] == "oob"
        assert summary["fluxes"][flux]["predictive"]["membership"] == "oob"
        assert "out-of-bag" in summary["fluxes"][flux]["predictive"]["definition"]
    assert summary["config"]["predictive_membership"] == "oob"


def test_a_run_refuses_a_forest_without_a_distribution_at_a_grid_row():
    from srgpu.run.predictive import _check_defined, predictive_batch

    _check_defined(np.array([1.0, 2.0]), "SR", 3)  # defined everywhere: nothing to say
    with pytest.raises(ConfigError, match=r"SR forest of replicate 3 .* at 1 grid row"):
        _check_defined(np.array([1.0, np.nan]), "SR", 3)
    with pytest.raises(ConfigError, match="fused walk"):
        predictive_batch({}, None, leaf_moments={}, config=CFG, replicates=range(2))


def test_the_report_and_console_name_the_membership(oob_run, capsys):
    from srgpu.analysis.report.uncertainty import membership_sentence, uncertainty_html
    from srgpu.cli.ensemble import print_predictive

    _, summary, ds = oob_run
    sentence = membership_sentence(summary)
    assert sentence.startswith("Leaf membership: oob: the weights read each tree's out-of-bag")
    assert "Leaf membership: oob" in uncertainty_html(ds, summary)
    old = {"calibration": {"SR": {}}}  # a summary written before the setting
    assert membership_sentence(old).startswith("Leaf membership: all (the default, the paper's)")
    print_predictive(summary)
    assert "leaf membership oob" in " ".join(capsys.readouterr().out.split())
