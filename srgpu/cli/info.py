"""``srgpu info``: versions, CPU, GPU and which device ``--predict-device auto`` picks, and why."""

from __future__ import annotations

import importlib
import json
import os
import platform
from importlib import metadata
from typing import Any

import typer

from srgpu.cli._common import console, handle_errors

DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "xarray": ("xarray",),
    "zarr": ("zarr",),
    "dask": ("dask",),
    "distributed": ("distributed",),
    "scikit-learn": ("scikit-learn",),
    "numba": ("numba",),
    "typer": ("typer",),
    "rich": ("rich",),
    "pooch": ("pooch",),
    "nvforest": ("nvforest-cu13", "nvforest-cu12", "nvforest"),
    "cuml": ("cuml-cu13", "cuml-cu12", "cuml"),
    "cupy": ("cupy-cuda13x", "cupy-cuda12x", "cupy"),
    "dask-cuda": ("dask-cuda", "dask_cuda"),
}
"""Reported name -> distribution names to try (pip wheels first, then conda/source names)."""

NOT_INSTALLED = "not installed"


def dependency_versions() -> dict[str, str]:
    """Installed version of each dependency, from package metadata (nothing is imported)."""
    out = {}
    for name, dists in DEPENDENCIES.items():
        version = NOT_INSTALLED
        for dist in dists:
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    return out


def _importable(module: str) -> tuple[bool, str]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return False, f"not installed ({exc})"
    except Exception as exc:  # CUDA libraries can fail in many ways at import
        return False, f"import failed: {exc.__class__.__name__}: {exc}"
    return True, "imports"


def cpu_info() -> dict[str, Any]:
    """Logical and usable cores, physical cores and numba's thread count."""
    info: dict[str, Any] = {"logical_cores": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
    except ImportError:
        info["physical_cores"] = None
    try:
        import numba

        info["numba_threads"] = int(numba.config.NUMBA_NUM_THREADS)
    except ImportError:
        info["numba_threads"] = None
    return info


def gather() -> dict[str, Any]:
    """Everything ``srgpu info`` reports, as a JSON-serialisable dict."""
    import srgpu
    from srgpu.backend import probe_gpu, resolve_backend

    gpu = probe_gpu()
    usable: dict[str, dict[str, Any]] = {}
    gpu_ok = gpu["usable"] or gpu["device_count"] > 0
    usable["gpu"] = {"usable": gpu_ok, "detail": gpu["reason"]}
    cupy_ok = gpu["cupy"] is not None and gpu["device_count"] > 0
    usable["cupy"] = {
        "usable": cupy_ok,
        "detail": (
            f"cupy {gpu['cupy']}" + ("" if cupy_ok else ", but it sees no GPU")
            if gpu["cupy"]
            else "not installed"
        ),
    }
    for name, module in (("cuml", "cuml"), ("nvforest", "nvforest"), ("dask-cuda", "dask_cuda")):
        ok, detail = _importable(module)
        if ok and name == "nvforest":
            detail += "; device='cpu' inference works" + (
                ", device='gpu' too" if gpu_ok else " (no GPU for device='gpu')"
            )
        elif ok and not gpu_ok:
            detail += " but there is no usable GPU"
        usable[name] = {"usable": ok and (gpu_ok or name == "nvforest"), "detail": detail}
    backend = resolve_backend("auto")
    return {
        "srgpu": srgpu.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": dependency_versions(),
        "cpu": cpu_info(),
        "gpu": gpu,
        "usable": usable,
        "auto_backend": {"device": backend.device, "reason": backend.reason},
    }


def render(report: dict[str, Any]) -> None:
    """Human-readable report on the console."""
    from rich.table import Table

    console.print(f"srgpu {report['srgpu']}  (Python {report['python']}, {report['platform']})")
    deps = Table(title="Dependencies", show_header=True)
    deps.add_column("package")
    deps.add_column("version")
    for name, version in report["dependencies"].items():
        deps.add_row(name, version)
    console.print(deps)
    cpu = report["cpu"]
    console.print(
        f"CPU: {cpu.get('logical_cores')} logical cores, {cpu.get('usable_cores', '?')} usable, "
        f"{cpu.get('physical_cores')} physical; numba threads: {cpu.get('numba_threads')}"
    )
    status = Table(title="GPU stack", show_header=True)
    status.add_column("component")
    status.add_column("usable")
    status.add_column("detail", overflow="fold")
    for name, item in report["usable"].items():
        status.add_row(name, "yes" if item["usable"] else "no", item["detail"])
    console.print(status)
    for dev in report["gpu"]["devices"]:
        console.print(
            f"GPU {dev.get('id')}: {dev.get('name', dev.get('error'))} "
            f"{dev.get('memory_gib', '')} GiB"
        )
    auto = report["auto_backend"]
    console.print(f"--predict-device auto -> {auto['device']}: {auto['reason']}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``info`` command to ``app``."""

    @app.command("info")
    @handle_errors
    def info(
        as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON output."),
    ) -> None:
        """Show versions, CPU cores, numba threads, the GPU stack and the device 'auto' picks."""
        report = gather()
        if as_json:
            print(json.dumps(report, indent=2, sort_keys=False))
        else:
            render(report)
