"""Cost of ``predictive = "quantiles"`` in a run, against ``"moments"``.

Two parts::

    python -m benchmarks.bench_predictive_run demo --rounds 3
    python -m benchmarks.bench_predictive_run real

``demo``: whole ``run_ensemble`` calls on the demo world (the default forest, ``--replicates``
replicates in batches of ``--batch-size``), the two settings interleaved round by round (moments,
quantiles, moments, ...), each in a fresh output directory; wall time and process CPU time
(all threads), best of the rounds, and their ratio quantiles / moments.

``real``: the pieces a quantiles run adds, on SRDB v5.0 with the real 0.5 degree climatology
grids (53 806 cells; read from ``../shared/data``): one replicate per flux trained as
``srgpu ensemble`` trains it, then per replicate the moments pass that both settings run
(``predictive_moments`` over the grid) and the weight scatter that only quantiles runs
(``WeightAccumulator.add``, one row per cell); per batch the write of the pooled weights into
the work store (zstd + crc32c, as the run writes them), measured for the one-replicate weights
and for a dense array of the same shape (what many replicates pooled look like: an upper
bound); once per run the order statistics of every cell (``summary_of_weights``). Best of
``--repeats`` for the per-replicate pieces.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_info, warm_numba, write_result


def _timed(fn) -> tuple[float, float, object]:
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def run_demo(*, rounds: int, replicates: int, batch_size: int, real: bool = False) -> dict:
    """Whole runs, moments and quantiles interleaved (``real``: on the real data instead of the
    demo world, ``benchmarks.bench_predictive_real``'s config)."""
    from srgpu.config import EnsembleConfig
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.ensemble import run_ensemble

    warm_numba()
    if real:
        from benchmarks.bench_predictive_real import _config

        base = _config(replicates).replace(batch_size=batch_size)
    else:
        base = EnsembleConfig(replicates=replicates, batch_size=batch_size)
    inputs = prepare_inputs(base)
    modes = ("moments", "quantiles")
    times: dict[str, list] = {m: [] for m in modes}
    predictive_s: dict[str, list] = {m: [] for m in modes}
    summaries: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="bench-qrun-"))
    try:
        # one untimed run of each first: numba kernels compiled or loaded from the cache (on
        # the real data only warm_numba: a run there takes minutes)
        for m in modes if not real else ():
            run_ensemble(
                base.replace(predictive=m, replicates=1), out=tmp / f"warm-{m}", inputs=inputs
            )
        for r in range(rounds):
            for m in modes:
                out = tmp / f"{m}-{r}"
                seen: list[float] = []
                wall, cpu, summary = _timed(
                    lambda m=m, out=out, seen=seen: run_ensemble(
                        base.replace(predictive=m),
                        out=out,
                        inputs=inputs,
                        on_batch=lambda res, *_: seen.append(res.timing["predictive_s"]),
                    )
                )
                times[m].append({"wall_s": wall, "cpu_s": cpu})
                predictive_s[m].append(sum(seen))
                summaries[m] = {f: summary["fluxes"][f]["predictive"] for f in ("SR", "HR")}
                shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {m: {k: min(t[k] for t in times[m]) for k in ("wall_s", "cpu_s")} for m in modes}
    return {
        "benchmark": "predictive-run-real-e2e" if real else "predictive-run-demo",
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "setup": {
            "replicates": replicates,
            "batch_size": batch_size,
            "trees": base.forest.trees,
            "cells": inputs.n_cells,
            "years": inputs.n_years,
            "records": {f: int(inputs.fluxes[f].y.size) for f in ("SR", "HR")},
            "rounds": rounds,
            "order": "interleaved: moments, quantiles per round; best of the rounds",
        },
        "runs": times,
        "predictive_pass_s": predictive_s,
        "best": best,
        "predictive_summary_last_round": summaries,
        "ratio_quantiles_over_moments": {
            k: best["quantiles"][k] / best["moments"][k] for k in ("wall_s", "cpu_s")
        },
    }


