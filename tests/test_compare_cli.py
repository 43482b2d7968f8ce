"""``srgpu compare`` end to end on a tiny synthetic store (CliRunner)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app
from tests.test_compare_synthetic import write_model, write_store


def test_compare_command_writes_tables(tmp_path):
    store_path = write_store(tmp_path / "ensemble.zarr")
    store = xr.open_zarr(store_path, consolidated=False).load()
    biased = write_model(tmp_path / "biased", store, scale=1.2, name="biased")
    ra_only = write_model(
        tmp_path / "raonly",
        store,
        scale=1.0,
        name="raonly",
        variables=("rh", "ra", "gpp"),
        one_file=True,
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            str(store_path),
            "--model",
            f"BIASED={biased}",
            "--model",
            f"RAONLY={ra_only / 'raonly.nc'}",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Global totals" in result.output
    for name in (
        "global_totals",
        "site_scores",
        "taylor",
        "uncertainty_scores",
        "biome_cv",
        "latitudinal_profiles",
        "relationships",
        "model_globals",
        "reference_lu2021",
    ):
        assert (out / f"{name}.csv").exists() and (out / f"{name}.json").exists()
    totals = pd.read_csv(out / "global_totals.csv")
    sr = totals[(totals["source"] == "BIASED") & (totals["flux"] == "SR")].iloc[0]
    assert abs(sr["diff_pct"] - 20.0) < 1e-3
    # RAONLY gives only total ra: HR is scored, SR and AR are not (the documented default)
    assert set(totals[totals["source"] == "RAONLY"]["flux"]) == {"HR"}
    meta = json.loads((out / "compare.json").read_text())
    assert any("only total ra" in n for n in meta["models"]["RAONLY"]["notes"])
    records = json.loads((out / "taylor.json").read_text())
    assert {"source", "flux", "sd_norm", "r", "crmsd_norm"} <= set(records[0])
    maps = xr.open_dataset(out / "maps.nc")
    assert list(maps["source"].values) == ["RF", "BIASED", "RAONLY"]
    assert np.isnan(maps["SR"].sel(source="RAONLY")).all()


def test_compare_command_bad_input_exit_2(tmp_path):
    store_path = write_store(tmp_path / "ensemble.zarr")
    bad = tmp_path / "bad"
    bad.mkdir()
    xr.Dataset(
        {"rh": (("lat", "lon"), np.ones((2, 2)))}, coords={"lat": [-45.0, 45.0], "lon": [0.0, 90.0]}
    ).to_netcdf(bad / "bad_rh.nc")
    runner = CliRunner()
    result = runner.invoke(app, ["compare", str(store_path), "--model", f"BAD={bad}"])
    assert result.exit_code == 2
    assert "bad_rh.nc" in result.output and "'rh'" in result.output and "units" in result.output
    result = runner.invoke(app, ["compare", str(store_path), "--model", "nopath"])
    assert result.exit_code == 2 and "NAME=PATH" in result.output
    result = runner.invoke(app, ["compare", str(tmp_path / "missing.zarr"), "--model", f"B={bad}"])
    assert result.exit_code == 2 and "missing.zarr" in result.output


def test_compare_command_takes_out_and_writes_beside_the_store(tmp_path):
    """``srgpu compare OUT`` (not only ``OUT/ensemble.zarr``) writes to ``OUT/compare``."""
    run = tmp_path / "run"
    store_path = write_store(run / "ensemble.zarr")
    store = xr.open_zarr(store_path, consolidated=False).load()
    model = write_model(tmp_path / "m", store, scale=1.0, name="m")
    for arg in (run, store_path):
        result = CliRunner().invoke(app, ["compare", str(arg), "--model", f"M={model}"])
        assert result.exit_code == 0, result.output
        assert (run / "compare" / "global_totals.csv").exists()
        assert not (tmp_path / "compare").exists()
        meta = json.loads((run / "compare" / "compare.json").read_text())
        assert meta["store"] == str(arg) and meta["years"] is None
