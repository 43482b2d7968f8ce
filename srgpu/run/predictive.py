"""The run stage of the predictive distribution: each replicate's quantile regression forest
read at the grid and at its held-out records.

For every trained (replicate, flux) forest (``config.predictive = "moments"``):

* the conditional mean and second moment of its predictive distribution at every grid row
  (Meinshausen weights over the replicate's own training records, leaf membership
  ``config.predictive_membership``, "all" by default:
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

With ``config.predictive = "quantiles"`` also the exact **pooled** distribution of each cell:
every forest's Meinshausen weights at the cell's rows, each year with share ``1 / n_years`` and
each forest with share ``1 / n_replicates``, summed into one ``(n_cells, n_records)`` float64
array per flux (:class:`srgpu.forest.predictive.WeightAccumulator`): a batch returns the sum over
its replicates, the run adds the batches in batch order and keeps the running sum in its work
store (resumable per batch, like the merged moments), and the finalisation reads the median,
the MAD and the quantiles off it (:func:`pooled_order_statistics`). The sum is that of the
doc's ``dest = row % n_cells, share = 1 / n_years``, added year by year (one row per cell in a
call, so the kernel runs on all threads); only its float64 rounding depends on the batch size.

Cost: on CPU with the numba engine the grid's moments come from the run's own inference walk
(:mod:`srgpu.forest.fused`: the forest mean and both leaf moments in one walk of each tree per
tile; the mean is the engine's bit for bit), so the default adds a few adds per row and tree,
not a second walk; other engines (GPU) walk the grid once more per forest with
:func:`~srgpu.forest.predictive.predictive_moments`. Quantiles add one weight scatter per forest
and row (docs/predictive.md, "Cost").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from srgpu.errors import ConfigError
from srgpu.schema import (
    CALIBRATION,
    CALIBRATION_METRICS,
    PREDICTIVE_FLUXES,
    PREDICTIVE_QUANTILE_LEVELS,
    flux_var,
)

if TYPE_CHECKING:
    from srgpu.config import EnsembleConfig
    from srgpu.data.inputs import Inputs

QUANTILES_MEMORY_LIMIT_BYTES = 8_000_000_000
"""The most memory a ``predictive = "quantiles"`` run may plan for its pooled weights (a fixed
8 GB, not the machine's free memory: the same config is accepted or refused on every machine).
See :func:`quantiles_memory_bytes`."""


def quantiles_memory_bytes(inputs: Inputs) -> int:
    """Bytes a ``predictive = "quantiles"`` run holds for its pooled weights: per flux of
    :data:`PREDICTIVE_FLUXES`, an ``(n_cells, n_records)`` float64 array twice (the running sum
    and one batch's sum being added to it) and two float64 per cell twice (totals, counts).
    A distributed run may hold the sums of more batches that finish out of order."""
    per_cell = sum(inputs.fluxes[f].y.size + 2 for f in PREDICTIVE_FLUXES)
    return 2 * 8 * int(inputs.n_cells) * int(per_cell)


def check_quantiles_memory(inputs: Inputs, *, limit_bytes: int | None = None) -> int:
    """The bytes of :func:`quantiles_memory_bytes`, or a :class:`ConfigError` above
    ``limit_bytes`` (default :data:`QUANTILES_MEMORY_LIMIT_BYTES`; called before anything is
    written)."""
    if limit_bytes is None:
        limit_bytes = QUANTILES_MEMORY_LIMIT_BYTES
    need = quantiles_memory_bytes(inputs)
    if need > limit_bytes:
        records = ", ".join(f"{f} {inputs.fluxes[f].y.size}" for f in PREDICTIVE_FLUXES)
        raise ConfigError(
            f"predictive = 'quantiles' needs {need:,} bytes ({need / 1e9:.2f} GB) for the pooled "
            f"weights ({inputs.n_cells} cells x records [{records}] x 8 bytes, twice), above the "
            f"limit of {limit_bytes:,} bytes ({limit_bytes / 1e9:.0f} GB); use --predictive "
            "moments (mean, SD and calibration, no quantiles), or a smaller grid or record table"
        )
    return need


def predictive_rows(trained: dict[str, list], inputs: Inputs) -> dict[str, np.ndarray]:
    """Per-replicate predictive moments ``(b, n_cells)`` and calibration ``(b, flux, metric)``
    of a batch's forests (``trained[flux]``: ``[(forest, split), ...]`` in replicate order), and
    the rows of the replicate-spread band's calibration ``(b, n_sites)``
    (:func:`srgpu.run.spread_calibration.record_rows`)."""
    return predictive_batch(trained, inputs)[0]


def predictive_batch(
    trained: dict[str, list],
    inputs: Inputs,
    *,
    pooled_over: int | None = None,
    leaf_moments: dict[str, list] | None = None,
    config: EnsembleConfig | None = None,
    replicates: Sequence[int] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """:func:`predictive_rows` and, with ``pooled_over`` (the run's replicate count ``K``), the
    batch's share of the pooled weights: per flux a
    :class:`~srgpu.forest.predictive.WeightAccumulator` over the cells holding
    ``(1 / K) sum_r (1 / n_years) sum_year w_r(cell-year)`` for the batch's forests ``r`` (the
    run adds the batches; :func:`add_weights`). Without ``pooled_over`` the second item is
    ``{}``.

    With ``leaf_moments`` (a dict), the grid's moments are not walked here: each forest's
    per-node leaf moments ``(n_nodes, 2)`` are appended to ``leaf_moments[flux]`` instead, for
    the run's fused walk (:mod:`srgpu.forest.fused`: the forest mean and both moments in one
    walk of each tree over the grid), which adds the ``pred_replicate_*`` rows itself
    (:meth:`srgpu.run.batch.TileReducer.predictive_rows`, the same numbers); not with
    ``"oob"`` membership, whose moments need the row's count of contributing trees: they are
    walked here (:func:`~srgpu.forest.predictive.predictive_moments`).

    ``config`` (an :class:`~srgpu.config.EnsembleConfig`; default: leaf membership ``"all"``)
    gives ``predictive_membership``; with ``"inbag"`` or ``"oob"`` each forest's bootstrap
    counts are replayed (:func:`~srgpu.forest.predictive.inbag_counts` from the forest's seed
    ``replicate_seed(config.seed, r, flux, PURPOSE_FOREST)``), ``replicates`` naming the
    replicate ``r`` of each forest (in ``trained``'s order)."""
    from srgpu.forest.predictive import (
        WeightAccumulator,
        heldout_calibration,
        leaf_tables,
        predictive_moments,
    )
    from srgpu.run.spread_calibration import record_rows

    membership = "all" if config is None else config.predictive_membership
    if membership == "oob" and leaf_moments is not None:
        raise ConfigError(
            "predictive_membership = 'oob' cannot take the fused walk (its moments divide by "
            "each row's count of contributing trees): walk the moments here"
        )

    n_years, n_cells = inputs.n_years, inputs.n_cells
    out: dict[str, np.ndarray] = {}
    weights: dict[str, Any] = {}
    b = len(trained[PREDICTIVE_FLUXES[0]])
    calibration = np.empty((b, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)))
    for j, flux in enumerate(PREDICTIVE_FLUXES):
        data = inputs.fluxes[flux]
        mean = np.empty((b, n_cells), dtype=np.float32)
        second = np.empty((b, n_cells), dtype=np.float32)
        if leaf_moments is not None:
            leaf_moments[flux] = []
        if pooled_over is not None:
            acc = WeightAccumulator.zeros(n_rows=n_cells, n_records=int(data.y.size))
            weights[flux] = acc
        for i, (forest, split) in enumerate(trained[flux]):
            inbag = None
            if membership != "all":
                inbag = [_bag_counts(config, replicates, i, flux, split.train.size)]
            tables = leaf_tables(
                [forest], X=data.X, y=data.y, train_index=[split.train], membership=membership,
                inbag=inbag,
            )  # fmt: skip
            if leaf_moments is not None:
                leaf_moments[flux].append(tables.moments)
            else:
                pm = predictive_moments(tables, inputs.grid_X[flux])
                if tables.honest:
                    _check_defined(pm.mean[0], flux, None if replicates is None else replicates[i])
                mean[i] = pm.mean[0].reshape(n_years, n_cells).mean(axis=0)
                second[i] = pm.second[0].reshape(n_years, n_cells).mean(axis=0)
            cal = heldout_calibration(tables, data.X[split.test], data.y[split.test])
            cov = cal["coverage"]
            calibration[i, j] = [cov["0.5"], cov["0.9"], cov["0.95"], cal["crps"], *cal["pit_hist"]]
            if pooled_over is not None:
                for year in range(n_years):  # rows year * n_cells + cell -> cell
                    acc.add(
                        tables,
                        inputs.grid_X[flux][year * n_cells : (year + 1) * n_cells],
                        n_forests=pooled_over,
                        share=1.0 / n_years,
                    )
        if leaf_moments is None:
            out[flux_var(flux, "pred_replicate_mean")] = mean
            out[flux_var(flux, "pred_replicate_second")] = second
    out[CALIBRATION] = calibration
    out.update(record_rows(trained, inputs))
    return out, weights


def _check_defined(mean: np.ndarray, flux: str, replicate: int | None) -> None:
    """A :class:`ConfigError` when some grid row has no ``"oob"`` distribution (no tree of the
    forest reaches a leaf holding an out-of-bag record there: NaN moments), which a run cannot
    store; with the default 500 trees (or the demo's 200) it does not happen."""
    bad = int(np.isnan(mean).sum())
    if bad:
        raise ConfigError(
            f"predictive_membership = 'oob': the {flux} forest of replicate {replicate} has no "
            f"tree whose leaf holds an out-of-bag record at {bad} grid row(s), where its "
            "predictive distribution is undefined; grow more trees (forest.trees) or use "
            "predictive_membership = 'all'"
        )


def _bag_counts(
    config: EnsembleConfig, replicates: Sequence[int] | None, i: int, flux: str, n: int
):
    """Bootstrap counts of the ``i``-th forest of a batch (replicate ``replicates[i]``)."""
    from srgpu.forest.predictive import inbag_counts
    from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

    if replicates is None:
        raise ConfigError(
            f"predictive_membership = {config.predictive_membership!r} needs the replicate "
            "number of each forest (replicates=...)"
        )
    seed = replicate_seed(config.seed, int(replicates[i]), flux, PURPOSE_FOREST)
    return inbag_counts(n_train=n, forest=config.forest, seed=seed)


def add_weights(total: dict[str, Any] | None, part: dict[str, Any]) -> dict[str, Any]:
    """The running pooled weights plus one batch's (:func:`predictive_batch`), in place when
    ``total`` exists; the first batch's are taken as they are."""
    if total is None:
        return dict(part)
    for f in PREDICTIVE_FLUXES:
        total[f].weights += part[f].weights
        total[f].totals += part[f].totals
        total[f].counts += part[f].counts
    return total


def pooled_order_statistics(
    weights: np.ndarray, totals: np.ndarray, counts: np.ndarray, y_sorted: np.ndarray
) -> dict[str, np.ndarray]:
    """Median, MAD (unscaled and x1.4826) and the quantiles of
    :data:`~srgpu.schema.PREDICTIVE_QUANTILE_LEVELS` of pooled weights ``(n, n_records)`` over
    the flux's ascending record values ``y_sorted`` (quantile-forest's ``"linear"`` rule on the
    member-count scale ``counts``): ``{kind: (n,) float64}`` by store kind."""
    from srgpu.forest.predictive import summary_of_weights

    levels = tuple(PREDICTIVE_QUANTILE_LEVELS.values())
    s = summary_of_weights(
        weights, y_sorted, levels=levels, rule="linear", totals=totals, counts=counts
    )
    out = {"pred_median": s.median, "pred_mad": s.mad, "pred_mad_scaled": s.mad_scaled}
    for kind, level in PREDICTIVE_QUANTILE_LEVELS.items():
        out[kind] = s.quantile(level)
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
