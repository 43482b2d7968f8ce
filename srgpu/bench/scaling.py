"""Scaling: time and peak memory versus replicates and grid size.

srgpu (``run_ensemble``, numba engine, batches of ``batch_size`` replicates) and the
scikit-learn loop (keeping every prediction) are run in fresh processes (peak resident memory
from ``wait4``) on synthetic paper-shaped inputs:

* versus replicates at a fixed grid (0.5 deg x ``fraction``);
* versus grid size (4, 2, 1, 0.5 deg x ``grid_fraction``) at a fixed replicate count.

Small points are measured; the large ones (10 .. 2000 replicates, the full 0.5 deg grid) are
extrapolated from a least-squares linear model ``time = c + R * (a + b * rows)`` and
``memory = m0 + m_rows * rows + m_rep * R`` fitted to the measured points, and flagged
``"extrapolated": true``.
"""

from __future__ import annotations

import datetime as dt
import time

import numpy as np

from srgpu.bench.common import (
    JOB_REPLICATES,
    JOB_ROWS,
    N_YEARS,
    RESOLUTIONS,
    TREES,
    cells_for,
    machine_info,
    run_child,
)

SUITES = {
    # time curves use `trees`; memory curves use `mem_trees` (the kept predictions, the per-row
    # arrays and the grid do not depend on the tree count) on larger grids (`mem_fraction`)
    "tiny": {"fraction": 0.0005, "grid_fraction": 0.0005, "replicates": (1, 2),
             "grid_replicates": 1, "resolutions": (4.0, 0.5), "trees": 10, "batch_size": 1,
             "mem_trees": 5, "mem_fraction": 0.002, "sklearn_replicates": (1, 2)},
    "quick": {"fraction": 0.01, "grid_fraction": 0.01, "replicates": (2, 4, 8),
              "grid_replicates": 2, "resolutions": RESOLUTIONS, "trees": TREES, "batch_size": 2,
              "mem_trees": 20, "mem_fraction": 0.25, "sklearn_replicates": (2, 4, 8)},
    "full": {"fraction": 0.05, "grid_fraction": 0.25, "replicates": (2, 10, 20),
             "grid_replicates": 2, "resolutions": RESOLUTIONS, "trees": TREES, "batch_size": 8,
             "mem_trees": 20, "mem_fraction": 1.0, "sklearn_replicates": (2, 4, 8, 16)},
}  # fmt: skip
EXTRAPOLATE_REPLICATES = (10, 100, 1000, 2000)


