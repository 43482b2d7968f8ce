"""Calibration of the predictive distribution under the selection's validation schemes.

``srgpu ensemble``'s ``calibration.<F>`` scores the quantile-regression-forest predictive
distribution (:mod:`srgpu.forest.predictive`) on each replicate's random 20 % held-out records:
records of one study or one place sit on both sides of that split. Here the same distribution
is scored on the folds of ``srgpu select``'s honest validation
(:func:`srgpu.analysis.selection.validation_schemes`): random k-fold and k-fold ``GroupKFold``
holding out whole studies or whole 5°x5° blocks (and the ensemble's replicate 80/20 draws).

Per fold ``i`` = ``(train, test)``: the forest is grown exactly as the honest validation grows
it (:func:`srgpu.run.replicate.grow`, replicate ``i``'s seed, the same trainer and settings),
its held-out RMSE and R² are the validation's (:func:`srgpu.run.replicate.validate`), its
leaf tables are built on the fold's training records (membership ``"all"``, as the ensemble's
calibration) and :func:`srgpu.forest.predictive.heldout_calibration` scores the held-out
records: coverage of the central 50/90/95 % intervals, 10-bin PIT histogram (mid-PIT: no
random numbers), mean CRPS in units of y (g C m-2 yr-1). Over the folds: mean and SD
(:func:`srgpu.calibration.summarise_replicates`; its ``replicates`` counts folds).

Growing each forest once for both the scores and the calibration keeps the cost at the
honest validation's forests plus the leaf tables and the held-out weight vectors.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from srgpu.config import ForestConfig
from srgpu.forest.trainers import DEFAULT_TRAINER

CALIBRATION_COLUMNS = (
    "cov50",
    "cov50_sd",
    "cov90",
    "cov90_sd",
    "cov95",
    "cov95_sd",
    "crps",
    "crps_sd",
)
"""Numeric columns of :func:`calibration_table` (coverage shares in 1, CRPS in units of y)."""


def calibrate_folds(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    forest: ForestConfig,
    seed: int,
    flux: str,
    trainer: str = DEFAULT_TRAINER,
) -> tuple[np.ndarray, list[dict]]:
    """``(scores, calibrations)``: per fold, held-out ``[rmse, r2]`` (``(n_folds, 2)``, equal
    to :func:`srgpu.run.replicate.score_folds` on the same folds) and the
    :func:`~srgpu.forest.predictive.heldout_calibration` of the fold's forest, its leaf tables
    built on the fold's training records, on its held-out records; ``elapsed_s`` (added to
    each fold's dict): the wall time of its leaf tables and calibration, the cost over the
    validation's own."""
    from srgpu.forest.predictive import heldout_calibration, leaf_tables
    from srgpu.run.replicate import score_folds

    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y)
    cals: list[dict] = []

    def calibrate(i: int, rf, train: np.ndarray, test: np.ndarray) -> None:
        t0 = time.perf_counter()
        tables = leaf_tables([rf], X=X, y=y, train_index=[np.asarray(train)])
        cal = heldout_calibration(tables, X[test], y[test])
        cal["elapsed_s"] = time.perf_counter() - t0
        cals.append(cal)

    scores = score_folds(
        X, y, folds, forest=forest, seed=seed, flux=flux, trainer=trainer, on_fold=calibrate
    )
    return scores, cals


def calibration_table(calibration: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """One row per set and scheme of ``calibration`` (``{set: {scheme: summary}}``, summaries
    of :func:`srgpu.calibration.summarise_replicates`): ``set``, ``scheme``, ``folds``, the
    coverages (share in 1) and mean CRPS (units of y) with their SDs over folds."""
    rows = []
    for label, by_scheme in calibration.items():
        for scheme, s in by_scheme.items():
            cov = s["coverage"]
            rows.append(
                {
                    "set": label,
                    "scheme": scheme,
                    "folds": s["replicates"],
                    "cov50": cov["0.5"]["mean"],
                    "cov50_sd": cov["0.5"]["sd"],
                    "cov90": cov["0.9"]["mean"],
                    "cov90_sd": cov["0.9"]["sd"],
                    "cov95": cov["0.95"]["mean"],
                    "cov95_sd": cov["0.95"]["sd"],
                    "crps": s["crps"]["mean"],
                    "crps_sd": s["crps"]["sd"],
                }
            )
    return pd.DataFrame(rows, columns=["set", "scheme", "folds", *CALIBRATION_COLUMNS])


def calibrated_validation(
    X: np.ndarray,
    y: np.ndarray,
    *,
    schemes: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    forest: ForestConfig,
    seed: int,
    flux: str,
    reference: str = "random",
    trainer: str = DEFAULT_TRAINER,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """:func:`srgpu.analysis.selection.honest_validation` (the same table) and, per scheme, the
    calibration of the predictive distribution over its folds
    (:func:`srgpu.calibration.summarise_replicates` of :func:`calibrate_folds`), each fold's
    forest grown once for both. Each summary adds ``n`` (held-out records over the folds) and
    ``extra_s`` (the calibration's wall time over the scoring's, seconds)."""
    from srgpu.analysis.selection import check_reference, validation_table
    from srgpu.calibration import summarise_replicates

    check_reference(schemes, reference)
    scores, calibration = {}, {}
    for name, folds in schemes.items():
        scores[name], cals = calibrate_folds(
            X, y, folds, forest=forest, seed=seed, flux=flux, trainer=trainer
        )
        calibration[name] = summarise_replicates(cals)
        calibration[name]["n"] = int(sum(c["n"] for c in cals))
        calibration[name]["extra_s"] = float(sum(c["elapsed_s"] for c in cals))
    return validation_table(scores, reference=reference), calibration
