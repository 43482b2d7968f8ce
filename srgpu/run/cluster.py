"""The Dask cluster of a run: none (serial), a local CPU or GPU cluster, or an existing one.

``make_client`` is a context manager; what it starts it also closes.

* ``scheduler="tcp://host:8786"``: join an existing cluster (started with ``dask scheduler`` /
  ``dask worker`` or ``dask cuda worker``); the cluster is left running on exit.
* ``workers=None`` and no scheduler: ``None``, the ensemble runs serially in this process.
* GPU backend: ``dask_cuda.LocalCUDACluster``, one worker process per GPU (``workers`` GPUs,
  the first ones of ``CUDA_VISIBLE_DEVICES``; ``0`` means all), each with an RMM memory pool
  (``rmm_pool_size``, a fraction of device memory or a size such as ``"24GB"``) that cupy also
  allocates from.
* CPU backend: ``distributed.LocalCluster(n_workers=workers, threads_per_worker=...)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from srgpu.backend import Backend
from srgpu.errors import BackendError, ConfigError

DEFAULT_RMM_POOL = 0.5
"""Initial RMM pool per GPU worker, as a fraction of device memory (it grows on demand)."""


def local_cpu_cluster_kwargs(
    *, workers: int, threads_per_worker: int, processes: bool
) -> dict[str, Any]:
    """Keyword arguments of ``distributed.LocalCluster`` for a CPU run."""
    return {
        "n_workers": workers,
        "threads_per_worker": threads_per_worker,
        "processes": processes,
        "dashboard_address": None,
    }


def local_cuda_cluster_kwargs(
    *, workers: int, threads_per_worker: int, rmm_pool_size: float | str | None
) -> dict[str, Any]:
    """Keyword arguments of ``dask_cuda.LocalCUDACluster`` for a GPU run.

    ``workers=0`` leaves ``n_workers=None``: one worker per visible GPU.
    """
    kwargs: dict[str, Any] = {
        "n_workers": workers if workers > 0 else None,
        "threads_per_worker": threads_per_worker,
        "dashboard_address": None,
    }
    if rmm_pool_size is not None:
        kwargs["rmm_pool_size"] = rmm_pool_size
        kwargs["rmm_allocator_external_lib_list"] = ["cupy"]
    return kwargs


@contextlib.contextmanager
def make_client(
    *,
    workers: int | None,
    scheduler: str | None,
    backend: Backend,
    threads_per_worker: int = 1,
    rmm_pool_size: float | str | None = DEFAULT_RMM_POOL,
    processes: bool = True,
) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for the run, or ``None`` for a serial in-process run.

    ``processes=False`` (CPU only) runs the workers as threads of this process (tests).
    """
    if threads_per_worker < 1:
        raise ConfigError(f"threads_per_worker must be >= 1, got {threads_per_worker}")
    if workers is not None and workers < 0:
        raise ConfigError(f"workers must be >= 0, got {workers}")
    if scheduler is None and workers is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - distributed is a core dependency
        raise ConfigError(f"Dask distributed is not installed: {exc}") from None

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({exc})"
            ) from None
        with client:
            yield client
        return

    assert workers is not None
    if backend.is_gpu:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError as exc:
            raise BackendError(
                f"a local GPU cluster needs dask-cuda (the [gpu] extra): {exc}"
            ) from None
        kwargs = local_cuda_cluster_kwargs(
            workers=workers, threads_per_worker=threads_per_worker, rmm_pool_size=rmm_pool_size
        )
        try:
            cluster = LocalCUDACluster(**kwargs)
        except ValueError as exc:  # e.g. more workers than GPUs
            raise BackendError(f"dask-cuda LocalCUDACluster: {exc}") from None
    else:
        if workers == 0:
            raise ConfigError("workers=0 (one per GPU) needs the GPU backend; give a count")
        cluster = LocalCluster(
            **local_cpu_cluster_kwargs(
                workers=workers, threads_per_worker=threads_per_worker, processes=processes
            )
        )
    with cluster, Client(cluster) as client:
        yield client
