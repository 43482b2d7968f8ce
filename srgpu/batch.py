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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

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
    seed = replicate_seed(config.seed, replicate, flux, PURPOSE_FOREST)
    if config.train_on == "gpu":
        from srgpu.forest.cuml_train import fit_cuml_forest

        # cuML takes a 32-bit integer seed: the first word of the same seed sequence
        forest = fit_cuml_forest(
            data.X[split.train],
            data.y[split.train],
            forest=config.forest,
            seed=int(seed.generate_state(1)[0]),
        )
    else:
        # "cpu" and "auto": scikit-learn on the host's cores, also while a GPU infers (the
        # training tables have a few thousand rows; cuML's speed on them is unmeasured)
        forest = fit_forest(
            data.X[split.train], data.y[split.train], forest=config.forest, seed=seed
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


def array_namespace_for(device: str) -> Any:
    """The array-API namespace of a device: ``array_api_compat.numpy`` or ``.cupy``."""
    if device == "gpu":
        import array_api_compat.cupy as xp_gpu

        return xp_gpu
    import array_api_compat.numpy as xp_cpu

    return xp_cpu


def _to_host(x: Any) -> np.ndarray:
    if hasattr(x, "__cuda_array_interface__") and hasattr(x, "get"):
        return np.asarray(x.get())
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        return np.from_dlpack(x)


def stream_statistics(
    predict: dict[str, Callable[[Any], Any]],
    rows: dict[str, Any],
    *,
    weight_m2: np.ndarray,
    n_cells: int,
    n_years: int,
    tile_rows: int,
    xp: Any,
) -> tuple[dict[str, Moments], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Predict the rows tile by tile and reduce them, written once against the array API.

    ``predict[f](X)`` returns ``(b, n)`` predictions of flux ``f`` (SR, HR) for the rows ``X``;
    rows are year-major (``row = iyear * n_cells + icell``). Returns, on the host: per-row
    moments over the ``b`` replicates for SR, HR and AR = SR - HR; per-replicate time-mean
    maps ``(b, n_cells)``; per-replicate annual totals ``(b, n_years)`` in Pg C / yr.
    """
    n_rows = n_cells * n_years
    f64 = xp.float64
    w = xp.asarray(np.asarray(weight_m2, dtype=np.float64))
    means = {f: xp.zeros((n_rows,), dtype=f64) for f in OUTPUT_FLUXES}
    m2s = {f: xp.zeros((n_rows,), dtype=f64) for f in OUTPUT_FLUXES}
    map_sum: dict[str, Any] = {}
    totals: dict[str, Any] = {}
    count = 0
    for r0 in range(0, n_rows, tile_rows):
        r1 = min(r0 + tile_rows, n_rows)
        pred = {f: xp.asarray(predict[f](rows[f][r0:r1, :]), dtype=f64) for f in FLUXES}
        pred["AR"] = pred["SR"] - pred["HR"]
        b = pred["SR"].shape[0]
        if not map_sum:
            map_sum = {f: xp.zeros((b, n_cells), dtype=f64) for f in FLUXES}
            totals = {f: xp.zeros((b, n_years), dtype=f64) for f in FLUXES}
        for f in OUTPUT_FLUXES:
            m = moments_of(pred[f], axis=0)
            means[f][r0:r1] = m.mean
            m2s[f][r0:r1] = m.m2
            count = m.count
        # year segments of this tile: rows [s0, s1) all belong to year y, cells c0..c1
        s0 = r0
        while s0 < r1:
            y, c0 = divmod(s0, n_cells)
            s1 = min(r1, (y + 1) * n_cells)
            c1 = c0 + (s1 - s0)
            for f in FLUXES:
                seg = pred[f][:, s0 - r0 : s1 - r0]
                map_sum[f][:, c0:c1] = map_sum[f][:, c0:c1] + seg
                # row-wise sum, not a BLAS product: a replicate's total must not depend on
                # how many replicates share its batch
                totals[f][:, y] = totals[f][:, y] + xp.sum(seg * w[c0:c1], axis=1)
            s0 = s1
    maps = {f: _to_host(map_sum[f]) / n_years for f in FLUXES}
    maps["AR"] = maps["SR"] - maps["HR"]
    tot = {f: _to_host(totals[f]) / 1e15 for f in FLUXES}
    tot["AR"] = tot["SR"] - tot["HR"]
    moments = {
        f: Moments(count=count, mean=_to_host(means[f]), m2=_to_host(m2s[f])) for f in OUTPUT_FLUXES
    }
    return moments, maps, tot


def run_batch(
    spec: BatchSpec,
    inputs: Inputs,
    config: EnsembleConfig,
    *,
    engine_name: str = "auto",
    device: str = "cpu",
    xp: Any = None,
) -> BatchResult:
    """Train, validate and predict one batch of replicates (see the module docstring).

    ``xp`` is the array namespace of the streaming statistics (default: numpy on CPU, cupy on
    GPU, through array-api-compat); only reduced results come back to the host.
    """
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

    xp = xp if xp is not None else array_namespace_for(device)
    if device == "gpu":  # rows go to the device once per batch and stay there
        rows = {f: xp.asarray(inputs.grid_X[f]) for f in FLUXES}
    else:
        rows = inputs.grid_X
    moments, maps, tot = stream_statistics(
        {f: compiled[f].predict for f in FLUXES},
        rows,
        weight_m2=inputs.weight_m2,
        n_cells=inputs.n_cells,
        n_years=inputs.n_years,
        tile_rows=config.tile_rows,
        xp=xp,
    )
    t3 = time.perf_counter()
    return BatchResult(
        spec=spec,
        moments=moments,
        maps=maps,
        totals=tot,
        validation=validation,
        timing={"train_s": t1 - t0, "validate_s": t2 - t1, "infer_s": t3 - t2},
    )
