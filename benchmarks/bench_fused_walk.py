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

from functools import partial

import numpy as np

from benchmarks.common import interleaved_cpu_s, load_average, machine_info
from benchmarks.pinned_walk import main as pinned_main
from benchmarks.pinned_walk import median_ratio, pin, result, timing_figures, walk_inputs


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

    pin(cpu)
    machine = machine_info()
    load_start = load_average()
    figures = {}
    for name, (rf, moments, G) in _forests().items():
        w = walk_inputs(rf, G)
        fused_args = (*w.head, moments, *w.tail)
        mean_args = (*w.head, *w.tail)
        fns = {
            "fused_scalar": partial(K.fused_kernel, *fused_args),
            "fused_avx512": partial(K.fused_kernel_avx512, *fused_args),
            "mean_scalar": partial(ne._predict_kernel, *mean_args),
            "mean_avx512": partial(ne._predict_kernel_avx512, *mean_args),
        }
        scalar, vector = fns["fused_scalar"](), fns["fused_avx512"]()
        mean = vector[0][0] if w.plan.inverse is None else vector[0][0][w.plan.inverse]
        checks = {
            "fused_avx512_equals_scalar": all(
                np.array_equal(u, v) for u, v in zip(scalar, vector, strict=True)
            ),
            "fused_mean_equals_sklearn": bool(np.array_equal(mean, rf.predict(G))),
        }
        times = interleaved_cpu_s(fns, repeats=repeats)
        figures[name] = {
            **timing_figures(w, times),
            "fused_avx512_vs_scalar_median_of_ratios": median_ratio(
                times, "fused_scalar", "fused_avx512"
            ),
            "mean_avx512_vs_scalar_median_of_ratios": median_ratio(
                times, "mean_scalar", "mean_avx512"
            ),
            "fused_vs_mean_only_avx512_median_of_ratios": median_ratio(
                times, "fused_avx512", "mean_avx512"
            ),
            "checks": checks,
        }
        print(name, {k: v for k, v in figures[name].items() if "ratios" in k or k == "checks"})
    return result(
        "fused-walk", machine=machine, repeats=repeats, figures=figures, load_start=load_start,
        threads="one process pinned to one CPU, NUMBA_NUM_THREADS=1",
        moments="leaf_tables of the one forest, all-rows membership",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    return pinned_main(__doc__, run, "partition-fused", cpu=0, argv=argv)


if __name__ == "__main__":
    main()
