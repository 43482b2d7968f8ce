"""End-to-end benchmark: srgpu's CPU path vs the scikit-learn loop a user would write vs R.

On the same synthetic paper-shaped data (see :mod:`srgpu.bench.common`):

* **srgpu**: ``run_ensemble`` with ``engine="numba"`` on a synthetic
  :class:`~srgpu.data.inputs.Inputs`
  (stratified draws, training both fluxes' forests, validation, inference, per-row moments,
  per-replicate maps and totals, the zarr store and the final statistics), in a fresh process
  whose peak resident memory is read with ``wait4``;
* **scikit-learn loop**: per replicate and flux the same draw, ``RandomForestRegressor(
  n_estimators=500, max_features=mtry, min_samples_split=6, bootstrap=True, n_jobs=2).fit``,
  ``predict`` on the grid rows, the predictions KEPT (replicate x rows) and the same statistics
  computed at the end (per-row mean and SD, per-replicate time-mean maps, their quantiles);
* **R randomForest** (``srgpu/bench/r_randomforest.R``) when ``Rscript`` is on the PATH;
* training alone (trees per second, one core) and inference alone (traversals per second per
  core, from :mod:`srgpu.bench.inference`).

Everything is timed in one run; the ratios are the result, the absolute times depend on the
machine's load (recorded in ``machine``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from srgpu.bench.common import (
    HR_RECORDS,
    JOB_CELLS,
    JOB_REPLICATES,
    JOB_ROWS,
    N_YEARS,
    SR_RECORDS,
    TREES,
    cells_for,
    machine_info,
    run_child,
    synthetic_inputs,
    warm_numba,
)

MB = 1024.0**2


def _config(*, replicates: int, trees: int, batch_size: int, seed: int):
    from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig

    return EnsembleConfig(
        replicates=replicates,
        seed=seed,
        forest=ForestConfig(trees=trees),
        predict=PredictConfig(device="cpu", engine="numba"),
        batch_size=batch_size,
    )


# -- child targets (run in a fresh process by run_child) ----------------------------------
def srgpu_child(
    *, n_cells: int, replicates: int, trees: int = TREES, batch_size: int = 8, seed: int = 0
) -> dict:
    """``run_ensemble`` end to end on synthetic inputs; wall time and its parts."""
    from srgpu.run.ensemble import run_ensemble

    inputs = synthetic_inputs(n_cells=n_cells, seed=seed)
    config = _config(replicates=replicates, trees=trees, batch_size=batch_size, seed=seed)
    warm_numba()
    parts = {"train_s": 0.0, "validate_s": 0.0, "infer_s": 0.0}

    def on_batch(res, done, total):
        for k in parts:
            parts[k] += res.timing.get(k, 0.0)

    tmp = tempfile.mkdtemp(prefix="srgpu-bench-run-")
    try:
        t0 = time.perf_counter()
        summary = run_ensemble(config, out=Path(tmp) / "run", inputs=inputs, on_batch=on_batch)
        wall = time.perf_counter() - t0
        store_bytes = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "wall_s": wall,
        **parts,
        "store_and_statistics_s": wall - sum(parts.values()),
        "n_rows": inputs.n_rows,
        "n_cells": n_cells,
        "replicates": replicates,
        "batch_size": batch_size,
        "trees": trees,
        "store_mb": store_bytes / MB,
        "sr_total_pg": summary["fluxes"]["SR"]["total_pg_per_yr"]["mean"],
    }


def sklearn_loop_child(
    *, n_cells: int, replicates: int, trees: int = TREES, n_jobs: int = 2, seed: int = 0
) -> dict:
    """The scikit-learn loop a user would write, keeping every prediction (see module doc)."""
    from sklearn.ensemble import RandomForestRegressor

    from srgpu.config import TRAINED_FLUXES
    from srgpu.run.sampling import bin_weights, replicate_split
    from srgpu.run.stats import validation_metrics

    inputs = synthetic_inputs(n_cells=n_cells, seed=seed)
    n_rows, n_years = inputs.n_rows, inputs.n_years
    weights = bin_weights(scheme="area", area_shares=inputs.area_shares)
    t_fit = t_pred = 0.0
    nodes = []
    t0 = time.perf_counter()
    preds = {f: np.empty((replicates, n_rows)) for f in TRAINED_FLUXES}
    for r in range(replicates):
        for flux in TRAINED_FLUXES:
            d = inputs.fluxes[flux]
            split = replicate_split(
                bins=d.bins, weights=weights, train_fraction=0.8, seed=seed, replicate=r, flux=flux
            )
            p = d.X.shape[1]
            rf = RandomForestRegressor(
                n_estimators=trees,
                max_features=max(p // 3, 1),
                min_samples_split=6,
                bootstrap=True,
                n_jobs=n_jobs,
                random_state=r,
            )
            t = time.perf_counter()
            rf.fit(d.X[split.train], d.y[split.train])
            t_fit += time.perf_counter() - t
            t = time.perf_counter()
            preds[flux][r] = rf.predict(inputs.grid_X[flux])
            validation_metrics(d.y[split.test], rf.predict(d.X[split.test]))
            t_pred += time.perf_counter() - t
            if r == 0:
                nodes.append(float(np.mean([e.tree_.node_count for e in rf.estimators_])))
    t = time.perf_counter()
    preds["AR"] = preds["SR"] - preds["HR"]
    stats = {}
    for f, P in preds.items():
        mean, sd = P.mean(axis=0), P.std(axis=0, ddof=1) if replicates > 1 else None
        maps = P.reshape(replicates, n_years, inputs.n_cells).mean(axis=1)
        q = np.quantile(maps, [0.025, 0.5, 0.975], axis=0)
        mad = np.median(np.abs(maps - q[1]), axis=0)
        totals = (P.reshape(replicates, n_years, inputs.n_cells) * inputs.weight_m2).sum(axis=2)
        stats[f] = (mean, sd, q, mad, totals)
    t_stats = time.perf_counter() - t
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "fit_s": t_fit,
        "predict_s": t_pred,
        "statistics_s": t_stats,
        "n_rows": n_rows,
        "n_cells": n_cells,
        "replicates": replicates,
        "trees": trees,
        "n_jobs": n_jobs,
        "kept_predictions_mb": sum(P.nbytes for P in preds.values()) / MB,
        "mean_nodes_per_tree_SR_HR": nodes,
        "sr_total_pg": float(stats["SR"][4].mean() / 1e15),
    }


# -- training alone -----------------------------------------------------------------------
def bench_training(*, trees: int, repeats: int, seed: int = 0) -> dict:
    """Trees per second on one core: srgpu ``fit_forest`` vs ``RandomForestRegressor.fit``
    (``n_jobs=1``), SR-shaped training set (80 % of 2665 rows), interleaved best of N; plus the
    bit-identity of the numba kernel against scikit-learn ``predict`` on that forest."""
    from sklearn.ensemble import RandomForestRegressor

    from srgpu.config import ForestConfig
    from srgpu.forest.numba_engine import NumbaEngine
    from srgpu.forest.train import fit_forest

    inputs = synthetic_inputs(n_cells=64, seed=seed)
    d = inputs.fluxes["SR"]
    n = int(0.8 * d.y.size)
    X, y = d.X[:n], d.y[:n]
    cfg = ForestConfig(trees=trees)
    fitted = {}
    fns = {
        "srgpu_fit_forest": lambda: fit_forest(
            X, y, forest=cfg, seed=np.random.SeedSequence(seed)
        ),
        "sklearn_fit_1job": lambda: RandomForestRegressor(
            n_estimators=trees, max_features=cfg.mtry_for(X.shape[1]), min_samples_split=6,
            bootstrap=True, n_jobs=1, random_state=seed,
        ).fit(X, y),
    }  # fmt: skip
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fitted[k] = fn()
            best[k] = min(best[k], time.perf_counter() - t)
    rf = fitted["srgpu_fit_forest"]
    grid = inputs.grid_X["SR"][:2000]
    bit = bool(
        np.array_equal(NumbaEngine().compile([rf]).predict(grid, threads=1)[0], rf.predict(grid))
    )
    return {
        "train_rows": n,
        "predictors": int(X.shape[1]),
        "trees": trees,
        "repeats_best_of": repeats,
        "best_seconds": best,
        "trees_per_second": {k: trees / v for k, v in best.items()},
        "mean_nodes_per_tree": {
            k: float(np.mean([e.tree_.node_count for e in m.estimators_]))
            for k, m in fitted.items()
        },
        "bit_identical_numba_vs_sklearn_on_fit_forest": bit,
    }


# -- R --------------------------------------------------------------------------------------
def bench_r(*, n_cells: int, trees: int, seed: int = 0) -> dict:
    """Fit and predict with R randomForest (both fluxes) in a child process; absent if no R."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {"available": False, "reason": "Rscript not found on PATH"}
    inputs = synthetic_inputs(n_cells=n_cells, seed=seed)
    with tempfile.TemporaryDirectory(prefix="srgpu-bench-r-") as tmp:
        for flux, d in inputs.fluxes.items():
            n = int(0.8 * d.y.size)
            cols = list(d.names)
            np.savetxt(
                Path(tmp) / f"{flux}_train.csv",
                np.column_stack([d.X[:n], d.y[:n]]),
                delimiter=",", header=",".join([*cols, "y"]), comments="", fmt="%.9g",
            )  # fmt: skip
            np.savetxt(
                Path(tmp) / f"{flux}_grid.csv", inputs.grid_X[flux], delimiter=",",
                header=",".join(cols), comments="", fmt="%.9g",
            )  # fmt: skip
        script = Path(__file__).resolve().parent / "r_randomforest.R"
        t0 = time.perf_counter()
        proc = subprocess.Popen([rscript, str(script), tmp, str(trees)])
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            return {"available": False, "reason": "Rscript failed (is randomForest installed?)"}
        result = json.loads((Path(tmp) / "r_result.json").read_text())
    hwm = result.pop("vm_hwm_mb", None)  # wait4's maxrss would include this process at fork
    result.update(available=True, process_s=wall, peak_rss_mb=hwm)
    return result


