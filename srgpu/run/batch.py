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

import ctypes
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from srgpu.config import EnsembleConfig
from srgpu.constants import G_PER_PG
from srgpu.data.inputs import Inputs
from srgpu.run.predictive import predictive_batch
from srgpu.run.replicate import train_replicates, validate
from srgpu.run.stats import Moments, moments_of
from srgpu.schema import METRICS, OUTPUT_FLUXES, PREDICTIVE_FLUXES, TRAINED_FLUXES, flux_var


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
    # further per-replicate rows (name -> (b, ...)): the predictive distribution's moments and
    # calibration (srgpu.run.predictive) when config.predictive is not "none"
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    # the batch's share of the pooled predictive weights (config.predictive = "quantiles"):
    # flux -> WeightAccumulator over the cells (srgpu.run.predictive.predictive_batch)
    weights: dict[str, Any] = field(default_factory=dict)


def train_batch(
    spec: BatchSpec, inputs: Inputs, config: EnsembleConfig, *, threads: int | None = None
):
    """Train every (replicate, flux) forest of the batch; returns ``{flux: [(forest, split)]}``."""
    jobs = [(r, f) for r in spec.replicates for f in TRAINED_FLUXES]
    done = train_replicates(inputs, config, jobs, threads=threads)
    out: dict[str, list] = {f: [] for f in TRAINED_FLUXES}
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


@dataclass
class TilePartial:
    """Reduced predictions of rows ``r0 .. r1-1`` for one batch (arrays of namespace ``xp``)."""

    r0: int
    r1: int
    count: int
    means: dict[str, Any]  # SR/HR/AR -> (r1 - r0,) mean over the batch's replicates
    m2s: dict[str, Any]  # SR/HR/AR -> (r1 - r0,) sum of squared deviations
    map_sum: dict[str, Any]  # SR/HR -> (b, n_cells) sum over this tile's years
    totals: dict[str, Any]  # SR/HR -> (b, n_years) g C / yr of this tile's cells
    # fused walk (predict_moments): flux -> ((b, r1 - r0) conditional mean, second moment)
    pred: dict[str, Any] = field(default_factory=dict)


def tile_partial(
    predict: dict[str, Callable[[Any], Any]],
    rows: dict[str, Any],
    r0: int,
    r1: int,
    *,
    weight_m2: Any,
    n_cells: int,
    n_years: int,
    xp: Any,
    predict_moments: dict[str, Callable[[Any], tuple]] | None = None,
) -> TilePartial:
    """Predict rows ``r0 .. r1-1`` of every flux and reduce them (array API throughout).

    ``predict[f](X)`` returns ``(b, n)`` predictions of flux ``f`` (SR, HR) for rows ``X``;
    rows are year-major (``row = iyear * n_cells + icell``). ``predict_moments[f](X)``, where
    given, replaces ``predict[f]``: it returns ``(mean, first, second)``, the same forest mean
    and the conditional moments of each forest's predictive distribution, kept per row in
    :attr:`TilePartial.pred` (:mod:`srgpu.forest.fused`).
    """
    f64 = xp.float64
    w = xp.asarray(weight_m2, dtype=f64)
    fused = predict_moments or {}
    pred, pred_moments = {}, {}
    for f in TRAINED_FLUXES:
        if f in fused:
            mean, first, second = fused[f](rows[f][r0:r1, :])
            pred[f] = xp.asarray(mean, dtype=f64)
            pred_moments[f] = (xp.asarray(first, dtype=f64), xp.asarray(second, dtype=f64))
        else:
            pred[f] = xp.asarray(predict[f](rows[f][r0:r1, :]), dtype=f64)
    pred["AR"] = pred["SR"] - pred["HR"]
    b = pred["SR"].shape[0]
    moments = {f: moments_of(pred[f], axis=0) for f in OUTPUT_FLUXES}
    map_sum = {f: xp.zeros((b, n_cells), dtype=f64) for f in TRAINED_FLUXES}
    totals = {f: xp.zeros((b, n_years), dtype=f64) for f in TRAINED_FLUXES}
    # year segments of this tile: rows [s0, s1) all belong to year y, cells c0..c1
    s0 = r0
    while s0 < r1:
        y, c0 = divmod(s0, n_cells)
        s1 = min(r1, (y + 1) * n_cells)
        c1 = c0 + (s1 - s0)
        for f in TRAINED_FLUXES:
            seg = pred[f][:, s0 - r0 : s1 - r0]
            map_sum[f][:, c0:c1] = map_sum[f][:, c0:c1] + seg
            # row-wise sum, not a BLAS product: a replicate's total must not depend on how
            # many replicates share its batch
            totals[f][:, y] = xp.sum(seg * w[c0:c1], axis=1)
        s0 = s1
    return TilePartial(
        r0=r0,
        r1=r1,
        count=moments["SR"].count,
        means={f: m.mean for f, m in moments.items()},
        m2s={f: m.m2 for f, m in moments.items()},
        map_sum=map_sum,
        totals=totals,
        pred=pred_moments,
    )


