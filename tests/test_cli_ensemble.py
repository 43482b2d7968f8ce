"""``srgpu ensemble`` through typer's CliRunner: config precedence, output, bad input."""

from __future__ import annotations

import json
import tomllib

from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli.ensemble import build_config
from srgpu.config import EnsembleConfig, ForestConfig

runner = CliRunner()


def test_flag_overrides_config_file(tmp_path):
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text(
        EnsembleConfig(replicates=7, seed=3, forest=ForestConfig(trees=11)).to_toml()
    )
    cfg = build_config(config_file=cfg_file, seed=9, predictors=["SR=MAT,Prec"])
    assert cfg.replicates == 7 and cfg.seed == 9 and cfg.forest.trees == 11
    assert cfg.predictors_for("SR") == ("MAT", "Prec")
    assert cfg.predictors_for("HR") == EnsembleConfig().predictors_for("HR")


def test_toml_round_trip():
    cfg = EnsembleConfig(
        srdb="a.csv",
        drivers=("b.nc", "c.nc"),
        variables=(("tas", "t2m"),),
        sampling="equal",
        predictors=(("SR", ("MAT",)), ("HR", ("MAT", "PAR"))),
        forest=ForestConfig(mtry=2, trainer="sklearn"),
    )
    again = EnsembleConfig.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg and again.hash() == cfg.hash()
    assert 'trainer = "sklearn"' in cfg.to_toml()
    assert cfg.hash() != cfg.replace(forest=ForestConfig(mtry=2)).hash()  # numba is the default


def test_trainer_flag_and_bad_trainer(tmp_path):
    assert build_config(config_file=None, trainer="sklearn").forest.trainer == "sklearn"
    assert build_config(config_file=None).forest.trainer == "numba"
    res = runner.invoke(app, ["ensemble", "--trainer", "bogus", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "forest.trainer" in res.output
    assert not (tmp_path / "o").exists()


def test_demo_run_writes_store_and_summary(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "ensemble",
            "--replicates",
            "2",
            "--trees",
            "10",
            "--batch-size",
            "2",
            "--out",
            str(out),
            "--seed",
            "5",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Global totals" in res.output and "truth" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["seed"] == 5 and summary["config"]["forest"]["trees"] == 10
    assert summary["n_replicates"] == 2
    # the effective config is stored in the Zarr store too
    import xarray as xr

    ds = xr.open_zarr(out / "ensemble.zarr")
    assert tomllib.loads(ds.attrs["config"])["seed"] == 5


def test_same_out_other_config_exits_2_without_overwrite(tmp_path):
    out = str(tmp_path / "o")
    args = ["ensemble", "--replicates", "1", "--trees", "5", "--out", out, "--quiet"]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, [*args[:-1], "--seed", "77", "--quiet"])
    assert res.exit_code == 2
    assert "different config" in res.output and "Traceback" not in res.output
    assert runner.invoke(app, [*args, "--seed", "77", "--overwrite"]).exit_code == 0


def test_bad_inputs_exit_2_with_one_line(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("Record_number,Latitude\n1,2\n")
    cases = [
        (["--predictors", "SR=MAT,Foo"], "Foo"),
        (["--predictors", "XR=MAT"], "XR"),
        (["--sampling", "random"], "sampling"),
        (["--backend", "tpu"], "backend"),
        (["--srdb", str(bad_csv), "--drivers", str(tmp_path / "none.nc")], "Study_number"),
    ]
    for extra, needle in cases:
        res = runner.invoke(app, ["ensemble", "--out", str(tmp_path / "x"), "--quiet", *extra])
        assert res.exit_code == 2, (extra, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("srgpu: error:"), res.output
        assert needle in lines[0]
    assert not (tmp_path / "x" / "summary.json").exists()
