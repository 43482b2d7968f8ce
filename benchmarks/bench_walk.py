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

import numpy as np

from benchmarks.common import interleaved_cpu_s, machine_info
from benchmarks.pinned_walk import main as pinned_main
from benchmarks.pinned_walk import median_ratio, pin, result, timing_figures, walk_inputs


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

    pin(cpu)
    machine = machine_info()
    figures = {}
    for name, (rf, G) in _forests().items():
        w = walk_inputs(rf, G)
        args = (*w.head, *w.tail)
        fns = {
            "sklearn_predict": lambda rf=rf, G=G: rf.predict(G),
            "scalar_partition": lambda args=args: ne._predict_kernel(*args),
            "avx512_partition": lambda args=args: ne._predict_kernel_avx512(*args),
        }
        ref = rf.predict(G)
        identical = {}
        for k in ("scalar_partition", "avx512_partition"):
            out = fns[k]()[0]
            out = out if w.plan.inverse is None else out[w.plan.inverse]
            identical[k] = bool(np.array_equal(out, ref))
        times = interleaved_cpu_s(fns, repeats=repeats)
        figures[name] = {
            **timing_figures(w, times),
            "mean_nodes": float(np.mean([e.tree_.node_count for e in rf.estimators_])),
            "mean_max_depth": float(np.mean([e.tree_.max_depth for e in rf.estimators_])),
            "ns_per_row_and_tree": {
                k: float(np.median(v)) * 1e9 / (G.shape[0] * w.a.n_trees) for k, v in times.items()
            },
            "avx512_vs_scalar_median_of_ratios": median_ratio(
                times, "scalar_partition", "avx512_partition"
            ),
            "scalar_vs_sklearn_median_of_ratios": median_ratio(
                times, "sklearn_predict", "scalar_partition"
            ),
            "avx512_vs_sklearn_median_of_ratios": median_ratio(
                times, "sklearn_predict", "avx512_partition"
            ),
            "bit_identical_to_sklearn": identical,
        }
        print(name, {k: round(v, 3) for k, v in figures[name].items() if "ratios" in k})
    return result(
        "walk", machine=machine, repeats=repeats, figures=figures,
        threads="one process pinned to one CPU, NUMBA_NUM_THREADS=1, sklearn n_jobs=1",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    return pinned_main(__doc__, run, "walk", cpu=1, argv=argv)


if __name__ == "__main__":
    main()
