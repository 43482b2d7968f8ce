"""Issue 16 item 4: ilamb3 itself runs its bias and spatial-distribution analyses on an srgpu
reference file against a synthetic CMIP-style model.

ilamb3 (pinned in pyproject.toml's ``ilamb`` extra) requires an older xarray than srgpu, so it
runs in a virtual environment of its own that the test creates once (``tests/ilamb3env.py``:
``python -m venv`` + ``pip install`` of the pinned ilamb3, ~90 s) and reuses afterwards. srgpu's
own code writes the reference file here (``ilamb_reference``); ilamb3 reads it, with a model
file, in a subprocess of that environment (``tests/ilamb3_child.py``), exactly as an ilamb3 user
on ilamb3's own pinned xarray would, and reports its tables as JSON. The test skips only when pip
cannot reach a package index to build that environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare import ilamb_reference
from tests.ilamb3env import (
    REPO,
    clean_env,
    ilamb3_python,
    ilamb3_requirements,
    is_network_failure,
)
from tests.test_compare_synthetic import YEARS, make_store_dataset

SCALE = 1.1


def write_model(store: xr.Dataset, path: Path) -> None:
    """rh = SCALE x the store's HR, monthly 2000-2002 (standard calendar), kg m-2 s-1, with
    CMIP areacella and sftlf (percent)."""
    times = xr.date_range(f"{YEARS[0]}-01-01", periods=36, freq="MS", use_cftime=True)
    ends = xr.date_range(f"{YEARS[0]}-02-01", periods=36, freq="MS", use_cftime=True)
    mids = [a + (b - a) / 2 for a, b in zip(times, ends, strict=True)]
    rate = store["HR"].values * SCALE * 1e-3 / (365.25 * 86400.0)  # NaN off the domain
    ds = xr.Dataset(
        {
            "rh": (
                ("time", "lat", "lon"),
                np.repeat(rate[None], 36, axis=0),
                {
                    "units": "kg m-2 s-1",
                    "cell_methods": "area: mean where land time: mean",
                    "cell_measures": "area: areacella",
                },
            ),
            "time_bnds": (("time", "nv"), np.stack([np.array(times), np.array(ends)], axis=1)),
            "areacella": (("lat", "lon"), store["cell_area"].values, {"units": "m2"}),
            "sftlf": (("lat", "lon"), 100.0 * store["land_fraction"].values, {"units": "%"}),
        },
        coords={"time": mids, "lat": store["lat"].values, "lon": store["lon"].values},
    )
    ds["time"].attrs["bounds"] = "time_bnds"
    for var in ("time", "time_bnds"):
        ds[var].encoding.update(units="days since 1850-01-01", calendar="standard")
    ds.to_netcdf(path)


@pytest.fixture(scope="session")
def ilamb3_venv(request, tmp_path_factory) -> Path:
    """The python of the ilamb3 environment (see tests/ilamb3env.py for where it lives)."""
    env = os.environ.get("SRGPU_ILAMB3_VENV")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    if env:
        venv = Path(env)
    elif cache is not None:
        venv = cache.mkdir("ilamb3-venv")
    else:
        venv = tmp_path_factory.mktemp("ilamb3-venv")
    return ilamb3_python(venv)


@pytest.fixture(scope="module")
def ilamb3_run(ilamb3_venv, tmp_path_factory):
    """ilamb3's tables on the synthetic store's HR reference against the 1.1 x HR model."""
    tmp = tmp_path_factory.mktemp("ilamb")
    store = make_store_dataset()
    ilamb_reference(store, flux="HR").to_netcdf(tmp / "srgpu_rh.nc")
    write_model(store, tmp / "model_rh.nc")
    weights = (store["cell_area"] * store["land_fraction"]).where(store["domain"])
    own_total = float((store["HR"] * weights).sum()) * 1e-15  # Pg C yr-1
    cmd = [
        str(ilamb3_venv),
        str(REPO / "tests" / "ilamb3_child.py"),
        *(str(tmp / name) for name in ("srgpu_rh.nc", "model_rh.nc", "result.json")),
    ]
    res = subprocess.run(cmd, cwd=tmp, env=clean_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-4000:]
    return store, json.loads((tmp / "result.json").read_text()), own_total


def _value(rows, source, name):
    sel = [r for r in rows if r["source"] == source and r["name"] == name]
    assert len(sel) == 1, (source, name, rows)
    return sel[0]["value"], sel[0]["units"]


@pytest.mark.slow
def test_it_is_the_pinned_ilamb3_on_its_own_xarray(ilamb3_run):
    _, out, _ = ilamb3_run
    assert ilamb3_requirements() == [f"ilamb3=={out['ilamb3']}"]
    # the reason for the separate environment: ilamb3 2026.4.20 requires xarray <= 2025.10.1
    assert tuple(int(p) for p in out["xarray"].split(".")[:3]) <= (2025, 10, 1)
    assert tuple(int(p) for p in xr.__version__.split(".")[:2]) > (2025, 10)


@pytest.mark.slow
def test_ilamb3_bias_reference_total_and_uncertainty(ilamb3_run):
    store, out, own_total = ilamb3_run
    total, units = _value(out["bias"], "Reference", "Period Mean")
    assert units == "Pg yr-1"
    # the issue asks 0.1 % (it was +26.6 % without cell_measures); measured: equal (0.0), so
    # 1e-9 leaves room for float64 rounding in another summation order only
    assert total == pytest.approx(own_total, rel=1e-9)
    model_total, _ = _value(out["bias"], "Comparison", "Period Mean")
    # the model's integral over areacella x sftlf (ilamb3's CMIP handling); measured 1.1e-16
    assert model_total == pytest.approx(SCALE * own_total, rel=1e-9)
    # the uncertainty is used: ilamb3 returns it and it raises the bias score
    uncert = out["uncert"]
    assert uncert is not None
    assert uncert["units"] == "g m-2 yr-1"
    assert uncert["dims"] == ["lat", "lon"]
    got = np.array(uncert["values"], dtype=float)  # null -> NaN off the domain
    np.testing.assert_allclose(got, store["HR_sd_map"].values, rtol=1e-12)  # measured 0.0
    with_sd, _ = _value(out["bias"], "Comparison", "Bias Score")
    without_sd, _ = _value(out["bias_without_uncertainty"], "Comparison", "Bias Score")
    assert not out["uncert_without_uncertainty"]
    # |bias| = 0.1 HR and SD = 0.08 HR (the synthetic store): the score is exp(-0.02) per cell
    # with the uncertainty and exp(-0.1) without it (measured 4.4e-16 relative for both)
    assert with_sd == pytest.approx(np.exp(-0.02), rel=1e-9)
    assert without_sd == pytest.approx(np.exp(-0.1), rel=1e-9)


@pytest.mark.slow
def test_ilamb3_spatial_distribution(ilamb3_run):
    _, out, _ = ilamb3_run
    norm_sd, _ = _value(out["spatial_distribution"], "Comparison", "Normalized Standard Deviation")
    corr, _ = _value(out["spatial_distribution"], "Comparison", "Correlation")
    assert norm_sd == pytest.approx(SCALE, rel=1e-9)  # measured 4.4e-16
    assert corr == pytest.approx(1.0, abs=1e-9)  # measured 1.2e-15


def _pip_download(tmp_path: Path, *index_args: str) -> str:
    """pip's output for a download of the pinned ilamb3 with only ``index_args`` as its
    configuration (no config file, no PIP_* variables)."""
    env = {k: v for k, v in clean_env().items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
    # one retry, as the install's five: pip names the refused connection in its retry warning
    cmd += ["--retries", "1", "--timeout", "5", "--dest", str(tmp_path), *index_args]
    res = subprocess.run(cmd + ilamb3_requirements(), capture_output=True, text=True, env=env)
    assert res.returncode != 0
    return res.stdout + res.stderr


def test_the_skip_is_only_for_an_unreachable_index(tmp_path):
    """The environment's only skip: pip's output when no index can be reached (a refused
    connection) counts as a network failure; a reachable (empty, local) index that lacks the
    package does not, so the test would fail there instead of skipping."""
    (tmp_path / "empty").mkdir()
    unreachable = _pip_download(tmp_path, "--index-url", "http://127.0.0.1:9/simple")
    assert is_network_failure(unreachable), unreachable
    missing = _pip_download(tmp_path, "--no-index", "--find-links", str(tmp_path / "empty"))
    assert "No matching distribution found" in missing, missing
    assert not is_network_failure(missing), missing
