"""The fused walk's partition on the real forests: scalar loop vs AVX-512 steps.

The forests of :mod:`benchmarks.bench_walk` (SR and HR, 500 trees fitted by scikit-learn on the
real draw of replicate 0, predicted on the real 0.5 deg grid's 53 806 rows) with their leaf
moments (:func:`srgpu.forest.predictive.leaf_tables`, all-rows membership). In one process
pinned to one core with one numba thread (``NUMBA_NUM_THREADS=1``), alternating, ``--repeats``
rounds, CPU seconds (``time.process_time``): the fused walk of a default run
(:func:`srgpu.forest.predictive_kernels.fused_kernel`: forest mean and both moments) with the
scalar partition and with the AVX-512 one (``fused_kernel_avx512``), and the engine's mean-only
kernel with each for reference; on the engine's rows (distinct rows, Morton order). Figures are
medians of the per-round ratios; the vector results are checked equal to the scalar ones bit
for bit, and the fused mean to scikit-learn's ``predict``::

    NUMBA_NUM_THREADS=1 taskset -c 0 python -m benchmarks.bench_fused_walk --repeats 9
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.common import interleaved_cpu_s, load_average, machine_info, write_result


def _forests() -> dict:
    from benchmarks.real_data import real_forest, real_inputs
    from srgpu.forest.predictive import leaf_tables

    out = {}
    inputs, config = real_inputs()
    for flux in ("SR", "HR"):
        rf, X, y = real_forest(inputs, config, flux=flux)
        tables = leaf_tables([rf], X=X, y=y, train_index=[np.arange(len(y))])
        G = np.asarray(inputs.grid_X[flux], dtype=np.float32)
        out[f"real {flux}"] = (rf, tables.moments, G)
    return out


def run(*, repeats: int, cpu: int | None) -> dict:
    from srgpu.forest import numba_engine as ne
    from srgpu.forest import predictive_kernels as K
    from srgpu.forest import vector_split
    from srgpu.forest.arrays import forest_arrays
    from srgpu.forest.row_plans import plan_rows

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    machine = machine_info()
    load_start = load_average()
    forests = _forests()
    figures = {}
    for name, (rf, moments, G) in forests.items():
        a = forest_arrays([rf])
        plan = plan_rows(np.ascontiguousarray(G))
        head = (
            plan.rows, plan.order, a.feature.view(np.uint32), a.threshold,
            a.children.view(np.uint32), a.nan_left, a.value,
        )  # fmt: skip
        tail = (a.tree_offsets, a.forest_offsets, int(a.tree_depth.max()))
        tile = ne.tile_rows(plan.rows.shape[0], 1)
        fused_args = (*head, moments, *tail, tile)
        mean_args = (*head, *tail, tile)
        fns = {
            "fused_scalar": partial(K.fused_kernel, *fused_args),
            "fused_avx512": partial(K.fused_kernel_avx512, *fused_args),
            "mean_scalar": partial(ne._predict_kernel, *mean_args),
            "mean_avx512": partial(ne._predict_kernel_avx512, *mean_args),
        }
        scalar, vector = fns["fused_scalar"](), fns["fused_avx512"]()
        mean = vector[0][0] if plan.inverse is None else vector[0][0][plan.inverse]
        checks = {
            "fused_avx512_equals_scalar": all(
                np.array_equal(u, v) for u, v in zip(scalar, vector, strict=True)
            ),
            "fused_mean_equals_sklearn": bool(np.array_equal(mean, rf.predict(G))),
        }
        times = interleaved_cpu_s(fns, repeats=repeats)
        t = {k: np.asarray(v) for k, v in times.items()}
        figures[name] = {
            "grid_rows": int(G.shape[0]),
            "distinct_rows": int(plan.rows.shape[0]),
            "trees": int(a.n_trees),
            "cpu_s": times,
            "median_cpu_s": {k: float(np.median(v)) for k, v in t.items()},
            "fused_avx512_vs_scalar_median_of_ratios": float(
                np.median(t["fused_scalar"] / t["fused_avx512"])
            ),
            "mean_avx512_vs_scalar_median_of_ratios": float(
                np.median(t["mean_scalar"] / t["mean_avx512"])
            ),
            "fused_vs_mean_only_avx512_median_of_ratios": float(
                np.median(t["fused_avx512"] / t["mean_avx512"])
            ),
            "checks": checks,
        }
        print(name, {k: v for k, v in figures[name].items() if "ratios" in k or k == "checks"})
    load_end = load_average()
    return {
        "benchmark": "fused-walk",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "load_average_1_5_15min_at_start": load_start,
        "load_average_1_5_15min_at_end": load_end,
        "setup": {
            "threads": "one process pinned to one CPU, NUMBA_NUM_THREADS=1",
            "timing": f"alternating, {repeats} rounds, CPU seconds (time.process_time); "
            "figures are medians of the per-round ratios",
            "rows": "the engine's plan: distinct rows in Morton order, tile of tile_rows(n, 1)",
            "moments": "leaf_tables of the one forest, all-rows membership",
            "vector_partition_usable_here": vector_split.usable(),
        },
        "figures": figures,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: none)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: results/)")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, cpu=None if args.cpu < 0 else args.cpu)
    path = write_result(result, "partition-fused", args.out)
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
