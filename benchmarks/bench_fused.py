"""The fused walk: forest mean and predictive moments in one walk of each tree.

Two measurements, one JSON with machine info::

    python -m benchmarks.bench_fused --before DIR

1. **Kernel**, one thread, per replicate, on the SR- and HR-shaped forests of
   ``benchmarks.bench_predictive`` (500 trees, numba grower, 80 % draw) and the same rows:
   the numba engine's forest mean alone, the separate moments walk
   (:func:`srgpu.forest.predictive.predictive_moments`, what a run added before) and the fused
   walk (:meth:`srgpu.forest.fused.FusedForests.predict_moments`: mean and both moments).
   Target (issue 14): fused at most 1.3x the mean only. Also checked: the fused mean equals
   the engine's bit for bit, and the largest relative difference of its moments from
   ``predictive_moments``'.
   Best of the rounds, and the median over rounds of the fused / mean-only ratio within a round
   (robust to a load spike that hits one contender's every round).
2. **Run**, one thread: ``run_batch`` on the demo world with ``predictive = "none"`` and
   ``"moments"``, before (the source tree ``--before``, e.g. an export of the main branch) and
   after (this tree), each in its own process on the same forests (trained once per process and
   handed to ``run_batch``, so the times are compile, validation, the predictive pass, leaf
   tables, held-out calibration and the grid inference: everything but training); the four
   interleaved round by round, best of the rounds, per replicate.

Timing: process CPU time (``time.process_time``), ``NUMBA_NUM_THREADS=1``. The machine is
shared: ratios from interleaved runs are the figures to quote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def kernel(*, flux: str, n_rows: int, trees: int, seed: int, repeats: int) -> dict:
    """Mean only, separate moments walk and fused walk on one replicate's forest."""
    from benchmarks.bench_predictive import _replicate
    from benchmarks.common import interleaved_cpu_s
    from srgpu.forest import predictive as P
    from srgpu.forest.fused import fuse
    from srgpu.forest.numba_engine import NumbaEngine

    X, y, forest, train, _ = _replicate(flux, seed=seed, replicate=0, trees=trees)
    tables = P.leaf_tables([forest], X=X, y=y, train_index=[train])
    rows = np.random.default_rng(seed + 1).normal(size=(n_rows, X.shape[1])).astype(np.float32)
    compiled = NumbaEngine().compile([forest])
    fused = fuse(compiled, [tables.moments])
    mean = compiled.predict(rows, threads=1)
    fm, f1, f2 = fused.predict_moments(rows, threads=1)
    pm = P.predictive_moments(tables, rows, threads=1)
    fns = {
        "mean_only": lambda: compiled.predict(rows, threads=1),
        "moments_walk": lambda: P.predictive_moments(tables, rows, threads=1),
        "fused": lambda: fused.predict_moments(rows, threads=1),
    }
    each = interleaved_cpu_s(fns, repeats=repeats)
    times = {k: min(v) for k, v in each.items()}
    paired = np.array(each["fused"]) / np.array(each["mean_only"])
    rel = max(float(np.max(np.abs(a - b) / np.abs(b))) for a, b in ((f1, pm.mean), (f2, pm.second)))
    return {
        "flux": flux,
        "trees": trees,
        "rows": n_rows,
        "fused_mean_equals_engine_bit_for_bit": bool(np.array_equal(fm, mean)),
        "fused_moments_max_relative_difference_vs_predictive_moments": rel,
        "best_cpu_seconds": times,
        "us_per_row": {k: v / n_rows * 1e6 for k, v in times.items()},
        "fused_over_mean_only": times["fused"] / times["mean_only"],
        "fused_over_mean_only_median_of_rounds": float(np.median(paired)),
        "cpu_seconds_each_round": each,
        "before_two_walks_over_mean_only": (times["mean_only"] + times["moments_walk"])
        / times["mean_only"],
    }


