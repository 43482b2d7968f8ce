"""Shared pieces of the benchmarks: machine info, JSON results, paper-shaped synthetic data and
peak-memory measurement of a function run in a fresh process.

Synthetic data has the paper's shapes: 2665 SR training records x 5 predictors, 672 HR records x
7 predictors, 31 years of prediction rows over ``n_cells`` cells. The real job's grid is 0.5 deg
vegetated land, about 61 300 cells x 31 years = 1.9 M rows per flux and replicate; a coarser
resolution ``res`` has ``(0.5 / res) ** 2`` as many cells.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the ``srgpu`` package: a source checkout's root, or ``site-packages``."""
IN_CHECKOUT = (PACKAGE_ROOT / "benchmarks" / "__main__.py").is_file()
"""Whether srgpu runs from a source checkout (its ``benchmarks/`` scripts beside the package)."""
REPO = PACKAGE_ROOT
"""The repository root in a source checkout (real data: ``REPO / ".." / "shared"``)."""
RESULTS = PACKAGE_ROOT / "benchmarks" / "results" if IN_CHECKOUT else Path("srgpu-bench")
"""Default results folder: ``benchmarks/results`` of a checkout, else ``./srgpu-bench``."""

JOB_ROWS = 1_900_000
N_YEARS = 31
JOB_CELLS = JOB_ROWS // N_YEARS  # 61 290 cells of 0.5 deg vegetated land
JOB_REPLICATES = 2000
SR_RECORDS, HR_RECORDS = 2665, 672
TREES = 500
RESOLUTIONS = (4.0, 2.0, 1.0, 0.5)
AREA_SHARES = {1: 0.12, 2: 0.28, 3: 0.14, 4: 0.30, 5: 0.16}


# -- machine ------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The checkout's commit (``None`` for an installed package or without git)."""
    if not IN_CHECKOUT:
        return None
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=REPO
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except Exception:  # absent, or a CUDA build that cannot load here
        return None
    return getattr(mod, "__version__", None)


def machine_info() -> dict:
    """CPU model, core count, load and versions: no host name and no path."""
    load = load_average()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1_5_15min_at_start": load,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.machine()}",
        "versions": {
            m: _version(m) for m in ("srgpu", "numpy", "numba", "sklearn", "nvforest", "psutil")
        },
        "git_commit": git_commit(),
    }


def write_result(result: dict, name: str, out_dir: Path | None = None) -> Path:
    """Write ``result`` as ``<out_dir>/<name>-<date>.json`` (default :data:`RESULTS`)."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{dt.date.today().isoformat()}.json"
    path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    return path


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return o.name
    raise TypeError(type(o).__name__)


def cells_for(resolution: float, fraction: float = 1.0) -> int:
    """Vegetated cells at ``resolution`` degrees, times ``fraction`` (at least 1)."""
    return max(int(round(JOB_CELLS * (0.5 / resolution) ** 2 * fraction)), 1)


# -- synthetic paper-shaped data ---------------------------------------------------------
def _response(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth nonlinear SR-like response (g C m-2 yr-1) with noise."""
    base = 700 + 180 * X[:, 0] + 120 * np.sin(2 * X[:, 1]) + 60 * X[:, 2] * X[:, 3]
    return np.clip(base + rng.normal(scale=150, size=X.shape[0]), 30, None)