def tile_ranges(n_rows: int, tile_rows: int) -> list[tuple[int, int]]:
    """Consecutive row ranges ``[r0, r1)`` of at most ``tile_rows`` rows."""
    return [(r0, min(r0 + tile_rows, n_rows)) for r0 in range(0, n_rows, tile_rows)]


class TileReducer:
    """Merges the tiles of one batch **in row order** (the same order in every path, so that
    serial and distributed runs give the same bits) into per-row moments, per-replicate
    time-mean maps and per-replicate annual totals (Pg C / yr), returned on the host."""

    def __init__(self, *, n_cells: int, n_years: int, xp: Any):
        self.n_cells, self.n_years, self.xp = n_cells, n_years, xp
        n_rows = n_cells * n_years
        self.means = {f: xp.zeros((n_rows,), dtype=xp.float64) for f in OUTPUT_FLUXES}
        self.m2s = {f: xp.zeros((n_rows,), dtype=xp.float64) for f in OUTPUT_FLUXES}
        self.map_sum: dict[str, Any] | None = None
        self.totals: dict[str, Any] | None = None
        self.pred_sum: dict[str, tuple] = {}  # flux -> (b, n_cells) sums over years, x2
        self.count = 0
        self.next_row = 0

    def add(self, part: TilePartial) -> None:
        if part.r0 != self.next_row:
            raise ValueError(
                f"tile at row {part.r0} merged out of order (expected {self.next_row})"
            )
        for f in OUTPUT_FLUXES:
            self.means[f][part.r0 : part.r1] = part.means[f]
            self.m2s[f][part.r0 : part.r1] = part.m2s[f]
        if self.map_sum is None:
            self.map_sum, self.totals = dict(part.map_sum), dict(part.totals)
        else:
            for f in TRAINED_FLUXES:
                self.map_sum[f] = self.map_sum[f] + part.map_sum[f]
                self.totals[f] = self.totals[f] + part.totals[f]
        for f, (first, second) in part.pred.items():
            if f not in self.pred_sum:
                b = first.shape[0]
                zeros = self.xp.zeros((b, self.n_cells), dtype=self.xp.float64)
                self.pred_sum[f] = (zeros, self.xp.zeros_like(zeros))
            s1, s2 = self.pred_sum[f]
            s0 = part.r0
            while s0 < part.r1:  # rows arrive in row order: each cell's years added in order
                y, c0 = divmod(s0, self.n_cells)
                s_end = min(part.r1, (y + 1) * self.n_cells)
                c1 = c0 + (s_end - s0)
                s1[:, c0:c1] += first[:, s0 - part.r0 : s_end - part.r0]
                s2[:, c0:c1] += second[:, s0 - part.r0 : s_end - part.r0]
                s0 = s_end
        self.count = part.count
        self.next_row = part.r1

    def predictive_rows(self) -> dict[str, np.ndarray]:
        """The fused walk's per-replicate rows ``<F>_pred_replicate_mean`` and ``..._second``
        (``(b, n_cells)`` float32, the time mean of each cell's conditional moments: the years
        added in order from 0 and divided by their count, as
        :func:`srgpu.run.predictive.predictive_batch` computes them), on the host; ``{}``
        without a fused walk."""
        out: dict[str, np.ndarray] = {}
        for f in PREDICTIVE_FLUXES:
            if f in self.pred_sum:
                s1, s2 = self.pred_sum[f]
                out[flux_var(f, "pred_replicate_mean")] = (_to_host(s1) / self.n_years).astype(
                    np.float32
                )
                out[flux_var(f, "pred_replicate_second")] = (_to_host(s2) / self.n_years).astype(
                    np.float32
                )
        return out

    def result(self) -> tuple[dict[str, Moments], dict[str, np.ndarray], dict[str, np.ndarray]]:
        if self.next_row != self.n_cells * self.n_years:
            raise ValueError(f"only rows < {self.next_row} of {self.n_cells * self.n_years} merged")
        maps = {f: _to_host(self.map_sum[f]) / self.n_years for f in TRAINED_FLUXES}
        maps["AR"] = maps["SR"] - maps["HR"]
        tot = {f: _to_host(self.totals[f]) / G_PER_PG for f in TRAINED_FLUXES}
        tot["AR"] = tot["SR"] - tot["HR"]
        moments = {
            f: Moments(count=self.count, mean=_to_host(self.means[f]), m2=_to_host(self.m2s[f]))
            for f in OUTPUT_FLUXES
        }
        return moments, maps, tot


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

    Returns, on the host: per-row moments over the ``b`` replicates for SR, HR and
    AR = SR - HR; per-replicate time-mean maps ``(b, n_cells)``; per-replicate annual totals
    ``(b, n_years)`` in Pg C / yr. See :func:`tile_partial` and :class:`TileReducer`.
    """
    return stream_reducer(
        predict,
        rows,
        weight_m2=weight_m2,
        n_cells=n_cells,
        n_years=n_years,
        tile_rows=tile_rows,
        xp=xp,
    ).result()


def stream_reducer(
    predict: dict[str, Callable[[Any], Any]],
    rows: dict[str, Any],
    *,
    weight_m2: np.ndarray,
    n_cells: int,
    n_years: int,
    tile_rows: int,
    xp: Any,
    predict_moments: dict[str, Callable[[Any], tuple]] | None = None,
) -> TileReducer:
    """:func:`stream_statistics`' tiles merged into a :class:`TileReducer` (its
    :meth:`~TileReducer.result`, and :meth:`~TileReducer.predictive_rows` with
    ``predict_moments``, see :func:`tile_partial`)."""
    w = xp.asarray(np.asarray(weight_m2, dtype=np.float64))
    reducer = TileReducer(n_cells=n_cells, n_years=n_years, xp=xp)
    for r0, r1 in tile_ranges(n_cells * n_years, tile_rows):
        reducer.add(
            tile_partial(
                predict,
                rows,
                r0,
                r1,
                weight_m2=w,
                n_cells=n_cells,
                n_years=n_years,
                xp=xp,
                predict_moments=predict_moments,
            )
        )
    return reducer


def release_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    A batch's scikit-learn trees are many mid-sized allocations freed at once; without a trim,
    glibc's heap fragments and the next batch's trees raise the peak step by step (measured:
    64 replicates in batches of 8 x 500 trees peaked at 2.06 GB without, 1.24 GB with a trim
    after each batch, whose resident set then stays at ~0.5-0.6 GB). The numba grower's forests
    are a few large arrays per forest instead; the trim is kept (it costs nothing) and memory
    stays flat with them too. Those arrays now live in :mod:`srgpu.forest.buffers`' pool,
    which the trim does not touch: a batch's blocks are kept for the next batch (no fresh pages
    to fault) and dropped when ``run_ensemble`` ends. Measured with the pool
    (``benchmarks/bench_memory.py``, docs/benchmarks.md "Scaling"): 8-256 replicates of
    500-tree forests in batches of 8, 1949-2008 MiB with the default predictive moments (1187
    MiB for one batch without them).
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@dataclass
class CompiledBatch:
    """A batch's forests compiled for inference, and their validation (the training stage)."""

    spec: BatchSpec
    compiled: dict[str, Any]  # flux -> CompiledForests of the engine
    validation: np.ndarray  # (b, 2 fluxes, 3 metrics)
    timing: dict[str, float] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # see BatchResult.extra
    weights: dict[str, Any] = field(default_factory=dict)  # see BatchResult.weights
    # flux -> srgpu.forest.fused.FusedForests: the grid's predictive moments come from the
    # inference walk itself (numba engine with config.predictive != "none"; empty otherwise)
    fused: dict[str, Any] = field(default_factory=dict)

    def predict_moments(self) -> dict[str, Callable[[Any], tuple]] | None:
        """The fused walks' ``predict_moments`` by flux, or ``None`` without them."""
        if not self.fused:
            return None
        return {f: self.fused[f].predict_moments for f in self.fused}

    def with_predictive_rows(self, reducer: TileReducer) -> dict[str, np.ndarray]:
        """:attr:`extra` with the fused walk's ``pred_replicate_*`` rows (first, in the order
        :func:`srgpu.run.predictive.predictive_batch` writes them)."""
        return {**reducer.predictive_rows(), **self.extra}


