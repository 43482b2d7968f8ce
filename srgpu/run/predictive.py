"""The run stage of the predictive distribution: each replicate's quantile regression forest
read at the grid and at its held-out records.

For every trained (replicate, flux) forest (``config.predictive = "moments"``):

* the conditional mean and second moment of its predictive distribution at every grid row
  (Meinshausen weights over the replicate's own training records, leaf membership "all":
  :func:`srgpu.forest.predictive.leaf_tables`), averaged over the years of each cell: the
  moments of the cell's time mixture (one observation in a random year). They are per-replicate
  rows of the store, written with the batch like the replicate maps, so a resumed run rebuilds
  them exactly; the finalisation pools them over replicates as an equal mixture
  (mean of the means, mean of the second moments: exact);
* its calibration on the replicate's held-out 20 %: coverage of the central 50/90/95 %
  intervals, mean CRPS and the 10-bin PIT histogram (mid-PIT: deterministic), from the exact
  weighted distribution (:func:`srgpu.forest.predictive.heldout_calibration`);
* each forest's mean at every record of its flux and the replicate's held-out flags, from which
  the finalisation scores the replicate-spread band on the same held-out records
  (:mod:`srgpu.run.spread_calibration`: ``calibration_spread`` beside ``calibration``).

Cost: one more tree walk over the grid per forest (the fused moments kernel, measured 1.07-1.09x
a mean-only walk: docs/predictive.md), so inference about doubles with the default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from srgpu.schema import CALIBRATION, CALIBRATION_METRICS, PREDICTIVE_FLUXES, flux_var


def predictive_rows(trained: dict[str, list], inputs: Any) -> dict[str, np.ndarray]:
    """Per-replicate predictive moments ``(b, n_cells)`` and calibration ``(b, flux, metric)``
    of a batch's forests (``trained[flux]``: ``[(forest, split), ...]`` in replicate order), and
    the rows of the replicate-spread band's calibration ``(b, n_sites)``
    (:func:`srgpu.run.spread_calibration.record_rows`)."""
    from srgpu.forest.predictive import heldout_calibration, leaf_tables, predictive_moments
    from srgpu.run.spread_calibration import record_rows

    n_years, n_cells = inputs.n_years, inputs.n_cells
    out: dict[str, np.ndarray] = {}
    b = len(trained[PREDICTIVE_FLUXES[0]])
    calibration = np.empty((b, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)))
    for j, flux in enumerate(PREDICTIVE_FLUXES):
        data = inputs.fluxes[flux]
        mean = np.empty((b, n_cells), dtype=np.float32)
        second = np.empty((b, n_cells), dtype=np.float32)
        for i, (forest, split) in enumerate(trained[flux]):
            tables = leaf_tables([forest], X=data.X, y=data.y, train_index=[split.train])
            pm = predictive_moments(tables, inputs.grid_X[flux])
            mean[i] = pm.mean[0].reshape(n_years, n_cells).mean(axis=0)
            second[i] = pm.second[0].reshape(n_years, n_cells).mean(axis=0)
            cal = heldout_calibration(tables, data.X[split.test], data.y[split.test])
            cov = cal["coverage"]
            calibration[i, j] = [cov["0.5"], cov["0.9"], cov["0.95"], cal["crps"], *cal["pit_hist"]]
        out[flux_var(flux, "pred_replicate_mean")] = mean
        out[flux_var(flux, "pred_replicate_second")] = second
    out[CALIBRATION] = calibration
    out.update(record_rows(trained, inputs))
    return out


def pooled_predictive(mean_rows: np.ndarray, second_rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """The equal mixture over replicates of per-replicate moments ``(R, n)``: its mean and SD
    per column (SD from E[Y^2] - E[Y]^2 in float64, tiny negatives from rounding set to 0)."""
    m1 = np.mean(np.asarray(mean_rows, dtype=np.float64), axis=0)
    m2 = np.mean(np.asarray(second_rows, dtype=np.float64), axis=0)
    return m1, np.sqrt(np.maximum(m2 - m1 * m1, 0.0))


def calibration_summary(values: np.ndarray) -> dict[str, dict]:
    """``summary.json``'s ``calibration`` block from the store's ``(R, flux, metric)`` array:
    per flux, coverage (mean and SD over replicates per nominal level), the mean PIT histogram
    and CRPS (mean and SD)."""
    out: dict[str, dict] = {}
    names = list(CALIBRATION_METRICS)
    for j, flux in enumerate(PREDICTIVE_FLUXES):
        v = np.asarray(values[:, j, :], dtype=np.float64)

        def stat(col: int, v=v) -> dict[str, float]:
            x = v[:, col]
            return {
                "mean": float(np.mean(x)),
                "sd": float(np.std(x, ddof=1)) if x.size > 1 else float("nan"),
            }

        out[flux] = {
            "coverage": {
                level: stat(names.index(f"coverage_{level}")) for level in ("0.5", "0.9", "0.95")
            },
            "pit_hist": [float(x) for x in v[:, names.index("pit_0") :].mean(axis=0)],
            "crps": stat(names.index("crps")),
            "crps_units": "g m-2 yr-1",
            "replicates": int(v.shape[0]),
            "on": "each replicate's held-out 20 % with that replicate's forest",
        }
    return out