def synthetic_inputs(*, n_cells: int, n_years: int = N_YEARS, seed: int = 0):
    """A complete :class:`srgpu.data.inputs.Inputs` (usable by ``run_ensemble``) of paper shapes."""
    import pandas as pd
    import xarray as xr

    from srgpu.config import PAPER_PREDICTORS, TRAINED_FLUXES
    from srgpu.data.inputs import FluxData, Inputs

    rng = np.random.default_rng(seed)
    nlon = max(int(math.ceil(math.sqrt(2 * n_cells))), 1)
    nlat = int(math.ceil(n_cells / nlon))
    lat = np.linspace(-55, 75, nlat) if nlat > 1 else np.array([10.0])
    lon = np.linspace(-179.75, 179.75, nlon) if nlon > 1 else np.array([0.25])
    domain = (np.arange(nlat * nlon) < n_cells).reshape(nlat, nlon)
    cell_ilat, cell_ilon = np.nonzero(domain)
    area = np.broadcast_to((3.09e9 * np.cos(np.deg2rad(lat)))[:, None], (nlat, nlon)).copy()
    land = rng.uniform(0.3, 1.0, size=(nlat, nlon))
    veg = np.where(domain, rng.integers(1, 6, size=(nlat, nlon)), 0)
    years = np.arange(1987, 1987 + n_years)
    preds = xr.Dataset(
        {
            "cell_area": (("lat", "lon"), area),
            "land_fraction": (("lat", "lon"), land),
            "veg_bin": (("lat", "lon"), veg.astype(np.int8)),
            "domain": (("lat", "lon"), domain.astype(np.int8)),
        },
        coords={"lat": lat, "lon": lon, "year": years},
        attrs={"climatology": 0},
    )
    fluxes, grid_X = {}, {}
    for flux, n in (("SR", SR_RECORDS), ("HR", HR_RECORDS)):
        names = PAPER_PREDICTORS[flux]
        p = len(names)
        X = rng.normal(size=(n, p)).astype(np.float32)
        y = _response(X, rng) * (1.0 if flux == "SR" else 0.55)
        ilat = rng.integers(0, nlat, size=n)
        ilon = rng.integers(0, nlon, size=n)
        iyear = rng.integers(0, n_years, size=n)
        table = pd.DataFrame(
            {
                "value": y,
                "lat": lat[ilat],
                "lon": lon[ilon],
                "year": years[iyear],
                "ilat": ilat,
                "ilon": ilon,
                "iyear": iyear,
                "veg_bin": rng.integers(1, 6, size=n),
                "study": np.arange(n) // 3,
                "record_id": np.arange(n),
            }
        )
        for j, name in enumerate(names):
            table[name] = X[:, j]
        fluxes[flux] = FluxData(
            names=tuple(names), X=X, y=y, bins=table["veg_bin"].to_numpy(np.int64), table=table
        )
        grid_X[flux] = rng.normal(size=(n_years * n_cells, p)).astype(np.float32)
    assert tuple(fluxes) == tuple(TRAINED_FLUXES)
    return Inputs(
        fluxes=fluxes,
        grid_X=grid_X,
        years=years.astype(np.int64),
        n_cells=int(n_cells),
        cell_ilat=cell_ilat,
        cell_ilon=cell_ilon,
        weight_m2=(area * land)[cell_ilat, cell_ilon].astype(np.float64),
        area_shares=dict(AREA_SHARES),
        predictors=preds,
        qc={"synthetic": True},
    )


# -- measurement in a fresh process ---------------------------------------------------------
def run_child(target: str, kwargs: dict, *, timeout: float | None = None) -> dict:
    """Run ``module:function(**kwargs)`` in a fresh Python process; return its JSON result plus
    ``peak_rss_mb`` (the process's own maximum resident set, from ``wait4``) and ``process_s``.

    A fresh process per measurement keeps peaks apart.
    """
    with tempfile.TemporaryDirectory(prefix="srgpu-bench-") as tmp:
        out = Path(tmp) / "result.json"
        env = dict(os.environ)
        # the child imports this same srgpu (a checkout or an installed package)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        )
        cmd = [sys.executable, "-m", "srgpu.bench.common", target, json.dumps(kwargs), str(out)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=PACKAGE_ROOT if IN_CHECKOUT else None, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark child {target} failed (exit {proc.returncode})")
        result = json.loads(out.read_text())
    # the process's own high-water mark (VmHWM, read by the child at its end); wait4's
    # ru_maxrss would include the parent's resident set inherited at fork
    hwm = result.pop("_vm_hwm_mb", None)
    result["peak_rss_mb"] = hwm if hwm is not None else usage.ru_maxrss / 1024.0
    result["process_s"] = elapsed
    return result


def vm_hwm_mb() -> float | None:
    """This process's peak resident set (``VmHWM``) in MiB, or None where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _child_main(argv: list[str]) -> None:
    import importlib

    target, kwargs, out = argv
    module, func = target.split(":")
    fn = getattr(importlib.import_module(module), func)
    result = fn(**json.loads(kwargs))
    result["_vm_hwm_mb"] = vm_hwm_mb()
    Path(out).write_text(json.dumps(result, default=_json_default))


def interleaved_cpu_s(fns: dict, *, repeats: int) -> dict[str, list[float]]:
    """CPU seconds (``time.process_time``) of each callable in ``fns``, ``repeats`` rounds of one
    call each in turn: a machine shared with other work then moves whole rounds, which the
    callers' best-of or median-of-paired-ratios figures see through."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.process_time()
            fn()
            times[name].append(time.process_time() - t)
    return times


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (``None`` where the OS has none)."""
    try:
        return list(os.getloadavg())
    except (OSError, AttributeError):
        return None


def warm_numba() -> None:
    """Compile (or load from cache) the numba grower and kernel so that timings exclude the JIT."""
    from srgpu.config import ForestConfig
    from srgpu.forest.numba_engine import NumbaEngine
    from srgpu.forest.train import fit_forest

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)).astype(np.float32)
    rf = fit_forest(X, X[:, 0], forest=ForestConfig(trees=2), seed=np.random.SeedSequence(0))
    NumbaEngine().compile([rf]).predict(X)


def baseline_rss(kind: str) -> dict:
    """Child target: import what a measurement imports, warm numba up, nothing else."""
    if kind == "srgpu":
        warm_numba()
    else:
        import sklearn.ensemble  # noqa: F401
    return {}


if __name__ == "__main__":
    _child_main(sys.argv[1:])
