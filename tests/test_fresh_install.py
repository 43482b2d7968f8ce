"""A new user's first install: ``pip install <repo>`` without extras into a fresh virtual
environment, then every command once on the demo world (issue 18, deliver 1).

The venv is a plain one (no system site-packages), so nothing the test environment happens to
have installed can hide a missing dependency. The install runs offline from a wheelhouse
(:mod:`tests.freshenv`). Timings are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.freshenv import install_offline

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory) -> Path:
    """A venv with ``pip install <repo>`` (no extras) done offline from the wheelhouse."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install_offline(venv / "bin" / "python", str(REPO), project=REPO)
    print(f"\nfresh venv + offline pip install: {time.perf_counter() - t0:.0f} s")
    return venv


def _clean_env() -> dict[str, str]:
    """This environment without anything that points Python at this checkout."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def _run(cmd: list[str], *, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("env", _clean_env())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _srgpu(venv: Path, *args: str, cwd: Path, timeout: float = 900) -> str:
    env = _clean_env()
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    t0 = time.perf_counter()
    res = _run([str(venv / "bin" / "srgpu"), *args], timeout=timeout, cwd=cwd, env=env)
    print(f"srgpu {' '.join(args)}: {time.perf_counter() - t0:.0f} s")
    assert res.returncode == 0, (
        f"srgpu {' '.join(args)}\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    )
    assert "Traceback" not in res.stderr, res.stderr[-4000:]
    return res.stdout + res.stderr


def test_every_command_runs_after_a_plain_install(fresh_venv, tmp_path):
    venv = fresh_venv
    # the package is the installed copy, not this checkout
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import srgpu, matplotlib; print(srgpu.__file__)"],
        timeout=120,
        cwd=tmp_path,
    )
    assert where.returncode == 0, where.stderr
    assert str(venv) in where.stdout
    # extras are not there: the test is about the core install
    for extra_module in ("nvforest", "cupy", "pytest"):
        no_extra = _run([str(venv / "bin" / "python"), "-c", f"import {extra_module}"], timeout=60)
        assert no_extra.returncode != 0, extra_module

    out = _srgpu(
        venv, "ensemble", "--replicates", "2", "--trees", "5", "--out", "run", cwd=tmp_path
    )
    assert "wrote run/ensemble.zarr" in out
    _srgpu(venv, "info", cwd=tmp_path)
    _srgpu(venv, "report", "run", cwd=tmp_path)
    assert (tmp_path / "run" / "report" / "report.html").is_file()
    _srgpu(
        venv,
        *("explain", "run", "--replicates", "1", "--repeats", "1", "--points", "3"),
        *("--rows", "50"),
        cwd=tmp_path,
    )
    _srgpu(
        venv,
        *("select", "--candidates", "MAT,Prec", "--repeats", "1", "--trees", "5"),
        *("--folds", "2", "--no-validate", "--out", "sel"),
        cwd=tmp_path,
    )
    assert any((tmp_path / "sel").glob("*.csv"))

    # compare: a synthetic model on the demo store's grid, default (conservative) regridding
    model = _write_model(tmp_path / "model", tmp_path / "run" / "ensemble.zarr")
    _srgpu(
        venv, "compare", "run/ensemble.zarr", "--model", f"M={model}", "--out", "cmp", cwd=tmp_path
    )
    assert (tmp_path / "cmp" / "global_totals.csv").is_file()


def test_bench_runs_from_the_installed_package(fresh_venv, tmp_path):
    """``srgpu bench`` (issue 18, deliver 8) from a folder outside the checkout, its smallest
    setting: the suite comes from the installed package (``srgpu.bench``), its results go to
    ``./srgpu-bench`` by default."""
    venv = fresh_venv
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import srgpu.bench.suite as s; print(s.__file__)"],
        timeout=120,
        cwd=tmp_path,
    )
    assert where.returncode == 0 and str(venv) in where.stdout, where.stderr
    r_script = _run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import pathlib, srgpu.bench as b; "
            "print((pathlib.Path(b.__file__).parent / 'r_randomforest.R').is_file())",
        ],
        timeout=120,
        cwd=tmp_path,
    )
    assert r_script.stdout.strip() == "True", r_script.stderr  # shipped as package data
    out = _srgpu(venv, "bench", "tiny", "--no-scaling", cwd=tmp_path)
    results = tmp_path / "srgpu-bench"
    e2e = sorted(results.glob("e2e-tiny-*.json"))
    assert len(e2e) == 1 and sorted(results.glob("benchmark-tiny-*.png")), out
    import json

    data = json.loads(e2e[0].read_text())
    assert data["machine"]["git_commit"] is None  # an installed package, not a checkout
    assert data["speedup_vs_sklearn"] > 0
    assert "end to end vs sklearn loop" in out


def _write_model(directory: Path, store_path: Path) -> Path:
    """A CMOR-like monthly ``rh`` file (noleap, kg m-2 s-1) = 1.1 x the store's HR, plus sftlf."""
    store = xr.open_zarr(store_path, consolidated=False).load()
    years = store["year"].values
    time = xr.date_range(
        f"{years[0]}-01-01", periods=12 * years.size, freq="MS", calendar="noleap", use_cftime=True
    )
    rate = store["HR_mean"].values * 1.1 / 1000.0 / (365 * 86400.0)  # g m-2 yr-1 -> kg m-2 s-1
    coords = {
        "time": time,
        "lat": ("lat", store["lat"].values, {"units": "degrees_north"}),
        "lon": ("lon", store["lon"].values, {"units": "degrees_east"}),
    }
    ds = xr.Dataset(
        {
            "rh": (("time", "lat", "lon"), np.repeat(rate, 12, axis=0), {"units": "kg m-2 s-1"}),
            "sftlf": (("lat", "lon"), store["land_fraction"].values * 100.0, {"units": "%"}),
        },
        coords=coords,
    )
    directory.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(directory / "M.nc")
    return directory / "M.nc"
