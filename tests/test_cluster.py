"""Dask cluster creation: serial, local CPU cluster, fake dask-cuda, existing scheduler."""

from __future__ import annotations

import sys
import types

import pytest

from srgpu.backend import Backend, cpu_backend
from srgpu.errors import BackendError, ConfigError
from srgpu.run.cluster import local_cuda_cluster_kwargs, make_client

CPU = cpu_backend("test")
GPU = Backend(device="gpu", reason="fake", xp=None)


def test_serial_is_none():
    with make_client(workers=None, scheduler=None, backend=CPU) as client:
        assert client is None
    with make_client(workers=None, scheduler=None, backend=GPU) as client:
        assert client is None


def test_local_cpu_cluster_threads():
    with make_client(
        workers=1, scheduler=None, backend=CPU, threads_per_worker=2, processes=False
    ) as client:
        info = client.scheduler_info()
        workers = list(info["workers"].values())
        assert len(workers) == 1 and workers[0]["nthreads"] == 2
        assert client.submit(lambda a: a + 1, 41).result() == 42
        cluster = client.cluster
    assert cluster.status.name == "closed"


def test_existing_scheduler_is_joined_and_left_running():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with make_client(workers=None, scheduler=cluster.scheduler_address, backend=CPU) as c:
            assert c.submit(lambda: 7).result() == 7
        assert cluster.status.name == "running"


def test_bad_arguments():
    with pytest.raises(ConfigError):
        with make_client(workers=1, scheduler=None, backend=CPU, threads_per_worker=0):
            pass
    with pytest.raises(ConfigError, match="workers=0"):
        with make_client(workers=0, scheduler=None, backend=CPU):
            pass


def test_cuda_kwargs():
    assert local_cuda_cluster_kwargs(workers=2, threads_per_worker=1, rmm_pool_size=0.5) == {
        "n_workers": 2,
        "threads_per_worker": 1,
        "dashboard_address": None,
        "rmm_pool_size": 0.5,
        "rmm_allocator_external_lib_list": ["cupy"],
    }
    kw = local_cuda_cluster_kwargs(workers=0, threads_per_worker=1, rmm_pool_size=None)
    assert kw == {"n_workers": None, "threads_per_worker": 1, "dashboard_address": None}


def test_gpu_branch_with_fake_dask_cuda(monkeypatch):
    from distributed import LocalCluster

    seen = {}

    def fake_local_cuda_cluster(**kwargs):
        seen.update(kwargs)
        return LocalCluster(n_workers=1, processes=False, dashboard_address=None)

    monkeypatch.setitem(
        sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=fake_local_cuda_cluster)
    )
    with make_client(workers=0, scheduler=None, backend=GPU, rmm_pool_size="24GB") as client:
        assert client.submit(lambda: 1).result() == 1
    assert seen == {
        "n_workers": None,
        "threads_per_worker": 1,
        "dashboard_address": None,
        "rmm_pool_size": "24GB",
        "rmm_allocator_external_lib_list": ["cupy"],
    }


def test_gpu_branch_without_dask_cuda(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask_cuda", None)
    with pytest.raises(BackendError, match="dask-cuda"):
        with make_client(workers=1, scheduler=None, backend=GPU):
            pass
