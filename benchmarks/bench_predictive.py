"""Predictive distributions (quantile regression forests): what they cost and how they compare.

Five measurements, written as one JSON with machine info::

    python -m benchmarks.bench_predictive --quick [--real ../shared/data]

1. **Moments path vs mean only**, one thread, per replicate: the numba engine's forest mean
   against :func:`srgpu.forest.predictive.predictive_moments` (conditional mean and second
   moment in one traversal per tree) on the same 500-tree forest (numba grower, randomForest's
   rules) and rows. Target: at most 1.3x.
2. **Exact quantiles vs quantile-forest**, one thread: ``RandomForestQuantileRegressor.predict(
   quantiles=..., weighted_quantile=True, weighted_leaves=True)`` against
   :func:`~srgpu.forest.predictive.predictive_summary` on quantile-forest's own trees and rows
   (in-bag membership: the same numbers, checked), plus the all-rows membership, and the
   in-bag path once more with the scalar row partition and compaction (what a CPU without
   AVX-512 runs; :func:`srgpu.forest.vector_split.usable`). Target: 20x.
   Twice: on random rows of paper-shaped synthetic records, and (with ``--real``, the default
   when the data are there) on the real 0.5 deg grid's SR rows with quantile-forest fitted on
   the real SRDB SR training draw of replicate 0 (:mod:`benchmarks.real_data`).
3. **Full-scale extrapolation** (1.9 M rows x 2000 replicates per flux) from the measured cost
   per row and forest: moments, and exact quantiles pooled over a batch of forests.
4. **Leaf membership**: the integrated predictive SD and MAD (Pg C/yr) of the demo world with
   all-rows against in-bag membership, pooled over replicates.

Timing: CPU time of this process (``time.process_time``; numba limited to one thread,
quantile-forest with ``n_jobs=1``), best of N, the contenders interleaved. The machine is shared
(see ``load_average``): ratios from interleaved runs are the figures to quote.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    HR_RECORDS,
    JOB_REPLICATES,
    JOB_ROWS,
    SR_RECORDS,
    TREES,
    _response,
    interleaved_cpu_s,
    load_average,
    machine_info,
)
from srgpu.config import ForestConfig
from srgpu.forest import predictive as P
from srgpu.forest import vector_split
from srgpu.forest.numba_engine import NumbaEngine
from srgpu.forest.train import fit_forest

SHAPES = {"SR": (SR_RECORDS, 5), "HR": (HR_RECORDS, 7)}


def _best_of(fns: dict, *, repeats: int) -> dict[str, float]:
    """Interleaved best-of-``repeats`` CPU time of each callable."""
    return {k: min(v) for k, v in interleaved_cpu_s(fns, repeats=repeats).items()}


def _records(flux: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    n, p = SHAPES[flux]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    y = _response(X, rng) * (1.0 if flux == "SR" else 0.55)
    return X, y


def _replicate(flux: str, *, seed: int, replicate: int, trees: int):
    """One replicate's forest on an 80 % draw, with its all-rows and in-bag tables."""
    X, y = _records(flux, seed)
    fc = ForestConfig(trees=trees)
    rng = np.random.default_rng([seed, replicate])
    train = np.sort(rng.choice(y.size, int(round(0.8 * y.size)), replace=False))
    ss = np.random.SeedSequence(seed, spawn_key=(replicate,))
    forest = fit_forest(X[train], y[train], forest=fc, seed=ss)
    inbag = P.inbag_counts(n_train=train.size, forest=fc, seed=ss)
    return X, y, forest, train, inbag


def moments_vs_mean(*, flux: str, n_rows: int, trees: int, seed: int, repeats: int) -> dict:
    X, y, forest, train, inbag = _replicate(flux, seed=seed, replicate=0, trees=trees)
    t = time.process_time()
    tables = P.leaf_tables([forest], X=X, y=y, train_index=[train])
    tables_s = time.process_time() - t
    rows = np.random.default_rng(seed + 1).normal(size=(n_rows, X.shape[1])).astype(np.float32)
    compiled = NumbaEngine().compile([forest])
    compiled.predict(rows[:100], threads=1)
    P.predictive_moments(tables, rows[:100], threads=1)
    times = _best_of(
        {
            "mean_only": lambda: compiled.predict(rows, threads=1),
            "moments": lambda: P.predictive_moments(tables, rows, threads=1),
        },
        repeats=repeats,
    )
    return {
        "flux": flux,
        "records": int(y.size),
        "train_records": int(train.size),
        "trees": trees,
        "rows": n_rows,
        "best_cpu_seconds": times,
        "us_per_row": {k: v / n_rows * 1e6 for k, v in times.items()},
        "moments_over_mean_only": times["moments"] / times["mean_only"],
        "leaf_tables_cpu_seconds": tables_s,
        "leaf_tables_mb": tables.nbytes / 1e6,
    }