def _real_flux(inputs, cfg, flux: str, *, repeats: int, tmp: Path) -> dict:
    """The pieces of one flux (see the module docstring)."""
    import zarr

    from srgpu.forest.predictive import (
        WeightAccumulator,
        leaf_tables,
        predictive_moments,
        summary_of_weights,
    )
    from srgpu.run.replicate import train_replicate
    from srgpu.run.safe_io import checksum_codecs
    from srgpu.run.work_store import weight_chunk_cells
    from srgpu.schema import PREDICTIVE_QUANTILE_LEVELS

    n_cells, n_years = inputs.n_cells, inputs.n_years
    data = inputs.fluxes[flux]
    X = inputs.grid_X[flux]
    t_train = _timed(lambda: train_replicate(inputs, cfg, 0, flux))
    forest, split = t_train[2]
    t_tab = _timed(lambda: leaf_tables([forest], X=data.X, y=data.y, train_index=[split.train]))
    tables = t_tab[2]
    predictive_moments(tables, X[:100])  # compiled before timing
    WeightAccumulator.zeros(n_rows=100, n_records=tables.n_records).add(tables, X[:100])

    def scatter(acc: WeightAccumulator) -> None:
        for year in range(n_years):  # as srgpu.run.predictive.predictive_batch
            rows = X[year * n_cells : (year + 1) * n_cells]
            acc.add(tables, rows, n_forests=1, share=1.0 / n_years)

    mom, acc_t = [], []
    acc = None
    for _ in range(repeats):
        mom.append(_timed(lambda: predictive_moments(tables, X))[:2])
        acc = WeightAccumulator.zeros(n_rows=n_cells, n_records=tables.n_records)
        acc_t.append(_timed(lambda acc=acc: scatter(acc))[:2])
    grp = zarr.open_group(tmp / f"{flux}.zarr", mode="w", zarr_format=3)
    arr = grp.create_array(
        "w",
        shape=acc.weights.shape,
        chunks=(weight_chunk_cells(n_cells, tables.n_records), tables.n_records),
        dtype="float64",
        fill_value=np.nan,
        compressors=checksum_codecs(),
    )
    t_write_one = _timed(lambda: arr.__setitem__(slice(None), acc.weights))
    dense = np.random.default_rng(0).random(acc.weights.shape)
    dense /= dense.sum(axis=1, keepdims=True)
    t_write_dense = _timed(lambda: arr.__setitem__(slice(None), dense))
    t_read = _timed(lambda: arr[:])
    levels = tuple(PREDICTIVE_QUANTILE_LEVELS.values())
    t_sum = _timed(
        lambda: summary_of_weights(
            acc.weights, tables.y_sorted, levels=levels, totals=acc.totals, counts=acc.counts
        )
    )
    best_m = min(mom, key=lambda t: t[1])
    best_a = min(acc_t, key=lambda t: t[1])
    return {
        "records": int(tables.n_records),
        "weights_mb": acc.weights.nbytes / 1e6,
        "train_replicate_s": {"wall": t_train[0], "cpu": t_train[1]},
        "leaf_tables_s": {"wall": t_tab[0], "cpu": t_tab[1]},
        "moments_pass_s": {"wall": best_m[0], "cpu": best_m[1]},
        "weight_scatter_s": {"wall": best_a[0], "cpu": best_a[1]},
        "scatter_over_moments_cpu": best_a[1] / best_m[1],
        "write_weights_one_replicate_s": t_write_one[0],
        "write_weights_dense_s": t_write_dense[0],
        "read_weights_dense_s": t_read[0],
        "order_statistics_all_cells_s": {"wall": t_sum[0], "cpu": t_sum[1]},
    }


def run_real(*, repeats: int) -> dict:
    from benchmarks.bench_predictive_real import _config
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.predictive import quantiles_memory_bytes

    warm_numba()
    cfg = _config(1)
    inputs = prepare_inputs(cfg)
    tmp = Path(tempfile.mkdtemp(prefix="bench-qrun-real-"))
    try:
        out = {f: _real_flux(inputs, cfg, f, repeats=repeats, tmp=tmp) for f in ("SR", "HR")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_rep = {
        k: sum(out[f][k]["cpu"] for f in ("SR", "HR"))
        for k in ("train_replicate_s", "leaf_tables_s", "moments_pass_s", "weight_scatter_s")
    }
    per_batch_write = sum(out[f]["write_weights_dense_s"] for f in ("SR", "HR"))
    return {
        "benchmark": "predictive-run-real",
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "setup": {
            "cells": inputs.n_cells,
            "years": inputs.n_years,
            "trees": cfg.forest.trees,
            "predictors": list(cfg.predictors[0][1]),
            "repeats": repeats,
            "memory_planned_bytes": quantiles_memory_bytes(inputs),
        },
        "fluxes": out,
        "per_replicate_cpu_s_both_fluxes": per_rep,
        "quantiles_extra_per_replicate_cpu_s": per_rep["weight_scatter_s"],
        "quantiles_write_per_batch_wall_s_dense": per_batch_write,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=("demo", "real", "real-run"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--replicates", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.part in ("demo", "real-run"):
        res = run_demo(
            rounds=args.rounds,
            replicates=args.replicates,
            batch_size=args.batch_size,
            real=args.part == "real-run",
        )
    else:
        res = run_real(repeats=args.repeats)
    path = write_result(res, res["benchmark"])
    print(path)
    keys = ("best", "ratio_quantiles_over_moments", "per_replicate_cpu_s_both_fluxes")
    for k in (
        *keys,
        "quantiles_extra_per_replicate_cpu_s",
        "quantiles_write_per_batch_wall_s_dense",
    ):
        if k in res:
            print(k, res[k])


if __name__ == "__main__":
    main()
