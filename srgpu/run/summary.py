"""The run's headline numbers (``summary.json``) from the finished store.

Three kinds of "global uncertainty" are reported and must not be confused:

* ``total_pg_per_yr.sd`` (and mad, q025, q975): the spread across replicates of the global total
  (each replicate's time-mean map integrated over area). Errors of neighbouring cells partly
  cancel in a sum, so this is small.
* ``integrated_sd_pg_per_yr`` / ``integrated_mad_pg_per_yr``: the per-cell SD (MAD) map across
  replicates of the time-mean (the replicate spread), integrated over area as if every cell
  erred in the same direction. ``integrated_sd_cell_year_pg_per_yr`` integrates the
  per-cell-year SD instead, averaged over years.
* ``predictive.integrated_sd_pg_per_yr``: the per-cell SD of the forests' predictive
  distribution (quantile regression forest: one observation given the predictors), integrated
  the same way; ``predictive.integrated_mad_pg_per_yr`` and ``integrated_mad_scaled_pg_per_yr``
  its exact per-cell MAD, unscaled and x1.4826 (``predictive = "quantiles"`` only; ``null``
  otherwise). The paper's "global uncertainty" (SR: 40.4 SD, 27.3 MAD Pg C/yr) is of this
  kind (docs/predictive.md).

Held-out calibration of the two bands, on the same records: ``calibration.<F>`` (the
predictive distribution) and ``calibration_spread.<F>`` (the replicate spread:
:mod:`srgpu.run.spread_calibration`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu import __version__
from srgpu.config import TRAINED_FLUXES, EnsembleConfig
from srgpu.constants import G_PER_PG
from srgpu.data.inputs import Inputs
from srgpu.run.predictive import calibration_summary
from srgpu.run.spread_calibration import spread_calibration_summary
from srgpu.run.stats import replicate_summary
from srgpu.schema import (
    CALIBRATION,
    METRICS,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    SITE_FOREST_MEAN,
    VALIDATION,
    flux_var,
)

TOTAL_KEYS = ("mean", "sd", "median", "mad", "q025", "q975")


def _stats_1d(values: np.ndarray) -> dict[str, float]:
    s = replicate_summary(np.asarray(values, dtype=np.float64)[:, None], axis=0)
    out = {k: float(np.asarray(s[k])[0]) for k in TOTAL_KEYS}
    if values.size < 2:
        out["sd"] = float("nan")
    return out


def negative_share(values: np.ndarray, weights: np.ndarray) -> dict[str, float | int]:
    """Cells with a negative value and their area share: ``negative_cells`` (count) and
    ``negative_area_fraction`` (sum of ``weights`` where ``values < 0`` over the sum of ``weights``
    where ``values`` is finite). For AR = SR - HR a negative time-mean is physically impossible
    (root respiration cannot be negative): it marks cells where the HR forest predicts more
    than the SR forest."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    finite = np.isfinite(values)
    negative = finite & (values < 0)
    total = float(weights[finite].sum())
    return {
        "negative_cells": int(negative.sum()),
        "negative_area_fraction": float(weights[negative].sum() / total) if total > 0 else 0.0,
    }


MEMBERSHIP_WORDS = {
    "all": "all training records of a leaf (quantregForest's, the paper's)",
    "inbag": "each tree's bootstrap rows of a leaf, with their counts",
    "oob": "each tree's out-of-bag records of a leaf, trees whose leaf holds none skipped",
}
"""``predictive_membership`` in the words of ``summary.json``."""


def _predictive_block(
    store: xr.Dataset, inputs: Inputs, flux: str, w: np.ndarray, membership: str = "all"
) -> dict | None:
    """``fluxes.<F>.predictive``: the predictive distribution's SD map integrated over area
    (``None`` without one, and for AR: see :data:`srgpu.schema.PREDICTIVE_FLUXES`)."""
    if flux not in PREDICTIVE_FLUXES or flux_var(flux, "pred_sd") not in store:
        return None

    def integrated(kind: str) -> float | None:
        """Per-cell values of ``kind`` x area x land fraction, summed (as the SD), Pg C/yr;
        ``None`` when the run did not compute them (``predictive = "moments"``)."""
        name = flux_var(flux, kind)
        if name not in store:
            return None
        cell = np.asarray(store[name].values)[inputs.cell_ilat, inputs.cell_ilon]
        return float(np.nansum(cell * w) / G_PER_PG)

    return {
        "integrated_sd_pg_per_yr": integrated("pred_sd"),
        # the exact median absolute deviation of the pooled distribution, unscaled and x1.4826
        # (R's mad()): predictive = "quantiles" only (null otherwise)
        "integrated_mad_pg_per_yr": integrated("pred_mad"),
        "integrated_mad_scaled_pg_per_yr": integrated("pred_mad_scaled"),
        "membership": membership,
        "definition": "per-cell SD (MAD) of the quantile-regression-forest predictive "
        "distribution (Meinshausen weights over each replicate's training records, "
        f"{MEMBERSHIP_WORDS[membership]}), equal mixture over replicates and years, integrated "
        "over area x land "
        "fraction as if every cell erred the same way (an upper bound for the SD of the global "
        "total, not an interval)",
    }


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
        totals = np.asarray(store[flux_var(f, "replicate_total")].values)  # (R, n_years)
        per_rep = totals.mean(axis=1)
        annual = totals.mean(axis=0)
        sd_cy = np.asarray(store[flux_var(f, "sd")].values)[:, inputs.cell_ilat, inputs.cell_ilon]
        fluxes[f] = {
            "total_pg_per_yr": _stats_1d(per_rep),
            "annual_pg_per_yr": [float(v) for v in annual],
            "interannual_range": [float(annual.min()), float(annual.max())],
            "integrated_sd_pg_per_yr": float(np.nansum(cell_stats[f]["sd"] * w) / G_PER_PG),
            "integrated_mad_pg_per_yr": float(np.nansum(cell_stats[f]["mad"] * w) / G_PER_PG),
            "integrated_sd_cell_year_pg_per_yr": float(
                np.nanmean(np.nansum(sd_cy * w, axis=1)) / G_PER_PG
            ),
        }
        if f == "AR":  # from the time-mean map, area x land fraction weights
            fluxes[f].update(negative_share(cell_stats[f]["mean"], w))
        fluxes[f]["predictive"] = _predictive_block(
            store, inputs, f, w, config.predictive_membership
        )
        mean_totals[f] = float(per_rep.mean())
    validation = {}
    val = np.asarray(store[VALIDATION].values)  # (R, flux, metric)
    for j, f in enumerate(TRAINED_FLUXES):
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
        "counts": {f: int(inputs.fluxes[f].y.size) for f in TRAINED_FLUXES},
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
    if CALIBRATION in store:
        summary["calibration"] = calibration_summary(np.asarray(store[CALIBRATION].values))
        for block in summary["calibration"].values():  # whose distribution was scored
            block["membership"] = config.predictive_membership
    if SITE_FOREST_MEAN in store:  # the replicate-spread band on the same held-out records
        summary["calibration_spread"] = spread_calibration_summary(store)
    truth = inputs.truth
    if truth is not None:
        summary["demo_truth_pg_per_yr"] = {
            k: float(v) for k, v in dict(truth.mean_totals).items() if k in OUTPUT_FLUXES
        }
    return summary