def _quantile_forest(X: np.ndarray, y: np.ndarray, *, trees: int, seed: int):
    """quantile-forest's forest on ``(X, y)`` (randomForest-like settings, all records, its
    bootstrap) and its in-bag counts ``(trees, n)``, replayed from its estimators' seeds."""
    from quantile_forest import RandomForestQuantileRegressor
    from sklearn.ensemble._forest import _generate_sample_indices

    n = y.size
    qf = RandomForestQuantileRegressor(
        n_estimators=trees, max_features=max(X.shape[1] // 3, 1), min_samples_split=6,
        max_samples_leaf=None, bootstrap=True, random_state=seed, n_jobs=1,
    ).fit(X, y)  # fmt: skip
    inbag = np.stack(
        [
            np.bincount(_generate_sample_indices(e.random_state, n, n, None), minlength=n)
            for e in qf.estimators_
        ]
    )
    return qf, inbag


@contextlib.contextmanager
def _scalar_kernels():
    """The kernels a CPU without AVX-512 runs (scalar row partition and compaction), here."""
    usable = vector_split.usable
    vector_split.usable = lambda: False
    try:
        yield
    finally:
        vector_split.usable = usable


def _against_quantile_forest(qf, inbag, X, y, rows, *, repeats: int) -> dict:
    """srgpu's exact quantiles (in-bag and all-rows membership) against quantile-forest's
    ``predict`` on the same trees and rows: CPU times, agreement."""
    import quantile_forest

    idx = [np.arange(y.size)]
    tables_in = P.leaf_tables([qf], X=X, y=y, train_index=idx, membership="inbag", inbag=[inbag])
    tables_all = P.leaf_tables([qf], X=X, y=y, train_index=idx, membership="all")
    levels = list(P.DEFAULT_LEVELS)
    P.predictive_summary(tables_in, rows[:100], threads=1)
    want = qf.predict(rows, quantiles=levels, weighted_quantile=True, weighted_leaves=True)
    got = P.predictive_summary(tables_in, rows, threads=1).quantiles
    rel = np.abs(got - want) / np.abs(want)
    # the same records passed in quantile-forest's own order by y (its `sorter_`, an unstable
    # argsort): srgpu's stable order is then quantile-forest's among tied y as well, which the
    # linear rule depends on when frequencies are below 1 (docs/predictive.md, Cost)
    s = qf.sorter_[:, 0]
    position = np.empty_like(s)
    position[s] = np.arange(s.size)
    tables_qf_order = P.leaf_tables(
        [qf], X=X[s], y=y[s], train_index=[position], membership="inbag", inbag=[inbag]
    )
    got_qf_order = P.predictive_summary(tables_qf_order, rows, threads=1).quantiles
    rel_qf_order = np.abs(got_qf_order - want) / np.abs(want)
    P.predictive_summary(tables_in, rows[:100], threads=1)  # compiled before the timing
    with _scalar_kernels():
        P.predictive_summary(tables_in, rows[:100], threads=1)
    times = _best_of(
        {
            "quantile_forest": lambda: qf.predict(
                rows, quantiles=levels, weighted_quantile=True, weighted_leaves=True
            ),
            "srgpu_inbag": lambda: P.predictive_summary(tables_in, rows, threads=1),
            "srgpu_all_rows": lambda: P.predictive_summary(tables_all, rows, threads=1),
            "srgpu_inbag_scalar": _scalar_kernels()(
                lambda: P.predictive_summary(tables_in, rows, threads=1)
            ),
        },
        repeats=repeats,
    )
    n_rows = rows.shape[0]
    return {
        "quantile_forest_version": quantile_forest.__version__,
        "records": int(y.size),
        "trees": len(qf.estimators_),
        "rows": n_rows,
        "levels": levels,
        "outputs": "srgpu: the levels, median and MAD; quantile-forest: the levels",
        "avx512": vector_split.usable(),
        "srgpu_inbag_scalar": "the in-bag path with the scalar row partition and compaction "
        "(what a CPU without AVX-512 runs), the same numbers",
        "max_relative_difference_inbag": float(np.max(rel)),
        "values_beyond_1e-12_relative_inbag": int(np.sum(rel > 1e-12)),
        "values_compared": int(rel.size),
        "in_quantile_forest_order_of_tied_y": {
            "max_relative_difference_inbag": float(np.max(rel_qf_order)),
            "values_beyond_1e-12_relative_inbag": int(np.sum(rel_qf_order > 1e-12)),
            "values_changed_by_the_order_beyond_1e-12_relative": int(
                np.sum(np.abs(got - got_qf_order) > 1e-12 * np.abs(got_qf_order))
            ),
        },
        "packed_table_mb": {
            "inbag": tables_in.packed.nbytes / 1e6,
            "all_rows": tables_all.packed.nbytes / 1e6,
        },  # fmt: skip
        "best_cpu_seconds": times,
        "us_per_row": {k: v / n_rows * 1e6 for k, v in times.items()},
        "speedup_vs_quantile_forest": {
            k: times["quantile_forest"] / v for k, v in times.items() if k != "quantile_forest"
        },
    }


def quantiles_vs_quantile_forest(*, n_rows: int, trees: int, seed: int, repeats: int) -> dict:
    """On random rows of the paper-shaped synthetic SR records."""
    X, y = _records("SR", seed)
    qf, inbag = _quantile_forest(X, y, trees=trees, seed=seed)
    rows = np.random.default_rng(seed + 2).normal(size=(n_rows, X.shape[1])).astype(np.float32)
    return {"rows_kind": "random normal rows (synthetic)",
            **_against_quantile_forest(qf, inbag, X, y, rows, repeats=repeats)}  # fmt: skip


def quantiles_vs_quantile_forest_real(*, data: Path, trees: int, seed: int, repeats: int) -> dict:
    """On the real 0.5 deg grid's SR rows (all cells), quantile-forest fitted on replicate 0's
    SR training draw of SRDB v5.0 (the README's six predictors)."""
    from benchmarks.real_data import real_inputs, training_table

    inputs, config = real_inputs(data)
    X, y = training_table(inputs, config, replicate=0, flux="SR")
    qf, inbag = _quantile_forest(X, y, trees=trees, seed=seed)
    rows = np.ascontiguousarray(inputs.grid_X["SR"])
    out = {
        "rows_kind": "the real 0.5 deg climatology grid's SR rows (every cell, in cell order; "
        "srgpu orders them along a Morton curve itself)",
        "training": "SRDB v5.0 SR, replicate 0's area-weighted 80 % draw",
        **_against_quantile_forest(qf, inbag, X, y, rows, repeats=repeats),
    }
    # the run's path (predictive = "quantiles"): one forest's all-rows weights added at every
    # cell of a (cells, records) accumulator, no order statistics
    tables = P.leaf_tables([qf], X=X, y=y, train_index=[np.arange(y.size)])
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows[:100], dest=np.arange(100), threads=1)
    t = _best_of({"add": lambda: acc.add(tables, rows, threads=1)}, repeats=repeats)["add"]
    out["run_path_weight_accumulation"] = {
        "what": "WeightAccumulator.add of one forest (all-rows membership) at every grid row",
        "best_cpu_seconds": t,
        "us_per_row": t / rows.shape[0] * 1e6,
    }
    return out


