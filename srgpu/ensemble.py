"""Orchestration of an ensemble run: inputs -> store -> batches (serial or on Dask) -> summary.

The runner only wires stages: :func:`srgpu.inputs.prepare_inputs` prepares everything once,
:class:`srgpu.store.EnsembleStore` creates or resumes the output, :func:`srgpu.batch.run_batch`
computes one batch of replicates (a pure function: the same on any worker), and the batches'
per-row moments are merged here strictly in batch order, so that serial, threaded and
distributed runs (any number of workers, lost workers retried by Dask) end with identical
numbers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from srgpu.batch import OUTPUT_FLUXES, BatchResult, BatchSpec, batch_specs, run_batch
from srgpu.config import EnsembleConfig
from srgpu.inputs import Inputs, prepare_inputs
from srgpu.stats import merge_moments
from srgpu.store import EnsembleStore

ProgressCallback = Callable[[BatchResult, int, int], None]


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
    for spec in todo:
        yield run_batch(spec, inputs, config, engine_name=engine, device=device)


def _distributed(client, todo, inputs, config, engine: str, device: str):
    from distributed import as_completed

    inputs_f = client.scatter(inputs, broadcast=True)
    futures = [
        client.submit(
            run_batch,
            spec,
            inputs_f,
            config,
            engine_name=engine,
            device=device,
            key=f"srgpu-batch-{config.hash()[:8]}-{spec.index}",
            pure=False,
        )
        for spec in todo
    ]
    for fut in as_completed(futures):
        res = fut.result()
        fut.release()
        yield res


def run_ensemble(
    config: EnsembleConfig,
    *,
    out: str | Path,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    on_batch: ProgressCallback | None = None,
    inputs: Inputs | None = None,
    max_batches: int | None = None,
) -> dict:
    """Run (or resume) the ensemble described by ``config`` into ``out``; return the summary.

    ``workers`` starts a local Dask cluster with that many workers, ``scheduler`` joins an
    existing one; neither means in-process. ``max_batches`` stops after that many new batches
    without finalising (for tests of resume); the returned dict then has only progress keys.
    """
    from srgpu.backend import resolve_backend
    from srgpu.cluster import make_client

    backend = resolve_backend(config.backend)
    if inputs is None:
        inputs = prepare_inputs(config)
    store = EnsembleStore.open(out, config=config, inputs=inputs, overwrite=overwrite)
    if store.complete:
        return json.loads(store.summary_path.read_text())

    specs = batch_specs(config.n_replicates, config.batch_size)
    first = store.batches_done
    todo = specs[first:]
    if max_batches is not None:
        todo = todo[:max_batches]
    merged = store.read_moments()
    with make_client(workers=workers, scheduler=scheduler, backend=backend) as client:
        if client is None:
            stream = _serial(todo, inputs, config, config.engine, backend.device)
        else:
            stream = _distributed(client, todo, inputs, config, config.engine, backend.device)
        for res in _ordered(stream, first):
            merged = {
                f: merge_moments(None if merged is None else merged[f], res.moments[f])
                for f in OUTPUT_FLUXES
            }
            store.write_batch(res, merged)
            if on_batch is not None:
                on_batch(res, res.spec.stop, config.n_replicates)
    if store.batches_done < len(specs):
        return {"complete": False, "batches_done": store.batches_done, "batches": len(specs)}
    return store.finalize(config=config, inputs=inputs)
