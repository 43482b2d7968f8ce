"""``srgpu ensemble`` through typer's CliRunner: config precedence, output, bad input."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli.ensemble import build_config
from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig, TrainConfig
from srgpu.errors import ConfigError

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
        forest=ForestConfig(mtry=2),
        train=TrainConfig(device="cpu", trainer="sklearn"),
        predict=PredictConfig(engine="nvforest"),
    )
    again = EnsembleConfig.from_dict(tomllib.loads(cfg.to_toml()))
    assert again == cfg and again.hash() == cfg.hash()
    text = cfg.to_toml()
    assert '[train]\ndevice = "cpu"\ntrainer = "sklearn"\n' in text
    assert '[predict]\ndevice = "auto"\nengine = "nvforest"\n' in text
    assert cfg.hash() != cfg.replace(train=TrainConfig(device="cpu")).hash()  # auto: numba


def test_trainer_flag_and_bad_trainer(tmp_path):
    assert build_config(config_file=None, trainer="sklearn").train.trainer == "sklearn"
    assert build_config(config_file=None).train == TrainConfig(device="auto", trainer="auto")
    res = runner.invoke(app, ["ensemble", "--trainer", "bogus", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "train.trainer" in res.output
    assert not (tmp_path / "o").exists()


def test_device_flag_sets_both_stages_and_stage_flags_win():
    cfg = build_config(config_file=None, device="cpu")
    assert cfg.train == TrainConfig(device="cpu") and cfg.predict == PredictConfig(device="cpu")
    assert cfg.train.resolved == ("cpu", "numba")
    cfg = build_config(config_file=None, device="gpu", predict_device="cpu", engine="sklearn")
    assert cfg.train == TrainConfig(device="gpu") and cfg.train.resolved == ("gpu", "cuml")
    assert cfg.predict == PredictConfig(device="cpu", engine="sklearn")
    cfg = build_config(config_file=None, train_device="cpu", trainer="numba-exact")
    assert cfg.train == TrainConfig(device="cpu", trainer="numba-exact")
    assert cfg.predict == PredictConfig()


def test_flags_override_the_config_files_stage_tables(tmp_path):
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text('[train]\ntrainer = "sklearn"\n[predict]\nengine = "numba"\n')
    cfg = build_config(config_file=cfg_file, engine="sklearn", train_device="cpu")
    assert cfg.train == TrainConfig(device="cpu", trainer="sklearn")
    assert cfg.predict == PredictConfig(engine="sklearn")


def test_deprecated_backend_and_train_on_flags_say_the_new_flag():
    notes: list[str] = []
    cfg = build_config(config_file=None, backend="cpu", train_on="gpu", notice=notes.append)
    assert cfg.predict == PredictConfig(device="cpu") and cfg.train == TrainConfig(device="gpu")
    assert notes == [
        "--backend is deprecated: use --predict-device (or --device for both stages)",
        "--train-on is deprecated: use --train-device (or --device for both stages)",
    ]
    with pytest.raises(ConfigError, match="--backend and --predict-device"):
        build_config(config_file=None, backend="cpu", predict_device="gpu", notice=notes.append)


def test_deprecated_flag_on_the_command_line_prints_one_note(tmp_path):
    out = tmp_path / "o"
    args = ["ensemble", "--replicates", "1", "--trees", "3", "--backend", "cpu"]
    res = runner.invoke(app, [*args, "--quiet", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.stderr.strip().splitlines() == [
        "srgpu: --backend is deprecated: use --predict-device (or --device for both stages)"
    ]
    stored = json.loads((out / "summary.json").read_text())["config"]
    assert stored["predict"] == {"device": "cpu", "engine": "auto"}


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
        (["--device", "tpu"], "--device"),
        (["--srdb", str(bad_csv), "--drivers", str(tmp_path / "none.nc")], "Study_number"),
    ]
    for extra, needle in cases:
        res = runner.invoke(app, ["ensemble", "--out", str(tmp_path / "x"), "--quiet", *extra])
        assert res.exit_code == 2, (extra, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("srgpu: error:"), res.output
        assert needle in lines[0]
    assert not (tmp_path / "x" / "summary.json").exists()