def pooled_quantiles(*, flux: str, n_rows: int, forests: int, trees: int, seed: int,
                     repeats: int) -> dict:  # fmt: skip
    reps = [_replicate(flux, seed=seed, replicate=r, trees=trees) for r in range(forests)]
    X, y = reps[0][0], reps[0][1]
    tables = P.leaf_tables([r[2] for r in reps], X=X, y=y, train_index=[r[3] for r in reps])
    rows = np.random.default_rng(seed + 3).normal(size=(n_rows, X.shape[1])).astype(np.float32)
    P.predictive_summary(tables, rows[:100], threads=1)
    times = _best_of({"pooled": lambda: P.predictive_summary(tables, rows, threads=1)},
                     repeats=repeats)  # fmt: skip
    per = times["pooled"] / n_rows / forests
    return {
        "flux": flux,
        "forests_pooled": forests,
        "trees": trees,
        "rows": n_rows,
        "best_cpu_seconds": times["pooled"],
        "us_per_row_and_forest": per * 1e6,
    }


def _integrated(values: np.ndarray, inputs) -> float:
    """Pg C/yr: per cell-year values (g C m-2 yr-1) times the cells' land area, summed over the
    cells, averaged over the years."""
    per_year = values.reshape(inputs.n_years, inputs.n_cells) @ inputs.weight_m2
    return float(per_year.mean() / 1e15)