def _lstsq(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients and the largest relative residual."""
    coef, *_ = np.linalg.lstsq(features, y, rcond=None)
    fit = features @ coef
    return coef, float(np.max(np.abs(fit - y) / np.abs(y)))


def _point(res: dict, *, kind: str, curve: str, **extra) -> dict:
    return {
        "engine": kind,
        "curve": curve,
        "extrapolated": False,
        "replicates": res["replicates"],
        "rows": res["n_rows"],
        "trees": res["trees"],
        "wall_s": res["wall_s"],
        "process_s": res["process_s"],
        "peak_rss_mb": res["peak_rss_mb"],
        **{
            k: res[k]
            for k in ("train_s", "validate_s", "infer_s", "fit_s", "predict_s")
            if k in res
        },
        **extra,
    }


def run(*, suite: str = "quick", seed: int = 0, log=print) -> dict:
    cfg = SUITES[suite]
    trees, bs, mt = cfg["trees"], cfg["batch_size"], cfg["mem_trees"]
    t_start = time.perf_counter()
    points: list[dict] = []
    srgpu_child = "srgpu.bench.e2e:srgpu_child"
    sk_child = "srgpu.bench.e2e:sklearn_loop_child"

    # time (and memory) versus replicates, srgpu, paper tree count
    fixed_cells = cells_for(0.5, cfg["fraction"])
    fixed_rows = fixed_cells * N_YEARS
    for R in cfg["replicates"]:
        log(f"[scaling] srgpu {R} replicates x {fixed_rows} rows, {trees} trees")
        kw = {"n_cells": fixed_cells, "replicates": R, "trees": trees, "batch_size": bs}
        points.append(_point(run_child(srgpu_child, {**kw, "seed": seed}), kind="srgpu",
                             curve="replicates"))  # fmt: skip
    # time versus grid size, srgpu, paper tree count
    Rg = cfg["grid_replicates"]
    for resdeg in cfg["resolutions"]:
        cells = cells_for(resdeg, cfg["grid_fraction"])
        log(
            f"[scaling] srgpu {Rg} replicates x {cells * N_YEARS} rows ({resdeg} deg), "
            f"{trees} trees"
        )
        kw = {"n_cells": cells, "replicates": Rg, "trees": trees, "batch_size": bs, "seed": seed}
        points.append(_point(run_child(srgpu_child, kw), kind="srgpu", curve="grid",
                             resolution_deg=resdeg))  # fmt: skip
    # memory versus grid size, srgpu (few trees: the per-row memory does not depend on them)
    for resdeg in cfg["resolutions"]:
        cells = cells_for(resdeg, cfg["mem_fraction"])
        log(f"[scaling] srgpu memory, {Rg} replicates x {cells * N_YEARS} rows, {mt} trees")
        kw = {"n_cells": cells, "replicates": Rg, "trees": mt, "batch_size": bs, "seed": seed}
        points.append(_point(run_child(srgpu_child, kw), kind="srgpu", curve="memory_grid",
                             resolution_deg=resdeg))  # fmt: skip
    # memory versus replicates, scikit-learn loop (keeps every prediction)
    mem_cells = cells_for(0.5, cfg["mem_fraction"])
    for Rk in cfg["sklearn_replicates"]:
        log(f"[scaling] sklearn loop memory, {Rk} replicates x {mem_cells * N_YEARS} rows")
        kw = {"n_cells": mem_cells, "replicates": Rk, "trees": mt, "seed": seed}
        points.append(
            _point(run_child(sk_child, kw), kind="sklearn_loop", curve="memory_replicates")
        )

    def sel(kind, curve):
        return [p for p in points if p["engine"] == kind and p["curve"] == curve]

    def arr(pts, key):
        return np.array([p[key] for p in pts], float)

    # srgpu time model over the paper-tree points: wall = c + a R + b R rows, with a (training
    # and validation per replicate) and b (inference per replicate-row) from run_batch's own
    # timers (robust on a loaded machine, unlike a free fit), c the median remainder
    tp = sel("srgpu", "replicates") + sel("srgpu", "grid")
    Rv, rows, wall = arr(tp, "replicates"), arr(tp, "rows"), arr(tp, "wall_s")
    a = float((arr(tp, "train_s") + arr(tp, "validate_s")).sum() / Rv.sum())
    big = max(tp, key=lambda p: p["replicates"] * p["rows"])
    b = big["infer_s"] / (big["replicates"] * big["rows"])
    c = max(float(np.median(wall - a * Rv - b * Rv * rows)), 0.0)
    tcoef = np.array([c, a, b])
    tres = float(np.max(np.abs(c + a * Rv + b * Rv * rows - wall) / wall))
    # srgpu memory: per-row slope from the memory-grid curve, per-replicate slope from the
    # replicate curve, anchored at the largest paper-tree measurement
    mg = sel("srgpu", "memory_grid")
    mrow, mres_rows = _lstsq(np.column_stack([np.ones(len(mg)), arr(mg, "rows")]),
                             arr(mg, "peak_rss_mb"))  # fmt: skip
    rp = sel("srgpu", "replicates")
    # marginal growth between the two largest replicate counts (a linear, upper-bound model)
    r2 = sorted(rp, key=lambda p: p["replicates"])[-2:]
    mrep = np.array([0.0, 0.0])
    if len(r2) == 2:
        mrep[1] = (r2[1]["peak_rss_mb"] - r2[0]["peak_rss_mb"]) / (
            r2[1]["replicates"] - r2[0]["replicates"]
        )
    anchor = max(rp, key=lambda p: p["replicates"])
    per_row_mb, per_rep_mb = max(float(mrow[1]), 0.0), max(float(mrep[1]), 0.0)

    def srgpu_mem(R: float, rows: float) -> float:
        return (anchor["peak_rss_mb"] + per_row_mb * (rows - anchor["rows"])
                + per_rep_mb * (R - anchor["replicates"]))  # fmt: skip

    def srgpu_time(R: float, rows: float) -> float:
        return float(tcoef[0] + tcoef[1] * R + tcoef[2] * R * rows)

    # scikit-learn loop memory: m0 + m R rows; its time from the end-to-end benchmark's costs
    sp = sel("sklearn_loop", "memory_replicates")
    kfeat = np.column_stack([np.ones(len(sp)), arr(sp, "replicates") * arr(sp, "rows")])
    kcoef, kres = _lstsq(kfeat, arr(sp, "peak_rss_mb"))

    def sk_mem(R: float, rows: float) -> float:
        return float(kcoef[0] + kcoef[1] * R * rows)

    extrap = []
    for Rx in EXTRAPOLATE_REPLICATES:
        for rws in (fixed_rows, JOB_ROWS):
            extrap.append(
                {
                    "engine": "srgpu",
                    "extrapolated": True,
                    "replicates": Rx,
                    "rows": rws,
                    "wall_s": srgpu_time(Rx, rws),
                    "peak_rss_mb": srgpu_mem(Rx, rws),
                }
            )
            extrap.append({"engine": "sklearn_loop", "extrapolated": True, "replicates": Rx,
                           "rows": rws, "wall_s": None,
                           "peak_rss_mb": sk_mem(Rx, rws)})  # fmt: skip
    mem_rep = [p["peak_rss_mb"] for p in rp]
    return {
        "benchmark": "scaling",
        "suite": suite,
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "setup": {
            "trees": trees,
            "memory_curve_trees": mt,
            "srgpu_batch_size": bs,
            "replicate_curve_rows": fixed_rows,
            "grid_curve_replicates": Rg,
            "grid_fraction_of_rows": cfg["grid_fraction"],
            "memory_fraction_of_rows": cfg["mem_fraction"],
            "resolutions_deg": list(cfg["resolutions"]),
            "time_model": "srgpu wall = c + a R + b R rows: a = training + validation seconds per "
            "replicate (run_batch timers, all paper-tree points), b = inference seconds per "
            "replicate-row (largest point), c = median remainder (store, statistics)",
            "memory_model": "srgpu: peak of the largest measured replicate count + per-row slope "
            "(memory-grid curve, few trees) x extra rows + marginal per-replicate growth between "
            "the two largest replicate counts (clipped at 0) x extra replicates: linear, an "
            "upper bound if the growth saturates; sklearn loop: m0 + m R rows (memory curve)",
        },
        "measured": points,
        "extrapolated_points": extrap,
        "fits": {
            "srgpu_time_c_a_b": tcoef.tolist(),  # seconds, s/replicate, s/replicate-row
            "srgpu_time_max_relative_residual": tres,
            "srgpu_memory_mb_per_row": float(mrow[1]),
            "srgpu_memory_rows_max_relative_residual": mres_rows,
            "srgpu_memory_mb_per_replicate": float(mrep[1]),
            "sklearn_memory_m0_mb_and_bytes_per_replicate_row": [
                float(kcoef[0]),
                float(kcoef[1]) * 1024**2,
            ],
            "sklearn_memory_max_relative_residual": kres,
        },  # fmt: skip
        "srgpu_memory_vs_replicates": {
            "replicates": [p["replicates"] for p in rp],
            "peak_rss_mb": mem_rep,
            "max_over_min": max(mem_rep) / min(mem_rep),
        },
        "peak_memory_2000_replicates_0p5deg_gb": {
            "extrapolated": True,
            "srgpu": srgpu_mem(JOB_REPLICATES, JOB_ROWS) / 1024,
            "sklearn_loop": sk_mem(JOB_REPLICATES, JOB_ROWS) / 1024,
            "target_srgpu_gb": 4.0,
        },
        "full_job_hours_srgpu_extrapolated": srgpu_time(JOB_REPLICATES, JOB_ROWS) / 3600,
        "elapsed_s": time.perf_counter() - t_start,
    }
