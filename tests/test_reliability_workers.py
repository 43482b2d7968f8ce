"""Lost worker: a Dask worker process killed with SIGKILL mid-run; the run completes and its
store equals the serial run's, variable by variable, bit for bit.

The test starts ``LocalCluster(n_workers=2, threads_per_worker=1)`` and joins it through
``run_ensemble(..., scheduler=address)``. Right after the first batch is written (the
``on_batch`` callback), it kills one worker process (pid from ``client.run(os.getpid)``) while
both workers hold batches; the nanny restarts it and the scheduler reruns the lost batches.
Batches are pure functions of (config, inputs, replicate indices) and their moments are merged
strictly in batch order, so the result cannot depend on which worker ran what.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import xarray as xr

from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
from srgpu.data.inputs import prepare_inputs
from srgpu.run.ensemble import run_ensemble

distributed = pytest.importorskip("distributed")

CFG = EnsembleConfig(
    replicates=6,
    batch_size=1,
    forest=ForestConfig(trees=20),
    predict=PredictConfig(engine="sklearn"),
)


@pytest.mark.slow
def test_killed_worker_run_completes_identical_to_serial(tmp_path):
    inputs = prepare_inputs(CFG)
    serial = run_ensemble(CFG, out=tmp_path / "serial", inputs=inputs)

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        assert len(pids) == 2
        victim = sorted(pids.values())[0]
        killed: list[int] = []

        def on_batch(res, done, total):
            if not killed:
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        summary = run_ensemble(
            CFG,
            out=tmp_path / "dask",
            inputs=inputs,
            scheduler=cluster.scheduler_address,
            on_batch=on_batch,
        )
        assert killed == [victim]
        client.wait_for_workers(1, timeout=60)
        assert victim not in client.run(os.getpid).values()  # the worker really died

    assert summary == serial
    ref = xr.open_zarr(tmp_path / "serial" / "ensemble.zarr", consolidated=False)
    got = xr.open_zarr(tmp_path / "dask" / "ensemble.zarr", consolidated=False)
    assert set(got.variables) == set(ref.variables)
    for name in ref.variables:
        np.testing.assert_array_equal(got[name].values, ref[name].values, err_msg=name)
