"""Calibration of the replicate-spread band on held-out records, beside the predictive one.

srgpu's maps carry two kinds of uncertainty (docs/predictive.md): the **replicate spread** (how
much the forest mean moves between forests trained on different 80 % draws; the 2.5-97.5 % maps
``F_q025``/``F_q975`` and ``F_sd_map``) and the **predictive distribution** of one observation
(``F_pred_sd``; its held-out calibration is :mod:`srgpu.run.predictive`). This module checks the
first kind on the same held-out records, so that the two can be compared.

**The replicate-spread band at a held-out record.** Record ``i`` of flux ``F`` with predictors
``x_i`` and observation ``y_i``: the band is the equally weighted set of forest means
``{m_s(x_i)}`` over the replicates ``s`` whose forest did **not** train on ``i`` (the
replicates that held it out: an eligible record is either drawn for training or held out).
Replicate ``r``'s held-out record is therefore predicted by ``r`` itself and by every other
replicate that also held it out, about 20 % of all replicates (``members`` in the summary).
The forests that trained on ``i`` are excluded because their mean at ``x_i`` is pulled towards
``y_i`` (a random forest nearly interpolates its training records): including them would score
the band on data it has seen, which no grid cell without an observation enjoys
(``exclude_trained=False`` gives that in-sample variant for comparison; it covers more).

Per record: coverage of the central 50/90/95 % intervals (type-7 quantiles, ``numpy.quantile``'s
default, as the store's ``F_q025``/``F_q975`` across replicates), the mid-PIT
``F(y-) + (F(y) - F(y-)) / 2`` of the band's empirical distribution and its CRPS
(:func:`srgpu.calibration.crps_sample`, the CRPS of the empirical distribution of the members).
Per replicate ``r``: the means of these over ``r``'s held-out records (the PIT as a 10-bin
histogram); over replicates: mean and SD (:func:`srgpu.calibration.summarise_replicates`), the
keys of ``calibration.<F>``. Small bands: with ``n`` members the band's full range covers a
new exchangeable draw with probability ``(n - 1) / (n + 1)`` at most, so with few replicates
the spread band's coverage is low by construction as well (``members`` says how many).

Store: per replicate, the forest mean at every record of its flux (``site_forest_mean``,
(replicate, site), g m-2 yr-1) and whether the record was held out (``site_heldout``, 1 or 0,
float32 so that a lost chunk reads as NaN), written with the batch like the replicate maps
(:func:`record_rows`), so a resumed run and any batch size give the same numbers. 2000
replicates x 3300 records: 53 MB of float64 and 26 MB of float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srgpu.calibration import (
    NOMINAL,
    PIT_BINS,
    crps_sample,
    pit,
    pit_histogram,
    summarise_replicates,
)
from srgpu.errors import InputError
from srgpu.schema import (
    PREDICTIVE_FLUXES,
    SITE_FLUX,
    SITE_FOREST_MEAN,
    SITE_HELDOUT,
    SITE_VALUE,
    TRAINED_FLUXES,
)

DEFINITION = (
    "replicate-spread band at a held-out record: the equally weighted forest means at the "
    "record's predictors of every replicate that did not train on it (about 20 % of the "
    "replicates); central intervals from type-7 quantiles (as F_q025/F_q975), mid-PIT, CRPS of "
    "the members' empirical distribution"
)


def record_rows(trained: dict[str, list], inputs: Any) -> dict[str, np.ndarray]:
    """Per-replicate rows ``(b, n_sites)`` of a batch: each forest's mean at every record of its
    flux (the store's ``site`` order: the fluxes' record tables one after the other) and 1 where
    the replicate held the record out (``trained[flux]``: ``[(forest, split), ...]``)."""
    b = len(trained[TRAINED_FLUXES[0]])
    sizes = [inputs.fluxes[f].y.size for f in TRAINED_FLUXES]
    means = np.empty((b, sum(sizes)), dtype=np.float64)
    heldout = np.zeros((b, sum(sizes)), dtype=np.float32)
    start = 0
    for flux, n in zip(TRAINED_FLUXES, sizes, strict=True):
        X = inputs.fluxes[flux].X
        for i, (forest, split) in enumerate(trained[flux]):
            means[i, start : start + n] = np.asarray(forest.predict(X), dtype=np.float64)
            heldout[i, start + np.asarray(split.test)] = 1
        start += n
    return {SITE_FOREST_MEAN: means, SITE_HELDOUT: heldout}


def band_scores(
    y: float, members: np.ndarray, *, nominal: Sequence[float] = NOMINAL
) -> dict[str, Any]:
    """Scores of one observation ``y`` under the equally weighted band ``members``: coverage
    (``{"0.5": bool, ...}``, bounds included), mid-PIT and CRPS (units of ``y``)."""
    m = np.sort(np.asarray(members, dtype=np.float64).reshape(-1))
    if m.size == 0 or not np.all(np.isfinite(m)):
        raise InputError("a band needs at least one finite member", field="members", value=m.size)
    covered = {}
    for p in nominal:
        lo, hi = np.quantile(m, [(1 - p) / 2, (1 + p) / 2])
        covered[f"{p:g}"] = bool(lo <= y <= hi)
    yy = np.array([y], dtype=np.float64)
    w = np.full((1, m.size), 1.0 / m.size)
    return {
        "coverage": covered,
        "pit": float(pit(yy, w, m)[0]),
        "crps": float(crps_sample(yy, m[None, :])[0]),
    }


def spread_calibration(
    y: np.ndarray,
    means: np.ndarray,
    heldout: np.ndarray,
    *,
    exclude_trained: bool = True,
    nominal: Sequence[float] = NOMINAL,
    bins: int = PIT_BINS,
) -> dict[str, Any]:
    """The ``calibration_spread.<F>`` block of one flux from its records' observations ``y``
    (n,), the forest means ``means`` (R, n) of every replicate at every record and the held-out
    flags ``heldout`` (R, n): per replicate the scores of its held-out records (see the module
    docstring), summarised over replicates, plus ``members`` (band size: mean, min, max over
    the scored records) and ``definition``."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    means = np.asarray(means, dtype=np.float64)
    flags = np.asarray(heldout, dtype=np.float64)
    if not np.isin(flags, (0.0, 1.0)).all():
        raise InputError(
            "held-out flags must be 0 or 1", field="site_heldout", expected="0 (trained), 1"
        )
    held = flags == 1.0
    if means.shape != held.shape or means.ndim != 2 or means.shape[1] != y.size:
        raise InputError(
            "forest means and held-out flags must be (replicates, records)",
            field="site_forest_mean",
            value=f"{means.shape} and {held.shape}",
            expected=f"(R, {y.size}) both",
        )
    scored = np.flatnonzero(held.any(axis=0))
    if scored.size == 0:
        raise InputError("no replicate holds a record out", field="site_heldout")
    keys = [f"{p:g}" for p in nominal]
    covered = np.zeros((y.size, len(keys)))  # per record (rows of unscored records unused)
    pits, scores = np.zeros(y.size), np.zeros(y.size)
    members = []
    for i in scored:
        band = means[held[:, i], i] if exclude_trained else means[:, i]
        s = band_scores(y[i], band, nominal=nominal)
        covered[i] = [s["coverage"][k] for k in keys]
        pits[i], scores[i] = s["pit"], s["crps"]
        members.append(band.size)
    per_replicate = []
    for r in range(means.shape[0]):
        rows = held[r]
        if not rows.any():
            continue
        per_replicate.append(
            {
                "coverage": dict(zip(keys, covered[rows].mean(axis=0).tolist(), strict=True)),
                "pit_hist": pit_histogram(pits[rows], bins=bins),
                "crps": float(scores[rows].mean()),
            }
        )
    out = summarise_replicates(per_replicate)
    out["pit_hist"] = out["pit_hist"]["mean"]  # as calibration.<F>: the mean histogram
    out["crps_units"] = "g m-2 yr-1"
    n = np.asarray(members)
    out["members"] = {"mean": float(n.mean()), "min": int(n.min()), "max": int(n.max())}
    out["exclude_trained"] = bool(exclude_trained)
    out["on"] = "each replicate's held-out 20 %"
    out["definition"] = (
        DEFINITION
        if exclude_trained
        else DEFINITION.replace(
            "of every replicate that did not train on it (about 20 % of the replicates)",
            "of every replicate, including those that trained on it (in-sample)",
        )
    )
    return out


def spread_calibration_summary(store: Any, *, exclude_trained: bool = True) -> dict[str, dict]:
    """``summary.json``'s ``calibration_spread`` block from a store holding
    ``site_forest_mean`` and ``site_heldout``: :func:`spread_calibration` per flux."""
    flux_of = np.array([str(v) for v in np.asarray(store[SITE_FLUX].values)])
    values = np.asarray(store[SITE_VALUE].values, dtype=np.float64)
    means = np.asarray(store[SITE_FOREST_MEAN].values, dtype=np.float64)
    held = np.asarray(store[SITE_HELDOUT].values)
    out = {}
    for flux in PREDICTIVE_FLUXES:
        cols = flux_of == flux
        out[flux] = spread_calibration(
            values[cols], means[:, cols], held[:, cols], exclude_trained=exclude_trained
        )
    return out
