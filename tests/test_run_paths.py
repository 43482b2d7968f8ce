"""A finished run is re-read from any directory, and a config mismatch names the settings that
changed (issue 18, deliver 5 and the first half of deliver 6)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.config_diff import config_diff, describe_config_diff
from srgpu.constants import DEFAULT_SEED
from srgpu.data.demo import make_demo_world
from srgpu.errors import InputError
from srgpu.filters import ObservationFilter
from srgpu.provenance import RECORD_NAME, record_inputs, resolve_inputs


def test_config_diff_names_the_changed_keys():
    a = EnsembleConfig(replicates=32)
    assert config_diff(a, a) == {}
    b = a.replace(
        replicates=40,
        forest=ForestConfig(trees=200),
        observations=ObservationFilter(years=(1982, 2012)),
        predictors=(("SR", ("MAT", "Prec")), ("HR", ("MAT", "Prec", "RH", "PAR"))),
    )
    diff = config_diff(a, b)
    assert set(diff) == {
        "replicates",
        "forest.trees",
        "observations.years",
        "predictors.SR",
        "predictors.HR",
    }
    assert diff["replicates"] == (32, 40)
    assert diff["observations.years"] == (None, [1982, 2012])
    assert describe_config_diff(a, a.replace(replicates=40, seed=7)) == (
        f"replicates 32 -> 40; seed {DEFAULT_SEED} -> 7"
    )


@pytest.fixture
def demo_files(tmp_path):
    """The demo world as files in tmp_path/project (SRDB CSV, drivers, vegetation)."""
    world = make_demo_world(seed=0)
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    world.srdb.to_csv(project / "data" / "srdb.csv", index=False)
    world.drivers.to_netcdf(project / "data" / "drivers.nc")
    world.vegetation.to_netcdf(project / "data" / "veg.nc")
    return project


def _ensemble(project: Path, out: str, *extra: str):
    args = ["ensemble", "--srdb", "data/srdb.csv", "--drivers", "data/drivers.nc"]
    args += ["--vegetation", "data/veg.nc", "--replicates", "1", "--trees", "3", "--quiet"]
    return CliRunner().invoke(app, [*args, "--out", out, *extra])


def test_explain_runs_from_another_directory_and_names_a_moved_file(demo_files, tmp_path):
    old = Path.cwd()
    os.chdir(demo_files)
    try:
        res = _ensemble(demo_files, "runs/a")
        assert res.exit_code == 0, res.output
        record = json.loads((demo_files / "runs" / "a" / RECORD_NAME).read_text())
        assert record["files"]["data/srdb.csv"]["path"] == str(demo_files / "data" / "srdb.csv")
        # a config mismatch names the setting and what to type
        res = _ensemble(demo_files, "runs/a", "--seed", "5")
        assert res.exit_code == 2
        assert f"(seed {DEFAULT_SEED} -> 5)" in res.output and "--overwrite" in res.output
    finally:
        os.chdir(old)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    try:
        args = ["explain", str(demo_files / "runs" / "a"), "--replicates", "1", "--repeats", "1"]
        args += ["--points", "3", "--rows", "20", "--flux", "SR"]
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
        assert (demo_files / "runs" / "a" / "explain.nc").is_file()
        # report works from here too
        res = CliRunner().invoke(app, ["report", str(demo_files / "runs" / "a")])
        assert res.exit_code == 0, res.output
        # a moved input: one line naming the file and what to do
        (demo_files / "data" / "veg.nc").rename(demo_files / "veg-moved.nc")
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2
        line = res.output.strip().splitlines()[-1]
        assert "is not where it was" in line and str(demo_files / "data" / "veg.nc") in line
        assert f"run from {demo_files}" in line
    finally:
        os.chdir(old)


def test_resolve_without_record_uses_the_folder_beside_out(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "s.csv").write_text("x")
    (tmp_path / "d" / "v.nc").write_text("xx")
    cfg = EnsembleConfig(srdb="d/s.csv", drivers=("d/*.nc",), vegetation="d/v.nc")
    out = tmp_path / "run"
    out.mkdir()
    got = resolve_inputs(cfg, out)  # no inputs.json: a run started beside OUT
    assert got.srdb == str(tmp_path / "d" / "s.csv")
    assert got.drivers == (str(tmp_path / "d" / "*.nc"),)
    # recorded sizes: a changed file is refused
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        record_inputs(cfg, out)
    finally:
        os.chdir(old)
    (tmp_path / "d" / "v.nc").write_text("changed")
    with pytest.raises(InputError, match="changed since the run"):
        resolve_inputs(cfg, out)
