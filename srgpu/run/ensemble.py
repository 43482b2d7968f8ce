"""Orchestration of an ensemble run: inputs -> store -> batches (serial or on Dask) -> summary.

The runner only wires stages: :func:`srgpu.data.inputs.prepare_inputs` prepares everything once,
:class:`srgpu.run.store.EnsembleStore` creates or resumes the output,
:func:`srgpu.run.batch.run_batch`
computes one batch of replicates (a pure function: the same on any worker), and the batches'
per-row moments are merged here strictly in batch order, so that serial, threaded and
distributed runs (any number of workers, lost workers retried by Dask) end with identical
numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs, prepare_inputs
from srgpu.errors import StoreError
from srgpu.forest.buffers import release as release_buffers
from srgpu.run.batch import (
    OUTPUT_FLUXES,
    BatchResult,
    BatchSpec,
    assemble_batch,
    batch_specs,
    predict_tile,
    run_batch,
    tile_ranges,
    train_and_compile,
)
from srgpu.run.predictive import add_weights, check_quantiles_memory
from srgpu.run.stats import merge_moments
from srgpu.run.store import EnsembleStore

ProgressCallback = Callable[[BatchResult, int, int], None]
NoticeCallback = Callable[[str], None]


def _ordered(results: Iterator[BatchResult], first: int) -> Iterator[BatchResult]:
    """Yield batch results in batch order, buffering those that finish early."""
    pending: dict[int, BatchResult] = {}
    nxt = first
    for res in results:
        pending[res.spec.index] = res
        while nxt in pending:
            yield pending.pop(nxt)
            nxt += 1


def _serial(
    todo: list[BatchSpec], inputs: Inputs, config: EnsembleConfig, engine: str, device: str
):
    from srgpu.forest.row_plans import RowPlans

    plans = RowPlans()  # the grid's walk order, computed once for all batches
    for spec in todo:
        yield run_batch(spec, inputs, config, engine_name=engine, device=device, row_plans=plans)


def _distributed(client, todo, inputs, config, engine: str, device: str):
    """Batches on a Dask cluster. On CPU every stage is its own task: training (one per batch),
    prediction of each tile of rows (many per batch, any worker), and the merge of a batch's
    tiles in row order; on GPU a batch is one task (its nvForest models stay on that GPU)."""
    from distributed import as_completed

    inputs_f = client.scatter(inputs, broadcast=True)
    tag = f"srgpu-{config.hash()[:8]}"
    futures = []
    for spec in todo:
        if device == "gpu":
            futures.append(
                client.submit(
                    run_batch,
                    spec,
                    inputs_f,
                    config,
                    engine_name=engine,
                    device=device,
                    key=f"{tag}-batch-{spec.index}",
                    pure=False,
                )
            )
            continue
        trained = client.submit(
            train_and_compile,
            spec,
            inputs_f,
            config,
            engine_name=engine,
            device=device,
            key=f"{tag}-train-{spec.index}",
            pure=False,
        )
        parts = [
            client.submit(
                predict_tile,
                trained,
                inputs_f,
                r0,
                r1,
                key=f"{tag}-tile-{spec.index}-{r0}",
                pure=False,
            )
            for r0, r1 in tile_ranges(inputs.n_rows, config.tile_rows)
        ]
        futures.append(
            client.submit(
                assemble_batch,
                trained,
                parts,
                inputs_f,
                key=f"{tag}-batch-{spec.index}",
                pure=False,
            )
        )
    for fut in as_completed(futures):
        res = fut.result()
        fut.release()
        yield res


def _lost_workers(exc: BaseException) -> bool:
    """Whether ``exc`` says Dask lost the workers running a batch (all at once, or too often)."""
    try:
        from distributed import KilledWorker
        from distributed.comm.core import CommClosedError
    except ImportError:  # pragma: no cover - distributed is a core dependency
        return False
    return isinstance(exc, (KilledWorker, CommClosedError))


def _repair(
    store: EnsembleStore,
    damaged: dict[int, str],
    *,
    config: EnsembleConfig,
    inputs: Inputs,
    device: str,
    notice: NoticeCallback,
) -> None:
    """Recompute the rows of finished batches whose chunks are damaged (replicates are pure
    functions of the seed: the same bits come back) and check them again."""
    specs = batch_specs(config.n_replicates, config.batch_size)
    for index, problem in sorted(damaged.items()):
        notice(f"{problem}: recomputing batch {index}")
        store.write_rows(
            run_batch(
                specs[index], inputs, config, engine_name=config.predict.engine, device=device
            )
        )
    still = store.verify(config, inputs)
    if still:
        index, problem = min(still.items())
        raise StoreError(
            f"{problem}; recomputing batch {index} did not repair it: use "
            "--overwrite to start the run again"
        )


def run_ensemble(
    config: EnsembleConfig,
    *,
    out: str | Path,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    on_batch: ProgressCallback | None = None,
    on_notice: NoticeCallback | None = None,
    inputs: Inputs | None = None,
    max_batches: int | None = None,
) -> dict:
    """Run (or resume) the ensemble described by ``config`` into ``out``; return the summary.

    ``workers`` starts a local Dask cluster with that many workers, ``scheduler`` joins an
    existing one; neither means in-process. ``max_batches`` stops after that many new batches
    without finalising (for tests of resume); the returned dict then has only progress keys.
    ``on_notice`` receives one-line notices: a resumed or extended run, a repaired chunk, a
    rebuilt ``summary.json``. A finished ``out`` of the same config but fewer replicates is
    extended (:mod:`srgpu.run.extend`). The output directory is locked for the whole call.
    """
    from srgpu.backend import resolve_predict
    from srgpu.config import check_param

    check_param("workers", workers)  # before anything is written
    check_param("scheduler", scheduler)
    backend = resolve_predict(config.predict)
    if inputs is None:
        inputs = prepare_inputs(config)
    if config.predictive == "quantiles":
        check_quantiles_memory(inputs)  # before anything is written
    store = EnsembleStore.open(out, config=config, inputs=inputs, overwrite=overwrite)
    try:
        return _run(
            store,
            config,
            inputs=inputs,
            device=backend.device,
            backend=backend,
            workers=workers,
            scheduler=scheduler,
            on_batch=on_batch,
            notice=on_notice or (lambda _msg: None),
            max_batches=max_batches,
        )
    finally:
        store.close()
        release_buffers()  # the forests' reused memory (srgpu.forest.buffers), once per run


def _run(
    store: EnsembleStore,
    config: EnsembleConfig,
    *,
    inputs: Inputs,
    device: str,
    backend,
    workers: int | None,
    scheduler: str | None,
    on_batch: ProgressCallback | None,
    notice: NoticeCallback,
    max_batches: int | None,
) -> dict:
    from srgpu.run.cluster import make_client

    specs = batch_specs(config.n_replicates, config.batch_size)
    damaged = store.verify(config, inputs)
    if damaged:
        _repair(store, damaged, config=config, inputs=inputs, device=device, notice=notice)
    if store.complete:
        summary, notes = store.reopen_complete(config=config, inputs=inputs)
        for note in notes:
            notice(note)
        return summary

    first = store.batches_done
    todo = specs[first:]
    if max_batches is not None:
        todo = todo[:max_batches]
    merged = store.read_moments()  # checked: a damaged slot is refused here
    # the pooled weights of the finished batches (read only when batches remain to be added)
    pooled = store.read_weights() if config.predictive == "quantiles" and todo else None
    if store.extended_from is not None:
        from srgpu.results import derived_outputs

        stale = derived_outputs(store.out)
        notice(
            f"extending {store.out} from {store.extended_from} to {config.n_replicates} replicates"
            + (
                f"; {', '.join(stale)} describe the {store.extended_from}-replicate run: run "
                "srgpu explain/report/compare again"
                if stale
                else ""
            )
        )
    elif store.resumed_from is not None:
        notice(f"resuming {store.out}: {first} of {len(specs)} batches already done")
    with make_client(workers=workers, scheduler=scheduler, backend=backend) as client:
        if client is None:
            stream = _serial(todo, inputs, config, config.predict.engine, device)
        else:
            stream = _distributed(client, todo, inputs, config, config.predict.engine, device)
        try:
            for res in _ordered(stream, first):
                merged = {
                    f: merge_moments(None if merged is None else merged[f], res.moments[f])
                    for f in OUTPUT_FLUXES
                }
                if config.predictive == "quantiles":  # the pooled weights, in batch order
                    pooled = add_weights(pooled, res.weights)
                store.write_batch(res, merged, pooled)
                if on_batch is not None:
                    on_batch(res, res.spec.stop, config.n_replicates)
                # the batch's weights are in ``pooled`` now: free them before the next batch is
                # computed (``res`` stays referenced until then), or a quantiles run holds three
                # cells x records arrays instead of two (real grid, 32 replicates: 7.8 GB peak
                # RSS instead of 5.7)
                res.weights.clear()
        except Exception as exc:
            if not _lost_workers(exc):
                raise
            raise StoreError(
                f"{store.out}: the Dask workers running batch(es) were lost "
                f"({type(exc).__name__}); {store.batches_done} of {len(specs)} batches are "
                "kept: rerun the same command to resume"
            ) from None
    if store.batches_done < len(specs):
        return {"complete": False, "batches_done": store.batches_done, "batches": len(specs)}
    damaged = store.verify(config, inputs)  # progress against the arrays, before finalising
    if damaged:
        _repair(store, damaged, config=config, inputs=inputs, device=device, notice=notice)
    return store.finalize(config=config, inputs=inputs)