def membership_on_demo(*, replicates: int) -> dict:
    """Integrated predictive SD and MAD of the demo world, all rows vs in-bag, pooled over
    ``replicates`` (per cell-year, averaged over the years, times the cells' land area)."""
    from srgpu.config import EnsembleConfig
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.replicate import train_replicate
    from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

    cfg = EnsembleConfig(replicates=replicates)
    inputs = prepare_inputs(cfg)
    out = {}
    for flux in ("SR", "HR"):
        data = inputs.fluxes[flux]
        forests, train, inbag = [], [], []
        for r in range(replicates):
            forest, split = train_replicate(inputs, cfg, r, flux)
            forests.append(forest)
            train.append(split.train)
            seed = replicate_seed(cfg.seed, r, flux, PURPOSE_FOREST)
            inbag.append(P.inbag_counts(n_train=split.train.size, forest=cfg.forest, seed=seed))
        res = {}
        for membership in ("all", "inbag"):
            tables = P.leaf_tables(
                forests, X=data.X, y=data.y, train_index=train, membership=membership,
                inbag=inbag,
            )  # fmt: skip
            rows = inputs.grid_X[flux]
            _, sd = P.predictive_moments(tables, rows).pooled()
            summ = P.predictive_summary(tables, rows)
            res[membership] = {
                "integrated_sd_pg_per_yr": _integrated(sd, inputs),
                "integrated_mad_pg_per_yr": _integrated(summ.mad, inputs),
                "integrated_mad_scaled_pg_per_yr": _integrated(summ.mad_scaled, inputs),
            }
        res["relative_difference_inbag_vs_all"] = {
            k: res["inbag"][k] / res["all"][k] - 1.0 for k in res["all"]
        }
        out[flux] = res
    return {"world": "demo (seed 0)", "replicates": replicates, "fluxes": out}