CHILD = r"""
import json, sys, time
import numpy as np
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.data.inputs import prepare_inputs
from srgpu.run import batch as B

replicates, trees, modes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
kw = {}
if sys.argv[4]:  # real data: SRDB v5.0 and the 0.5 degree climatology grids
    data = sys.argv[4]
    real = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI_GS")
    kw = dict(
        srdb=data + "/srdb/srdb-data_v5.0_20200511.csv.gz",
        drivers=tuple(data + "/grids/" + g for g in ("era5_monthly_climatology_0p5.nc",
                      "merra2_rsds_monthly_climatology_0p5.nc", "lai_proxy_fapar_0p5.nc")),
        vegetation=data + "/grids/modis_igbp_2019_0p5.nc",
        predictors=(("SR", real), ("HR", real)),
    )
cfg = EnsembleConfig(replicates=replicates, batch_size=replicates,
                     forest=ForestConfig(trees=trees), **kw)
inputs = prepare_inputs(cfg)
spec = B.batch_specs(replicates, replicates)[0]
warm = B.batch_specs(1, 1)[0]
B.run_batch(warm, inputs, cfg.replace(replicates=1, forest=ForestConfig(trees=2)))  # JIT
trained = B.train_batch(spec, inputs, cfg)
B.train_batch = lambda *a, **k: trained  # every mode on the same forests, training not timed
out = {"rows": int(inputs.n_rows), "cells": int(inputs.n_cells), "times": {}}
for mode in modes:
    c = cfg.replace(predictive=mode)
    t = time.process_time()
    res = B.run_batch(spec, inputs, c)
    out["times"][mode] = {"cpu_s": time.process_time() - t,
                          "wall_timing": {k: float(v) for k, v in res.timing.items()}}
print("RESULT " + json.dumps(out))
"""


def _child(src: Path, *, replicates: int, trees: int, modes: list[str], data: Path | None) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), NUMBA_NUM_THREADS="1")
    world = str(data) if data is not None else ""
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(replicates), str(trees), ",".join(modes), world],
        env=env,
        cwd=src,
        capture_output=True,
        text=True,
        check=True,
    )
    line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


def run_demo(
    *, before: Path, rounds: int, replicates: int, trees: int, data: Path | None = None
) -> dict:
    """``run_batch`` CPU time (training excluded) per replicate, before and after, both modes;
    within a process the two modes alternate (none first in odd rounds, moments first in even
    ones), the processes alternate before/after."""
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    raw: list[dict] = []
    info = {}
    for k in range(rounds):
        modes = ["none", "moments"] if k % 2 == 0 else ["moments", "none"]
        for name, src in (("before", before), ("after", ROOT)):
            res = _child(src, replicates=replicates, trees=trees, modes=modes, data=data)
            info = {"rows": res["rows"], "cells": res["cells"]}
            raw.append({"round": k, "code": name, **res})
            for mode, t in res["times"].items():
                per = t["cpu_s"] / replicates
                best[name][mode] = min(best[name].get(mode, float("inf")), per)
    return {
        "world": "demo (seed 0)" if data is None else "real: SRDB v5.0, 0.5 deg climatology",
        "replicates": replicates,
        "trees": trees,
        **info,
        "best_cpu_seconds_per_replicate": best,
        "moments_over_none": {n: b["moments"] / b["none"] for n, b in best.items()},
        "moments_after_over_before": best["after"]["moments"] / best["before"]["moments"],
        "none_after_over_before": best["after"]["none"] / best["before"]["none"],
        "rounds": raw,
    }


def main(argv: list[str] | None = None) -> dict:
    from srgpu.bench.common import JOB_ROWS, TREES, load_average, machine_info, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="source tree before")
    parser.add_argument("--fraction", type=float, default=0.005, help="fraction of 1.9 M rows")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--trees", type=int, default=TREES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--real", type=Path, default=None, help="data folder (real run)")
    args = parser.parse_args(argv)
    import numba

    numba.set_num_threads(1)
    n_rows = max(int(round(args.fraction * JOB_ROWS)), 1)
    kern = {
        f: kernel(flux=f, n_rows=n_rows, trees=args.trees, seed=args.seed, repeats=args.repeats)
        for f in ("SR", "HR")
    }
    demo = run_demo(
        before=args.before.resolve(), rounds=args.rounds, replicates=args.replicates,
        trees=args.trees, data=args.real.resolve() if args.real else None,
    )  # fmt: skip
    result = {
        "benchmark": "fused",
        "machine": machine_info(),
        "load_average_1_5_15min_after": load_average(),
        "timing": "process CPU time, one thread, best of N, interleaved; shared machine",
        "kernel": kern,
        "run": demo,
    }
    path = write_result(result, "fused", args.out)
    for f, k in kern.items():
        print(
            f"{f}: fused / mean-only x{k['fused_over_mean_only']:.2f}, before (two walks) "
            f"x{k['before_two_walks_over_mean_only']:.2f}; mean bit for bit "
            f"{k['fused_mean_equals_engine_bit_for_bit']}, moments max rel diff "
            f"{k['fused_moments_max_relative_difference_vs_predictive_moments']:.1e}"
        )
    print(json.dumps({k: v for k, v in demo.items() if k != "rounds"}, indent=1))
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
