"""One batch of replicates, from draws to reduced statistics: a pure function.

``run_batch`` trains the SR and HR forests of each replicate of the batch (each on its own
stratified draw), validates them on the held-out records, compiles each flux's forests into the
inference engine **once**, and streams the prediction rows tile by tile. Only reduced results
leave it: per-row moments over the batch's replicates (SR, HR and AR = SR - HR paired replicate
by replicate), per-replicate time-mean maps, per-replicate annual global totals and validation
metrics. Its output depends only on the config, the inputs and the replicate indices, never on
which worker or in which order it runs.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from srgpu.config import FLUXES, EnsembleConfig
from srgpu.forest.train import fit_forest
from srgpu.inputs import Inputs
from srgpu.sampling import PURPOSE_FOREST, bin_weights, replicate_seed, replicate_split
from srgpu.stats import Moments, moments_of, validation_metrics

OUTPUT_FLUXES = ("SR", "HR", "AR")
METRICS = ("r2", "rmse", "r")


@dataclass(frozen=True)
class BatchSpec:
    """Batch ``index`` holds replicates ``start .. stop-1``."""

    index: int
    start: int
    stop: int

    @property
    def replicates(self) -> range:
        return range(self.start, self.stop)

    @property
    def size(self) -> int:
        return self.stop - self.start


def batch_specs(n_replicates: int, batch_size: int) -> list[BatchSpec]:
    """Split replicates ``0..n-1`` into consecutive batches of ``batch_size``."""
    return [
        BatchSpec(index=i, start=s, stop=min(s + batch_size, n_replicates))
        for i, s in enumerate(range(0, n_replicates, batch_size))
    ]


@dataclass
class BatchResult:
    """Reduced results of one batch (see the module docstring)."""

    spec: BatchSpec
    moments: dict[str, Moments]  # flux -> moments over the batch's replicates, per row
    maps: dict[str, np.ndarray]  # SR/HR/AR -> (b, n_cells) per-replicate time-mean maps
    totals: dict[str, np.ndarray]  # SR/HR/AR -> (b, n_years) Pg C / yr
    validation: np.ndarray  # (b, 2 fluxes, 3 metrics)
    timing: dict[str, float] = field(default_factory=dict)


def train_replicate(inputs: Inputs, config: EnsembleConfig, replicate: int, flux: str):
    """Draw replicate ``replicate``'s split of ``flux`` and fit its forest: ``(forest, split)``.

    A pure function of its arguments: ``srgpu explain`` re-grows the same forests with it.
    """
    data = inputs.fluxes[flux]
    weights = bin_weights(scheme=config.sampling, area_shares=inputs.area_shares)
    split = replicate_split(
        bins=data.bins,
        weights=weights,
        train_fraction=config.train_fraction,
        seed=config.seed,
        replicate=replicate,
        flux=flux,
    )
    forest = fit_forest(
        data.X[split.train],
        data.y[split.train],
        forest=config.forest,
        seed=replicate_seed(config.seed, replicate, flux, PURPOSE_FOREST),
    )
    return forest, split


def train_batch(
    spec: BatchSpec, inputs: Inputs, config: EnsembleConfig, *, threads: int | None = None
):
    """Train every (replicate, flux) forest of the batch; returns ``{flux: [(forest, split)]}``."""
    jobs = [(r, f) for r in spec.replicates for f in FLUXES]
    threads = threads or min(len(jobs), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = list(pool.map(lambda job: train_replicate(inputs, config, *job), jobs))
    out: dict[str, list] = {f: [] for f in FLUXES}
    for (_, f), result in zip(jobs, done, strict=True):
        out[f].append(result)
    return out


def run_batch(
    spec: BatchSpec,
    inputs: Inputs,
    config: EnsembleConfig,
    *,
    engine_name: str = "auto",
    device: str = "cpu",
) -> BatchResult:
    """Train, validate and predict one batch of replicates (see the module docstring)."""
    from srgpu.forest.engines import get_engine

    t0 = time.perf_counter()
    trained = train_batch(spec, inputs, config)
    t1 = time.perf_counter()
    engine = get_engine(engine_name, device=device)
    compiled = {f: engine.compile([forest for forest, _ in trained[f]]) for f in FLUXES}

    b = spec.size
    validation = np.empty((b, len(FLUXES), len(METRICS)))
    for j, flux in enumerate(FLUXES):
        data = inputs.fluxes[flux]
        for i, (forest, split) in enumerate(trained[flux]):
            y_hat = np.asarray(forest.predict(data.X[split.test]))
            m = validation_metrics(data.y[split.test], y_hat)
            validation[i, j] = [m[k] for k in METRICS]
    t2 = time.perf_counter()

    n_cells, n_years, n_rows = inputs.n_cells, inputs.n_years, inputs.n_rows
    means = {f: np.empty(n_rows) for f in OUTPUT_FLUXES}
    m2s = {f: np.empty(n_rows) for f in OUTPUT_FLUXES}
    map_sum = {f: np.zeros((b, n_cells)) for f in FLUXES}
    totals = {f: np.zeros((b, n_years)) for f in FLUXES}
    w = inputs.weight_m2
    for r0 in range(0, n_rows, config.tile_rows):
        r1 = min(r0 + config.tile_rows, n_rows)
        pred = {f: np.asarray(compiled[f].predict(inputs.grid_X[f][r0:r1])) for f in FLUXES}
        pred["AR"] = pred["SR"] - pred["HR"]
        for f in OUTPUT_FLUXES:
            m = moments_of(pred[f], axis=0)
            means[f][r0:r1] = m.mean
            m2s[f][r0:r1] = m.m2
        # year segments of this tile: rows [s0, s1) all belong to year y, cells c0..c1
        s0 = r0
        while s0 < r1:
            y, c0 = divmod(s0, n_cells)
            s1 = min(r1, (y + 1) * n_cells)
            c1 = c0 + (s1 - s0)
            for f in FLUXES:
                seg = pred[f][:, s0 - r0 : s1 - r0]
                map_sum[f][:, c0:c1] += seg
                # row-wise sum, not a BLAS product: a replicate's total must not depend on
                # how many replicates share its batch
                totals[f][:, y] += (seg * w[c0:c1]).sum(axis=1)
            s0 = s1
    t3 = time.perf_counter()

    maps = {f: map_sum[f] / n_years for f in FLUXES}
    maps["AR"] = maps["SR"] - maps["HR"]
    tot = {f: totals[f] / 1e15 for f in FLUXES}
    tot["AR"] = tot["SR"] - tot["HR"]
    moments = {f: Moments(count=b, mean=means[f], m2=m2s[f]) for f in OUTPUT_FLUXES}
    return BatchResult(
        spec=spec,
        moments=moments,
        maps=maps,
        totals=tot,
        validation=validation,
        timing={"train_s": t1 - t0, "validate_s": t2 - t1, "infer_s": t3 - t2},
    )
