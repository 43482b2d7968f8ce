"""GPU benchmark, one command on a GPU node: ``python -m benchmarks.bench_gpu``.

Measures on synthetic paper-shaped data (:mod:`benchmarks.common`: 2665 SR x 5 and 672 HR x 7
training rows, 500 trees, randomForest settings):

* training replicates per second: cuML (``--train-device gpu``, when cuML imports) and the host
  CPU (scikit-learn trees with randomForest's rules, as the default ``--train-device auto`` does);
* inference traversals per second of nvForest (``precision="single"``, plain ``predict``) on
  ``--device`` and of srgpu's CPU kernel on the host, on the same forests and rows;
* end to end: ``run_ensemble`` with ``--predict-device`` of the device on a measured fraction of the
  paper-scale rows, extrapolated to the full job (2 fluxes x 2000 replicates x 1.9 M rows);
* peak GPU memory used (device total minus free, sampled after each stage) where cupy sees one.

With ``--device cpu`` it runs the same code through nvForest's CPU path, so that CI checks the
script (tests/test_benchmarks.py runs ``tiny``); only a GPU gives the figures that matter.
Results: ``benchmarks/results/gpu-<suite>-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time

import numpy as np

from benchmarks.common import (
    HR_RECORDS,
    JOB_REPLICATES,
    JOB_ROWS,
    N_YEARS,
    SR_RECORDS,
    TREES,
    machine_info,
    synthetic_inputs,
    write_result,
)

SUITES = {
    "tiny": {"trees": 10, "replicates": 2, "fraction": 0.0005, "infer_rows": 2000},
    "quick": {"trees": TREES, "replicates": 8, "fraction": 0.05, "infer_rows": 200_000},
    "full": {"trees": TREES, "replicates": 32, "fraction": 0.25, "infer_rows": JOB_ROWS},
}


def _gpu_memory_used_mb() -> float | None:
    try:
        import cupy

        free, total = cupy.cuda.runtime.memGetInfo()
        return (total - free) / 1024.0**2
    except Exception:  # no cupy, no driver, no device
        return None


def _device_info(device: str) -> dict:
    info: dict = {"device": device}
    if device == "gpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["name"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        info["memory_gb"] = props["totalGlobalMem"] / 1e9
        info["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    return info


def _forest_batch(*, trees: int, replicates: int, seed: int = 0):
    """``replicates`` randomForest-style SR forests on the synthetic SR records."""
    from srgpu.config import ForestConfig
    from srgpu.forest.train import fit_forest

    inputs = synthetic_inputs(n_cells=8, n_years=1, seed=seed)
    data = inputs.fluxes["SR"]
    return [
        fit_forest(
            data.X, data.y, forest=ForestConfig(trees=trees), seed=np.random.SeedSequence([seed, r])
        )
        for r in range(replicates)
    ]


def bench_training(*, trees: int, replicates: int, cuml_ok: bool) -> dict:
    """Replicates per second (both fluxes) on the host CPU, and with cuML where it imports."""
    from srgpu.config import ForestConfig
    from srgpu.forest.train import fit_forest

    inputs = synthetic_inputs(n_cells=8, n_years=1)
    forest = ForestConfig(trees=trees)
    out: dict = {}
    t0 = time.perf_counter()
    for r in range(replicates):
        for flux in ("SR", "HR"):
            d = inputs.fluxes[flux]
            fit_forest(d.X, d.y, forest=forest, seed=np.random.SeedSequence([1, r]))
    out["host_cpu_replicates_per_s"] = replicates / (time.perf_counter() - t0)
    if cuml_ok:
        from srgpu.forest.cuml_train import fit_cuml_forest

        t0 = time.perf_counter()
        for r in range(replicates):
            for flux in ("SR", "HR"):
                d = inputs.fluxes[flux]
                fit_cuml_forest(d.X, d.y, forest=forest, seed=r)
        out["cuml_replicates_per_s"] = replicates / (time.perf_counter() - t0)
    else:
        out["cuml_replicates_per_s"] = None
        out["cuml_note"] = "cuML not importable here"
    return out


def bench_inference(*, device: str, trees: int, rows: int, repeats: int = 3) -> dict:
    """Traversals per second of nvForest on ``device`` and of the numba kernel on the host."""
    from srgpu.forest.engines import get_engine

    forests = _forest_batch(trees=trees, replicates=2)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(rows, forests[0].n_features_in_)).astype(np.float32)
    traversals = rows * trees * len(forests)
    out: dict = {"rows": rows, "trees": trees, "forests": len(forests)}
    engines = {
        "nvforest_" + device: get_engine("nvforest", device=device),
        "numba_host": get_engine("numba"),
    }
    preds = {}
    for name, engine in engines.items():
        compiled = engine.compile(forests)
        if device == "gpu" and name.startswith("nvforest"):
            import cupy

            Xd = cupy.asarray(X)
            compiled.predict(Xd)  # warm-up
            best = float("inf")
            for _ in range(repeats):
                cupy.cuda.Device().synchronize()
                t = time.perf_counter()
                p = compiled.predict(Xd)
                cupy.cuda.Device().synchronize()
                best = min(best, time.perf_counter() - t)
            preds[name] = cupy.asnumpy(p)
        else:
            compiled.predict(X[:1000])  # warm-up (numba JIT, nvForest setup)
            best = float("inf")
            for _ in range(repeats):
                t = time.perf_counter()
                p = compiled.predict(X)
                best = min(best, time.perf_counter() - t)
            preds[name] = np.asarray(p)
        out[f"{name}_traversals_per_s"] = traversals / best
    a, b = preds["nvforest_" + device], preds["numba_host"]
    out["max_rel_diff_nvforest_vs_numba"] = float(
        np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))
    )
    out["gpu_memory_used_mb"] = _gpu_memory_used_mb()
    return out


def bench_end_to_end(*, device: str, trees: int, replicates: int, fraction: float) -> dict:
    """``run_ensemble`` on a fraction of the paper-scale rows; extrapolated to the full job."""
    from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
    from srgpu.run.ensemble import run_ensemble

    n_cells = max(int(JOB_ROWS * fraction / N_YEARS), 1)
    inputs = synthetic_inputs(n_cells=n_cells)
    cfg = EnsembleConfig(
        replicates=replicates,
        batch_size=min(8, replicates),
        forest=ForestConfig(trees=trees),
        predict=PredictConfig(device=device, engine="nvforest" if device == "gpu" else "numba"),
    )
    with tempfile.TemporaryDirectory(prefix="srgpu-gpu-bench-") as out:
        t0 = time.perf_counter()
        run_ensemble(cfg, out=out, inputs=inputs)
        seconds = time.perf_counter() - t0
    rows = inputs.n_rows
    per_rep_row = seconds / (replicates * rows)
    return {
        "replicates": replicates,
        "rows": rows,
        "fraction_of_job_rows": rows / JOB_ROWS,
        "trees": trees,
        "seconds": seconds,
        "traversals_per_s": 2 * replicates * rows * trees / seconds,
        "full_job_seconds_extrapolated": per_rep_row * JOB_REPLICATES * JOB_ROWS * (TREES / trees),
        "extrapolated": True,
        "gpu_memory_used_mb": _gpu_memory_used_mb(),
    }


def run(*, suite: str = "quick", device: str = "gpu") -> dict:
    from srgpu.backend import probe_gpu

    cfg = SUITES[suite]
    probe = probe_gpu()
    if device == "gpu" and not probe["usable"]:
        raise SystemExit(f"--device gpu: no usable GPU ({probe['reason']}); use --device cpu")
    try:
        import cuml  # noqa: F401

        cuml_ok = device == "gpu"
    except ImportError:
        cuml_ok = False
    result = {
        "benchmark": "gpu",
        "suite": suite,
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "device": _device_info(device),
        "setup": {"sr_records": SR_RECORDS, "hr_records": HR_RECORDS, **cfg},
        "training": bench_training(
            trees=cfg["trees"], replicates=cfg["replicates"], cuml_ok=cuml_ok
        ),
        "inference": bench_inference(device=device, trees=cfg["trees"], rows=cfg["infer_rows"]),
        "end_to_end": bench_end_to_end(
            device=device,
            trees=cfg["trees"],
            replicates=cfg["replicates"],
            fraction=cfg["fraction"],
        ),
    }
    result["target"] = {
        "paper_scale_job_seconds": 600,
        "met": result["end_to_end"]["full_job_seconds_extrapolated"] <= 600
        if device == "gpu"
        else None,
    }
    return result


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("suite", nargs="?", default="quick", choices=sorted(SUITES))
    ap.add_argument("--device", default="gpu", choices=("gpu", "cpu"))
    args = ap.parse_args(argv)
    result = run(suite=args.suite, device=args.device)
    path = write_result(result, f"gpu-{args.suite}-{args.device}")
    e2e = result["end_to_end"]
    print(
        f"inference nvForest ({args.device}): "
        f"{result['inference'][f'nvforest_{args.device}_traversals_per_s']:.3g} traversals/s; "
        f"end to end {e2e['traversals_per_s']:.3g} traversals/s; full job "
        f"{e2e['full_job_seconds_extrapolated'] / 60:.1f} min (extrapolated)\n{path}"
    )


if __name__ == "__main__":
    main()