def run(*, fraction: float, qf_rows: int, pooled: int, repeats: int, trees: int,
        seed: int, data: Path | None = None) -> dict:  # fmt: skip
    n_rows = max(int(round(fraction * JOB_ROWS)), 1)
    info = machine_info()
    moments = {
        f: moments_vs_mean(flux=f, n_rows=n_rows, trees=trees, seed=seed, repeats=repeats)
        for f in ("SR", "HR")
    }
    quant = quantiles_vs_quantile_forest(n_rows=qf_rows, trees=trees, seed=seed, repeats=repeats)
    quant_real = (
        None
        if data is None
        else quantiles_vs_quantile_forest_real(data=data, trees=trees, seed=seed, repeats=repeats)
    )
    pool = {
        f: pooled_quantiles(flux=f, n_rows=min(n_rows, 4 * qf_rows), forests=pooled,
                            trees=trees, seed=seed, repeats=max(repeats - 1, 1))
        for f in ("SR", "HR")
    }  # fmt: skip
    membership = membership_on_demo(replicates=8)
    work = JOB_ROWS * JOB_REPLICATES
    extrapolated = {}
    for f in ("SR", "HR"):
        m = moments[f]["us_per_row"]
        extrapolated[f] = {
            "mean_only_core_hours": m["mean_only"] * 1e-6 * work / 3600,
            "moments_core_hours": m["moments"] * 1e-6 * work / 3600,
            "exact_quantiles_core_hours": pool[f]["us_per_row_and_forest"] * 1e-6 * work / 3600,
            "leaf_tables_core_hours": moments[f]["leaf_tables_cpu_seconds"] * JOB_REPLICATES / 3600,
            "exact_pooling_memory_gb_all_rows": JOB_ROWS * SHAPES[f][0] * 8 / 1e9,
        }
    return {
        "benchmark": "predictive",
        "date": dt.date.today().isoformat(),
        "machine": info,
        "load_average_1_5_15min_after": load_average(),
        "timing": "process CPU time, one thread, best of N, interleaved; shared machine",
        "setup": {
            "trees": trees,
            "forest": "numba grower, randomForest rules (nodesize 5, mtry max(p//3,1), "
            "bootstrap); 80 % draw of the paper-shaped synthetic records",
            "membership_for_moments_and_pooled": "all",
            "prediction_rows": n_rows,
            "fraction_of_job_rows": fraction,
            "seed": seed,
        },
        "moments_vs_mean_only": moments,
        "quantiles_vs_quantile_forest": quant,
        "quantiles_vs_quantile_forest_real_grid": quant_real,
        "pooled_exact_quantiles": pool,
        "membership_demo_world": membership,
        "extrapolated_full_job_per_flux": {
            "rows": JOB_ROWS,
            "replicates": JOB_REPLICATES,
            "note": "measured cost per row and forest times 1.9 M rows x 2000 replicates, one "
            "core; exact quantiles pooled over batches of forests_pooled forests (pooling all "
            "2000 forests exactly holds rows x records float64 weights: memory below)",
            **extrapolated,
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 %% of the job's rows")
    parser.add_argument("--fraction", type=float, default=None, help="fraction of 1.9 M rows")
    parser.add_argument("--qf-rows", type=int, default=None)
    parser.add_argument("--pooled", type=int, default=4, help="forests pooled per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trees", type=int, default=TREES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: results/)")
    parser.add_argument("--real", type=Path, default=None,
                        help="data folder of the real-grid comparison (default: ../shared/data "
                        "when there)")  # fmt: skip
    parser.add_argument("--no-real", action="store_true", help="skip the real-grid comparison")
    args = parser.parse_args(argv)
    from benchmarks import real_data

    data = args.real if args.real is not None else real_data.DATA
    data = None if args.no_real or not real_data.available(data) else data.resolve()
    fraction = args.fraction if args.fraction is not None else (0.005 if args.quick else 0.02)
    qf_rows = args.qf_rows if args.qf_rows is not None else (2000 if args.quick else 5000)
    result = run(fraction=fraction, qf_rows=qf_rows, pooled=args.pooled, repeats=args.repeats,
                 trees=args.trees, seed=args.seed, data=data)  # fmt: skip
    out = args.out or Path(__file__).parent / "results" / f"predictive-{result['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for f, m in result["moments_vs_mean_only"].items():
        print(f"{f} moments / mean-only: x{m['moments_over_mean_only']:.2f}")
    q = result["quantiles_vs_quantile_forest"]
    for k, v in q["speedup_vs_quantile_forest"].items():
        print(f"{k} vs quantile-forest: x{v:.2f}")
    print(f"max relative difference (in-bag) {q['max_relative_difference_inbag']:.1e}")
    qr = result["quantiles_vs_quantile_forest_real_grid"]
    if qr is not None:
        for k, v in qr["speedup_vs_quantile_forest"].items():
            print(f"real grid: {k} vs quantile-forest: x{v:.2f}")
        print(
            f"real grid: {qr['values_beyond_1e-12_relative_inbag']} of {qr['values_compared']} "
            f"values beyond 1e-12 (max {qr['max_relative_difference_inbag']:.1e})"
        )
        o = qr["in_quantile_forest_order_of_tied_y"]
        print(
            "real grid, quantile-forest's order of tied y: "
            f"{o['values_beyond_1e-12_relative_inbag']} beyond 1e-12 "
            f"(max {o['max_relative_difference_inbag']:.1e})"
        )
    print(json.dumps(result["extrapolated_full_job_per_flux"], indent=1))
    print(json.dumps(result["membership_demo_world"]["fluxes"], indent=1))
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