def train_and_compile(
    spec: BatchSpec,
    inputs: Inputs,
    config: EnsembleConfig,
    *,
    engine_name: str = "auto",
    device: str = "cpu",
) -> CompiledBatch:
    """Train every forest of the batch, validate it on its held-out records, and convert each
    flux's forests into the inference engine's format once."""
    from srgpu.forest.engines import get_engine

    t0 = time.perf_counter()
    trained = train_batch(spec, inputs, config)
    t1 = time.perf_counter()
    engine = get_engine(engine_name, device=device)
    compiled = {f: engine.compile([forest for forest, _ in trained[f]]) for f in TRAINED_FLUXES}
    validation = np.empty((spec.size, len(TRAINED_FLUXES), len(METRICS)))
    for j, flux in enumerate(TRAINED_FLUXES):
        data = inputs.fluxes[flux]
        by_engine = getattr(compiled[flux], "predict_forest", None)  # same bits, no objects
        for i, (forest, split) in enumerate(trained[flux]):
            predict = functools.partial(by_engine, i) if by_engine else None
            m = validate(forest, data.X[split.test], data.y[split.test], predict=predict)
            validation[i, j] = [m[k] for k in METRICS]
    t_pred = time.perf_counter()
    extra, weights, fused = {}, {}, {}
    if config.predictive != "none":
        pooled_over = config.n_replicates if config.predictive == "quantiles" else None
        from srgpu.forest.fused import fuse
        from srgpu.forest.numba_engine import NumbaCompiledForests

        can_fuse = all(isinstance(compiled[f], NumbaCompiledForests) for f in PREDICTIVE_FLUXES)
        can_fuse = can_fuse and config.predictive_membership != "oob"  # moments walked apart
        leaf_moments: dict[str, list] | None = {} if can_fuse else None
        extra, weights = predictive_batch(
            trained, inputs, pooled_over=pooled_over, leaf_moments=leaf_moments, config=config,
            replicates=spec.replicates,
        )  # fmt: skip
        if leaf_moments is not None:
            fused = {f: fuse(compiled[f], leaf_moments[f]) for f in PREDICTIVE_FLUXES}
    t_pred = time.perf_counter() - t_pred
    del trained  # the grown (or scikit-learn) trees: the engine holds its own compact copy
    release_memory()
    t2 = time.perf_counter()
    return CompiledBatch(
        spec=spec,
        compiled=compiled,
        validation=validation,
        # validate_s includes compiling; predictive_s: the predictive distribution's pass
        timing={"train_s": t1 - t0, "validate_s": t2 - t1 - t_pred, "predictive_s": t_pred},
        extra=extra,
        weights=weights,
        fused=fused,
    )


