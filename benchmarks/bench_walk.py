"""The numba kernel's partition on real and synthetic forests: scalar loop vs AVX-512 steps.

Three forests of 500 trees: SR and HR fitted by scikit-learn on the real draw of replicate 0
(:mod:`benchmarks.real_data`; ``max_features=2``, ``min_samples_split = nodesize + 1``) and
predicted on the real 0.5 deg grid's 53 806 rows, and the synthetic forest of
:mod:`srgpu.bench.inference` on 19 000 rows. On each, in one process pinned to one core with one
numba thread (``NUMBA_NUM_THREADS=1``): scikit-learn's ``predict`` (``n_jobs=1``), the kernel with
the scalar partition (``_predict_kernel``, with
:func:`srgpu.forest.numba_engine.partition_rows`: the kernel before the vector step, code for
code) and with the AVX-512 one (``_predict_kernel_avx512``, with
:func:`srgpu.forest.vector_split.partition_rows16`), on the same distinct rows in the same
Morton order as the engine; alternating, ``--repeats`` rounds, CPU seconds
(``time.process_time``). The figures are the medians of the per-round ratios (a machine shared
with other work moves whole rounds) and every result is checked equal to scikit-learn's::

    NUMBA_NUM_THREADS=1 python -m benchmarks.bench_walk --repeats 9
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import interleaved_cpu_s, load_average, machine_info, write_result


def _forests() -> dict:
    from sklearn.ensemble import RandomForestRegressor

    from benchmarks.real_data import real_forest, real_inputs
    from srgpu.bench.inference import N_PRED, _data

    out = {}
    inputs, config = real_inputs()
    for flux in ("SR", "HR"):
        rf, _, _ = real_forest(inputs, config, flux=flux)
        out[f"real {flux}"] = (rf, np.asarray(inputs.grid_X[flux], dtype=np.float32))
    X, y, Xp = _data(seed=0, n_rows=19_000)
    rf = RandomForestRegressor(
        n_estimators=500, max_features=max(N_PRED // 3, 1), min_samples_split=6,
        bootstrap=True, random_state=0, n_jobs=1,
    ).fit(X, y)  # fmt: skip
    out["synthetic"] = (rf, Xp)
    return out


def run(*, repeats: int, cpu: int | None) -> dict:
    from srgpu.forest import numba_engine as ne
    from srgpu.forest import vector_split
    from srgpu.forest.arrays import forest_arrays
    from srgpu.forest.row_plans import plan_rows

    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    machine = machine_info()
    forests = _forests()
    figures = {}
    for name, (rf, G) in forests.items():
        a = forest_arrays([rf])
        plan = plan_rows(np.ascontiguousarray(G))
        args = (
            plan.rows, plan.order, a.feature.view(np.uint32), a.threshold,
            a.children.view(np.uint32), a.nan_left, a.value, a.tree_offsets, a.forest_offsets,
            int(a.tree_depth.max()), ne.tile_rows(plan.rows.shape[0], 1),
        )  # fmt: skip
        fns = {
            "sklearn_predict": lambda rf=rf, G=G: rf.predict(G),
            "scalar_partition": lambda args=args: ne._predict_kernel(*args),
            "avx512_partition": lambda args=args: ne._predict_kernel_avx512(*args),
        }
        ref = rf.predict(G)
        identical = {}
        for k in ("scalar_partition", "avx512_partition"):
            out = fns[k]()[0]
            out = out if plan.inverse is None else out[plan.inverse]
            identical[k] = bool(np.array_equal(out, ref))
        times = interleaved_cpu_s(fns, repeats=repeats)
        t = {k: np.asarray(v) for k, v in times.items()}
        figures[name] = {
            "grid_rows": int(G.shape[0]),
            "distinct_rows": int(plan.rows.shape[0]),
            "trees": int(a.n_trees),
            "mean_nodes": float(np.mean([e.tree_.node_count for e in rf.estimators_])),
            "mean_max_depth": float(np.mean([e.tree_.max_depth for e in rf.estimators_])),
            "cpu_s": times,
            "median_cpu_s": {k: float(np.median(v)) for k, v in t.items()},
            "ns_per_row_and_tree": {
                k: float(np.median(v)) * 1e9 / (G.shape[0] * a.n_trees) for k, v in t.items()
            },
            "avx512_vs_scalar_median_of_ratios": float(
                np.median(t["scalar_partition"] / t["avx512_partition"])
            ),
            "scalar_vs_sklearn_median_of_ratios": float(
                np.median(t["sklearn_predict"] / t["scalar_partition"])
            ),
            "avx512_vs_sklearn_median_of_ratios": float(
                np.median(t["sklearn_predict"] / t["avx512_partition"])
            ),
            "bit_identical_to_sklearn": identical,
        }
        print(name, {k: round(v, 3) for k, v in figures[name].items() if "ratios" in k})
    load_end = load_average()
    return {
        "benchmark": "walk",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "load_average_1_5_15min_at_end": load_end,
        "setup": {
            "threads": "one process pinned to one CPU, NUMBA_NUM_THREADS=1, sklearn n_jobs=1",
            "timing": f"alternating, {repeats} rounds, CPU seconds (time.process_time); "
            "figures are medians of the per-round ratios",
            "rows": "the engine's plan: distinct rows in Morton order, tile of tile_rows(n, 1)",
            "vector_partition_usable_here": vector_split.usable(),
        },
        "figures": figures,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to (-1: none)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: results/)")
    args = parser.parse_args(argv)
    result = run(repeats=args.repeats, cpu=None if args.cpu < 0 else args.cpu)
    path = write_result(result, "walk", args.out)
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
