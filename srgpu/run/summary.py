"""The run's headline numbers (``summary.json``) from the finished store.

Two kinds of "global uncertainty" are reported and must not be confused:

* ``total_pg_per_yr.sd`` (and mad, q025, q975): the spread across replicates of the global total
  (each replicate's time-mean map integrated over area). Errors of neighbouring cells partly
  cancel in a sum, so this is small.
* ``integrated_sd_pg_per_yr`` / ``integrated_mad_pg_per_yr``: the per-cell SD (MAD) map across
  replicates of the time-mean, integrated over area as if every cell erred in the same
  direction. The paper's "global uncertainty" (SR: 40.4 SD, 27.3 MAD Pg C/yr) is of this kind.
  ``integrated_sd_cell_year_pg_per_yr`` integrates the per-cell-year SD instead, averaged over
  years.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu import __version__
from srgpu.config import FLUXES, EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.run.batch import METRICS, OUTPUT_FLUXES
from srgpu.run.stats import replicate_summary

TOTAL_KEYS = ("mean", "sd", "median", "mad", "q025", "q975")


def _stats_1d(values: np.ndarray) -> dict[str, float]:
    s = replicate_summary(np.asarray(values, dtype=np.float64)[:, None], axis=0)
    out = {k: float(np.asarray(s[k])[0]) for k in TOTAL_KEYS}
    if values.size < 2:
        out["sd"] = float("nan")
    return out


def build_summary(
    *,
    config: EnsembleConfig,
    inputs: Inputs,
    store: xr.Dataset,
    cell_stats: dict[str, dict[str, np.ndarray]],
) -> dict:
    """Assemble the summary dictionary written to ``summary.json``."""
    w = inputs.weight_m2
    fluxes: dict[str, dict] = {}
    mean_totals: dict[str, float] = {}
    for f in OUTPUT_FLUXES:
        totals = np.asarray(store[f"{f}_replicate_total"].values)  # (R, n_years)
        per_rep = totals.mean(axis=1)
        annual = totals.mean(axis=0)
        sd_cy = np.asarray(store[f"{f}_sd"].values)[:, inputs.cell_ilat, inputs.cell_ilon]
        fluxes[f] = {
            "total_pg_per_yr": _stats_1d(per_rep),
            "annual_pg_per_yr": [float(v) for v in annual],
            "interannual_range": [float(annual.min()), float(annual.max())],
            "integrated_sd_pg_per_yr": float(np.nansum(cell_stats[f]["sd"] * w) / 1e15),
            "integrated_mad_pg_per_yr": float(np.nansum(cell_stats[f]["mad"] * w) / 1e15),
            "integrated_sd_cell_year_pg_per_yr": float(
                np.nanmean(np.nansum(sd_cy * w, axis=1)) / 1e15
            ),
        }
        mean_totals[f] = float(per_rep.mean())
    validation = {}
    val = np.asarray(store["validation"].values)  # (R, flux, metric)
    for j, f in enumerate(FLUXES):
        validation[f] = {
            m: {
                "mean": float(np.mean(val[:, j, k])),
                "sd": float(np.std(val[:, j, k], ddof=1)) if val.shape[0] > 1 else float("nan"),
            }
            for k, m in enumerate(METRICS)
        }
    summary = {
        "srgpu_version": __version__,
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "demo": config.is_demo,
        "n_replicates": int(store.sizes["replicate"]),
        "years": [int(y) for y in inputs.years],
        "climatology": bool(inputs.predictors.attrs.get("climatology", 0)),
        "domain": {
            "n_cells": int(inputs.n_cells),
            "area_km2": float(w.sum() / 1e6),
        },
        "counts": {f: int(inputs.fluxes[f].y.size) for f in FLUXES},
        "area_shares": {str(k): v for k, v in inputs.area_shares.items()},
        "fluxes": fluxes,
        # the same figures gathered per flux, at the top level as well
        "integrated_sd_pg_per_yr": {f: fluxes[f]["integrated_sd_pg_per_yr"] for f in OUTPUT_FLUXES},
        "integrated_mad_pg_per_yr": {
            f: fluxes[f]["integrated_mad_pg_per_yr"] for f in OUTPUT_FLUXES
        },
        "ratios": {
            "AR/SR": mean_totals["AR"] / mean_totals["SR"],
            "HR/SR": mean_totals["HR"] / mean_totals["SR"],
        },
        "validation": validation,
        "qc": inputs.qc,
    }
    truth = inputs.truth
    if truth is not None:
        summary["demo_truth_pg_per_yr"] = {
            k: float(v) for k, v in dict(truth.mean_totals).items() if k in OUTPUT_FLUXES
        }
    return summary