# -- the whole benchmark ------------------------------------------------------------------
SUITES = {
    # fraction: share of the 0.5 deg grid's rows predicted; replicates of the end-to-end runs
    "tiny": {"fraction": 0.0005, "replicates": 2, "trees": 10, "repeats": 1,
             "infer_fraction": 0.0005},
    "quick": {"fraction": 0.01, "replicates": 8, "trees": TREES, "repeats": 2,
              "infer_fraction": 0.005},
    "full": {"fraction": 0.05, "replicates": 8, "trees": TREES, "repeats": 2,
             "infer_fraction": 0.05},
}  # fmt: skip


def _per_rep_model(srgpu: dict, sk: dict) -> dict:
    """Linear cost model ``(once, per replicate, per replicate-row)`` of each engine.

    srgpu: training + validation per replicate, inference per replicate-row, the store and the
    final statistics once (mostly fixed costs at the measured sizes; the scaling fit resolves
    their growth). scikit-learn loop: fit per replicate, predict + statistics per replicate-row.
    """
    R, rows = srgpu["replicates"], srgpu["n_rows"]
    s = (
        srgpu["store_and_statistics_s"],
        (srgpu["train_s"] + srgpu["validate_s"]) / R,
        srgpu["infer_s"] / (R * rows),
    )
    k = (0.0, sk["fit_s"] / R, (sk["predict_s"] + sk["statistics_s"]) / (R * rows))
    return {"srgpu": s, "sklearn": k}


