"""Issue 16 item 7: ``srgpu compare`` takes OUT or OUT/ensemble.zarr, ``--model NAME=GLOB``, and
explains how to split a folder that holds several models' files."""

from __future__ import annotations

import pandas as pd
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app
from tests.test_compare_synthetic import write_model, write_store


def _store(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    path = write_store(run / "ensemble.zarr")
    return run, path, xr.open_zarr(path, consolidated=False).load()


def test_run_directory_and_glob(tmp_path):
    run, zarr_path, store = _store(tmp_path)
    shared = tmp_path / "models"
    write_model(shared, store, scale=1.2, name="A", variables=("rh", "raRoot"))
    write_model(shared, store, scale=0.8, name="B", variables=("rh", "raRoot"))
    runner = CliRunner()
    result = runner.invoke(
        app, ["compare", str(run), "--model", f"A={shared}/A_*.nc", "--model", f"B={shared}/B_*"]
    )
    assert result.exit_code == 0, result.output
    totals = pd.read_csv(run / "compare" / "global_totals.csv")  # default: OUT/compare
    diff = totals.set_index(["source", "flux"])["diff_pct"]
    assert abs(diff[("A", "SR")] - 20.0) < 1e-3 and abs(diff[("B", "HR")] + 20.0) < 1e-3
    # OUT/ensemble.zarr gives the same tables
    out2 = tmp_path / "out2"
    result = runner.invoke(
        app,
        ["compare", str(zarr_path), "--model", f"A={shared}/A_*.nc", "--out", str(out2)],
    )
    assert result.exit_code == 0, result.output
    again = pd.read_csv(out2 / "global_totals.csv").set_index(["source", "flux"])["total_pg"]
    assert again[("A", "SR")] == totals.set_index(["source", "flux"])["total_pg"][("A", "SR")]


def test_folder_with_several_models_says_how_to_split(tmp_path):
    run, _, store = _store(tmp_path)
    shared = tmp_path / "trendy"
    write_model(shared, store, scale=1.2, name="CLM5.0", variables=("rh",))
    write_model(shared, store, scale=0.8, name="VISIT", variables=("rh",))
    result = CliRunner().invoke(app, ["compare", str(run), "--model", f"ALL={shared}"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "several models' files" in text and "'rh'" in text
    assert f"--model CLM5.0='{shared}/CLM5.0_*.nc'" in text
    assert f"--model VISIT='{shared}/VISIT_*.nc'" in text


def test_glob_without_match(tmp_path):
    run, _, _ = _store(tmp_path)
    result = CliRunner().invoke(app, ["compare", str(run), "--model", f"X={tmp_path}/nothing_*.nc"])
    assert result.exit_code == 2 and "matches no NetCDF file" in result.output
