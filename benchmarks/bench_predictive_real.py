"""The predictive distribution on the real data: SRDB v5.0 on the real 0.5 degree grids.

Trains ``--replicates`` replicates per flux exactly as ``srgpu ensemble`` does
(:func:`srgpu.run.batch.train_replicate`: the paper's area-weighted 80 % draws, 500 trees,
randomForest's rules; six predictors as ``tests/test_real_pipeline.py``), pools their
quantile-regression-forest distributions (equal mixture) on the 53 806 climatology cells and
integrates per-cell SD, MAD and scaled MAD over the land area (Pg C/yr), for all-rows and in-bag
leaf membership and for quantregForest 1.3-7's one-value-per-leaf scheme; beside them the
replicate spread (SD of the replicates' forest means) and the held-out calibration of each
replicate's distribution. Reads ``../shared/data`` relative to the repository::

    python -m benchmarks.bench_predictive_real --replicates 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, machine_info

REAL_SET = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI_GS")
DATA = REPO.parent / "shared" / "data"


def _config(replicates: int):
    from srgpu.config import EnsembleConfig

    grids = DATA / "grids"
    return EnsembleConfig(
        srdb=str(DATA / "srdb" / "srdb-data_v5.0_20200511.csv.gz"),
        drivers=(
            str(grids / "era5_monthly_climatology_0p5.nc"),
            str(grids / "merra2_rsds_monthly_climatology_0p5.nc"),
            str(grids / "lai_proxy_fapar_0p5.nc"),
        ),
        vegetation=str(grids / "modis_igbp_2019_0p5.nc"),
        predictors=(("SR", REAL_SET), ("HR", REAL_SET)),
        replicates=replicates,
    )


def run(*, replicates: int) -> dict:
    from srgpu import calibration as C
    from srgpu.data.inputs import prepare_inputs
    from srgpu.forest import predictive as P
    from srgpu.forest.numba_engine import NumbaEngine
    from srgpu.run.batch import train_replicate
    from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

    cfg = _config(replicates)
    t0 = time.perf_counter()
    inputs = prepare_inputs(cfg)
    w = np.asarray(inputs.weight_m2, dtype=np.float64)

    def integrated(values: np.ndarray) -> float:
        per_year = values.reshape(inputs.n_years, inputs.n_cells) @ w
        return float(per_year.mean() / 1e15)

    out = {}
    for flux in ("SR", "HR"):
        data = inputs.fluxes[flux]
        rows = inputs.grid_X[flux]
        forests, train, inbag, heldout = [], [], [], []
        for r in range(replicates):
            forest, split = train_replicate(inputs, cfg, r, flux)
            forests.append(forest)
            train.append(split.train)
            seed = replicate_seed(cfg.seed, r, flux, PURPOSE_FOREST)
            inbag.append(P.inbag_counts(n_train=split.train.size, forest=cfg.forest, seed=seed))
            heldout.append(split.test)
        means = NumbaEngine().compile(forests).predict(rows)
        res: dict = {
            "records": int(data.y.size),
            "train_records": int(train[0].size),
            "replicate_spread": {
                "integrated_sd_pg_per_yr": integrated(means.std(axis=0, ddof=1)),
                "total_mean_pg_per_yr": integrated(means.mean(axis=0)),
            },
        }
        for membership in ("all", "inbag"):
            tables = P.leaf_tables(
                forests, X=data.X, y=data.y, train_index=train, membership=membership,
                inbag=inbag,
            )  # fmt: skip
            mean, sd = P.predictive_moments(tables, rows).pooled()
            summ = P.predictive_summary(tables, rows)
            cal = [
                P.heldout_calibration(
                    tables.subset(r), data.X[heldout[r]], data.y[heldout[r]],
                    rng=np.random.default_rng(r),
                )
                for r in range(replicates)
            ]  # fmt: skip
            res[membership] = {
                "total_mean_pg_per_yr": integrated(mean),
                "integrated_sd_pg_per_yr": integrated(sd),
                "integrated_mad_pg_per_yr": integrated(summ.mad),
                "integrated_mad_scaled_pg_per_yr": integrated(summ.mad_scaled),
                "total_median_pg_per_yr": integrated(summ.median),
                "total_q025_q975_pg_per_yr": [
                    integrated(summ.quantile(0.025)),
                    integrated(summ.quantile(0.975)),
                ],
                "calibration_heldout": C.summarise_replicates(cal),
            }
            if membership == "all":
                seeds = [P.qrf_sample_seed(cfg.seed, r, flux) for r in range(replicates)]
                values = P.qrf_sample_leaf_values(tables, seeds=seeds)
                _, qsd, qs = P.qrf_sample_summary(tables, rows, leaf_values=values)
                res["qrf_sample"] = {
                    "integrated_sd_pg_per_yr": integrated(qsd),
                    "integrated_mad_pg_per_yr": integrated(qs.mad),
                    "integrated_mad_scaled_pg_per_yr": integrated(qs.mad_scaled),
                }
        out[flux] = res
    return {
        "benchmark": "predictive-real",
        "date": dt.date.today().isoformat(),
        "machine": machine_info(),
        "data": "SRDB v5.0 (2020-05-11) on the shared 0.5 degree climatology grids",
        "predictors": list(REAL_SET),
        "replicates_pooled": replicates,
        "trees": cfg.forest.trees,
        "cells": int(inputs.n_cells),
        "integration": "per-cell value x cell land area, summed (Pg C/yr); as srgpu integrates "
        "its SD maps: an upper bound for the SD of the global total (cell errors assumed "
        "perfectly correlated), not an interval",
        "paper": {"SR": {"sd": 40.4, "mad": 27.3}, "HR": {"sd": 25.0, "mad": 16.9}},
        "fluxes": out,
        "wall_seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result = run(replicates=args.replicates)
    out = args.out or Path(__file__).parent / "results" / f"predictive-real-{result['date']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["fluxes"], indent=1))
    print(f"written {out}")
    return result


if __name__ == "__main__":
    main()