def run(*, suite: str = "quick", seed: int = 0, log=print) -> dict:
    """Run the end-to-end benchmark of ``suite`` ("tiny", "quick" or "full"); return the dict."""
    from srgpu.bench import inference as bench_inference

    cfg = SUITES[suite]
    trees, R = cfg["trees"], cfg["replicates"]
    n_cells = cells_for(0.5, cfg["fraction"])
    machine = machine_info()
    t_start = time.perf_counter()

    log(f"[e2e] inference alone ({cfg['infer_fraction']} of the job's rows)")
    inference = bench_inference.run(
        fraction=cfg["infer_fraction"], repeats=max(cfg["repeats"], 2), trees=trees, seed=seed
    )
    log("[e2e] training alone")
    training = bench_training(trees=trees, repeats=max(cfg["repeats"], 1), seed=seed)

    log(f"[e2e] end to end: {R} replicates x {n_cells * N_YEARS} rows, interleaved")
    base = {
        k: run_child("srgpu.bench.common:baseline_rss", {"kind": k})["peak_rss_mb"]
        for k in ("srgpu", "sklearn")
    }
    runs: dict[str, list] = {"srgpu": [], "sklearn": []}
    kw = {"n_cells": n_cells, "replicates": R, "trees": trees, "seed": seed}
    for _ in range(cfg["repeats"]):
        runs["srgpu"].append(run_child("srgpu.bench.e2e:srgpu_child", kw))
        runs["sklearn"].append(run_child("srgpu.bench.e2e:sklearn_loop_child", kw))
    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items()}
    s, k = best["srgpu"], best["sklearn"]

    log("[e2e] R randomForest")
    r_res = bench_r(n_cells=n_cells, trees=trees, seed=seed)

    # extrapolation to the full job from the measured per-replicate and per-row costs
    model = _per_rep_model(s, k)
    full = {
        name: once + JOB_REPLICATES * (per_rep + per_row * JOB_ROWS)
        for name, (once, per_rep, per_row) in model.items()
    }
    kept_per_rep_row = k["kept_predictions_mb"] / (R * k["n_rows"])  # 3 fluxes x 8 bytes
    sk_mem_full_mb = base["sklearn"] + kept_per_rep_row * JOB_REPLICATES * JOB_ROWS  # a floor
    rates = inference["traversals_per_second"]
    sk_rate = rates["sklearn_predict_1thread"]
    result = {
        "benchmark": "e2e",
        "suite": suite,
        "date": dt.date.today().isoformat(),
        "machine": machine,
        "setup": {
            "sr_records": SR_RECORDS,
            "hr_records": HR_RECORDS,
            "sr_predictors": 5,
            "hr_predictors": 7,
            "train_fraction": 0.8,
            "trees": trees,
            "srgpu_forest": "fit_forest (numba grower): explicit bootstrap, the trees of "
            "DecisionTreeRegressor(min_samples_split = nodesize + 1 = 6, "
            "max_features = max(p // 3, 1)) on the resampled rows, bit for bit",
            "sklearn_forest": "RandomForestRegressor(n_estimators, max_features=max(p//3,1), "
            "min_samples_split=6, bootstrap=True, n_jobs=2)",
            "grid_fraction_of_job_rows": cfg["fraction"],
            "grid_cells": n_cells,
            "years": N_YEARS,
            "grid_rows": n_cells * N_YEARS,
            "job_rows": JOB_ROWS,
            "job_cells": JOB_CELLS,
            "job_replicates": JOB_REPLICATES,
            "replicates": R,
            "repeats_best_of": cfg["repeats"],
            "inference_fraction_of_job_rows": cfg["infer_fraction"],
            "cores_used": "srgpu: numba and training threads = all cores; sklearn: n_jobs=2; "
            "R: 1 core (randomForest is single-threaded)",
        },
        "inference": inference,
        "training": training,
        "e2e": {"srgpu": s, "sklearn_loop": k, "all_runs": runs},
        "baseline_rss_mb": base,
        "r_randomforest": r_res,
        # headline ratios, all measured in this one run
        "inference_speedup_vs_sklearn_predict": rates["numba_1thread"] / sk_rate,
        "training_speedup_vs_sklearn_fit": training["trees_per_second"]["srgpu_fit_forest"]
        / training["trees_per_second"]["sklearn_fit_1job"],
        "speedup_vs_sklearn": k["wall_s"] / s["wall_s"],
        "replicates_per_minute": {
            "srgpu": 60 * R / s["wall_s"],
            "sklearn_loop": 60 * R / k["wall_s"],
        },
        "bit_identical": bool(
            inference["bit_identical_numba_vs_sklearn"]
            and training["bit_identical_numba_vs_sklearn_on_fit_forest"]
        ),
        "extrapolated_full_job": {
            "extrapolated": True,
            "how": "measured costs: once (srgpu store + final statistics) + 2000 x (per replicate: "
            "training + validation + per row: inference (+ sklearn statistics) x 1.9 M rows); "
            "memory of the scikit-learn loop: baseline + kept predictions (SR, HR, AR float64), "
            "a floor: the statistics' temporaries add more (see the scaling result)",
            "hours": {name: v / 3600 for name, v in full.items()},
            "speedup_vs_sklearn": full["sklearn"] / full["srgpu"],
            "sklearn_loop_peak_memory_gb": sk_mem_full_mb / 1024,
            "sklearn_loop_kept_predictions_gb_per_flux": 8 * JOB_REPLICATES * JOB_ROWS / 1024**3,
            "traversals": 2 * JOB_REPLICATES * trees * JOB_ROWS,
            "forests_trained": 2 * JOB_REPLICATES,
        },
        "elapsed_s": None,
    }
    if r_res.get("available"):
        r_fit = r_res["SR"]["fit_s"] + r_res["HR"]["fit_s"]
        r_pred = r_res["SR"]["predict_s"] + r_res["HR"]["predict_s"]
        rows = r_res["SR"]["grid_rows"]
        r_per_rep = r_fit + r_pred
        srgpu_per_rep = s["wall_s"] / R
        r_tree_rate = 2 * trees / r_fit
        r_trav_rate = 2 * trees * rows / r_pred
        # the full job in R: per replicate both fits, and both predicts scaled to 1.9 M rows
        r_full_s = JOB_REPLICATES * (r_fit + r_pred * JOB_ROWS / rows)
        result["extrapolated_full_job"]["hours"]["r_randomforest_1_core"] = r_full_s / 3600
        result["speedup_vs_r"] = {
            "per_replicate_1_core_r": r_per_rep / srgpu_per_rep,
            "full_job_extrapolated_1_core_r": r_full_s / full["srgpu"],
            "full_job_extrapolated_r_perfectly_parallel_on_all_cores": r_full_s
            / (os.cpu_count() or 1)
            / full["srgpu"],
            "per_replicate_r_perfectly_parallel_on_all_cores": r_per_rep
            / (os.cpu_count() or 1)
            / srgpu_per_rep,
            "training_per_core": training["trees_per_second"]["srgpu_fit_forest"]
            / (trees / r_res["SR"]["fit_s"]),
            "inference_per_core": rates["numba_1thread"] / r_trav_rate,
            "note": "R: both fluxes' fit + predict of one replicate on one core; srgpu: "
            "end-to-end seconds per replicate on all cores (the run's fixed costs, store and "
            "final statistics, spread over its replicates); full job: 2000 replicates at "
            "1.9 M rows, R's predict time scaled by rows, srgpu's from the same linear model "
            "as extrapolated_full_job; per-core ratios use SR fit and both fluxes' predict",
        }
        result["r_randomforest"]["trees_per_second_fit"] = r_tree_rate
        result["r_randomforest"]["traversals_per_second_predict"] = r_trav_rate
    result["elapsed_s"] = time.perf_counter() - t_start
    return result