def predict_tile(batch: CompiledBatch, inputs: Inputs, r0: int, r1: int) -> TilePartial:
    """A Dask task: rows ``r0 .. r1-1`` of a CPU batch (numpy arrays, picklable result)."""
    import array_api_compat.numpy as xp

    return tile_partial(
        {f: batch.compiled[f].predict for f in TRAINED_FLUXES},
        inputs.grid_X,
        r0,
        r1,
        weight_m2=np.asarray(inputs.weight_m2, dtype=np.float64),
        n_cells=inputs.n_cells,
        n_years=inputs.n_years,
        xp=xp,
        predict_moments=batch.predict_moments(),
    )


def assemble_batch(batch: CompiledBatch, parts: list[TilePartial], inputs: Inputs) -> BatchResult:
    """A Dask task: merge a batch's tiles in row order into its :class:`BatchResult`."""
    import array_api_compat.numpy as xp

    reducer = TileReducer(n_cells=inputs.n_cells, n_years=inputs.n_years, xp=xp)
    for part in sorted(parts, key=lambda p: p.r0):
        reducer.add(part)
    moments, maps, tot = reducer.result()
    return BatchResult(
        spec=batch.spec,
        moments=moments,
        maps=maps,
        totals=tot,
        validation=batch.validation,
        timing=dict(batch.timing),
        extra=batch.with_predictive_rows(reducer),
        weights=batch.weights,
    )


