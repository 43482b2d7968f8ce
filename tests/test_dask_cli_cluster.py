"""The multi-node recipe of docs/gpu.md, CPU part: a ``dask scheduler`` and a ``dask worker``
started from the command line as separate processes (127.0.0.1 only, bounded waits), and a tiny
ensemble through ``srgpu ensemble --scheduler``; its numbers equal a serial run's bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).parent / "dask"


def _wait(predicate, *, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def cli_cluster(tmp_path):
    """``dask scheduler`` + one ``dask worker`` (1 process, 1 thread), loopback only."""
    if not DASK.exists():
        pytest.skip("the dask command line is not installed")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    sched_file = tmp_path / "scheduler.json"
    logs = [open(tmp_path / n, "w") for n in ("scheduler.log", "worker.log")]  # noqa: SIM115
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            subprocess.Popen(
                [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0"]
                + ["--no-dashboard", "--scheduler-file", str(sched_file)],
                stdout=logs[0],
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        _wait(sched_file.exists, timeout=120, what="the scheduler file")
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(
            subprocess.Popen(
                [str(DASK), "worker", address, "--host", "127.0.0.1", "--nworkers", "1"]
                + ["--nthreads", "1", "--no-dashboard", "--memory-limit", "2GB"],
                stdout=logs[1],
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=120)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=30)
        for f in logs:
            f.close()


def test_ensemble_on_a_command_line_cluster_equals_serial(cli_cluster, tmp_path):
    args = ["ensemble", "--replicates", "2", "--trees", "5", "--batch-size", "1", "--quiet"]
    dist = CliRunner().invoke(
        app, [*args, "--scheduler", cli_cluster, "--out", str(tmp_path / "d")]
    )
    assert dist.exit_code == 0, dist.output
    serial = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "s")])
    assert serial.exit_code == 0, serial.output
    a = xr.open_zarr(tmp_path / "d" / "ensemble.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "s" / "ensemble.zarr", consolidated=False)
    for name in ("SR_replicate_total", "HR_replicate_map", "SR_mean", "SR_sd"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
