"""Peak memory of ``run_ensemble`` against the number of replicates (fixed batch size).

Each point runs in a fresh process (``common.run_child``) on synthetic paper-shaped inputs and
records that process's own peak resident set. With the batch size fixed, srgpu keeps one batch
of forests and the per-row moments in memory whatever the replicate count; only the store (on
disk) grows. Usage: ``python -m benchmarks.bench_memory [--fraction F] [--trees T]``.
"""

from __future__ import annotations

import argparse
import tempfile

from benchmarks.common import (
    JOB_ROWS,
    N_YEARS,
    machine_info,
    run_child,
    synthetic_inputs,
    write_result,
)


def measure(
    *, replicates: int, batch_size: int, trees: int, n_cells: int, predictive: str | None = None
) -> dict:
    """Child target: one ensemble run (``predictive``: the config's setting, default the
    config's own default); returns what it ran (the parent adds peak RSS)."""
    from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
    from srgpu.run.ensemble import run_ensemble

    inputs = synthetic_inputs(n_cells=n_cells)
    cfg = EnsembleConfig(
        replicates=replicates,
        batch_size=batch_size,
        forest=ForestConfig(trees=trees),
        predict=PredictConfig(engine="numba"),
        **({} if predictive is None else {"predictive": predictive}),
    )
    with tempfile.TemporaryDirectory(prefix="srgpu-mem-") as out:
        run_ensemble(cfg, out=out, inputs=inputs)
    return {"replicates": replicates, "rows": inputs.n_rows}


def run(*, fraction: float = 0.25, trees: int = 20, replicates=(8, 16, 32, 64), batch_size=8):
    n_cells = int(JOB_ROWS * fraction / N_YEARS)
    points = []
    for r in replicates:
        res = run_child(
            "benchmarks.bench_memory:measure",
            {"replicates": r, "batch_size": batch_size, "trees": trees, "n_cells": n_cells},
        )
        print(f"{r:5d} replicates: peak RSS {res['peak_rss_mb']:.0f} MiB, {res['process_s']:.0f} s")
        points.append(res)
    peaks = [p["peak_rss_mb"] for p in points]

    def tiny_grid(replicates: int, trees: int, **kw) -> float:
        """Peak RSS (MiB) of a run of ``replicates`` on a 200-cell grid."""
        return run_child(
            "benchmarks.bench_memory:measure",
            {"replicates": replicates, "batch_size": batch_size, "trees": trees, "n_cells": 200,
             **kw},
        )["peak_rss_mb"]  # fmt: skip

    # full-size forests over many batches on a tiny grid: heap fragmentation would show here
    forest_points = []
    for r in (batch_size, 4 * batch_size, 8 * batch_size, 32 * batch_size):
        peak = tiny_grid(r, 500)
        print(f"{r:5d} replicates x 500 trees (tiny grid): peak RSS {peak:.0f} MiB")
        forest_points.append({"replicates": r, "peak_rss_mb": peak})
    # one batch of full-size forests (500 trees, the first point above) against tiny ones, on a
    # tiny grid: the memory a batch of forests holds, added once whatever the replicate count
    forests = {trees: tiny_grid(batch_size, trees), 500: forest_points[0]["peak_rss_mb"]}
    # that batch of 500-tree forests without and with the predictive moments (the config's
    # default, "moments", which the points above ran: each forest's leaf tables and two moment
    # forests are kept for the batch)
    from srgpu.config import EnsembleConfig

    default = EnsembleConfig().predictive
    by_predictive = {"none": tiny_grid(batch_size, 500, predictive="none"), default: forests[500]}
    print(f"batch of 500-tree forests by predictive setting: {by_predictive} MiB")
    per_row_mb = (min(peaks) - forests[trees]) / points[0]["rows"]
    full_mb = max(p["peak_rss_mb"] for p in forest_points) + per_row_mb * JOB_ROWS
    return {
        "benchmark": "memory-vs-replicates",
        "machine": machine_info(),
        "setup": {
            "fraction_of_job_rows": fraction,
            "rows": points[0]["rows"],
            "trees": trees,
            "batch_size": batch_size,
            "years": N_YEARS,
        },
        "points": points,
        "peak_rss_mb_min": min(peaks),
        "peak_rss_mb_max": max(peaks),
        "growth_mb_per_replicate": (peaks[-1] - peaks[0]) / (replicates[-1] - replicates[0]),
        "batch_of_forests_peak_rss_mb": {str(t): v for t, v in forests.items()},
        "forests_500_trees_vs_replicates": forest_points,
        "batch_of_500_tree_forests_peak_rss_mb_by_predictive": by_predictive,
        "rows_mb_per_million": per_row_mb * 1e6,
        "full_job_peak_rss_mb_estimate": full_mb,
        "full_job_estimate": "500-tree batch of 8 on a tiny grid + measured MiB per row x 1.9 M "
        "rows; flat in replicates (measured 8..64 at 20 trees, 8..256 at 500 trees); "
        "extrapolated: true",
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--fraction", type=float, default=0.25)
    ap.add_argument("--trees", type=int, default=20)
    args = ap.parse_args(argv)
    result = run(fraction=args.fraction, trees=args.trees)
    print(write_result(result, "memory-replicates"))


if __name__ == "__main__":
    main()