def run_batch(
    spec: BatchSpec,
    inputs: Inputs,
    config: EnsembleConfig,
    *,
    engine_name: str = "auto",
    device: str = "cpu",
    xp: Any = None,
    row_plans: Any = None,
) -> BatchResult:
    """Train, validate and predict one batch of replicates in this process (tiles streamed
    here; :mod:`srgpu.run.ensemble` runs the same stages as separate Dask tasks on CPU clusters).

    ``xp`` is the array namespace of the streaming statistics (default: numpy on CPU, cupy on
    GPU, through array-api-compat); only reduced results come back to the host.
    ``row_plans``: a :class:`~srgpu.forest.row_plans.RowPlans` shared by the batches of a run
    (the numba engine's walk order of the grid rows, computed once; the same results).
    """
    from srgpu.forest.numba_engine import NumbaCompiledForests

    batch = train_and_compile(spec, inputs, config, engine_name=engine_name, device=device)
    t0 = time.perf_counter()
    xp = xp if xp is not None else array_namespace_for(device)
    if device == "gpu":  # rows go to the device once per batch and stay there
        rows = {f: xp.asarray(inputs.grid_X[f]) for f in TRAINED_FLUXES}
    else:
        rows = inputs.grid_X
    predict = {f: batch.compiled[f].predict for f in TRAINED_FLUXES}
    if row_plans is not None:
        for f in TRAINED_FLUXES:
            if isinstance(batch.compiled[f], NumbaCompiledForests):
                predict[f] = functools.partial(batch.compiled[f].predict, plans=row_plans)
    reducer = stream_reducer(
        predict,
        rows,
        weight_m2=inputs.weight_m2,
        n_cells=inputs.n_cells,
        n_years=inputs.n_years,
        tile_rows=config.tile_rows,
        xp=xp,
        predict_moments=batch.predict_moments(),
    )
    moments, maps, tot = reducer.result()
    return BatchResult(
        spec=spec,
        moments=moments,
        maps=maps,
        totals=tot,
        validation=batch.validation,
        timing={**batch.timing, "infer_s": time.perf_counter() - t0},
        extra=batch.with_predictive_rows(reducer),
        weights=batch.weights,
    )
