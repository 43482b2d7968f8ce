"""Extending a run to more replicates (``srgpu ensemble`` again with a larger ``--replicates``).

Replicates are pure functions of their seed and the per-row moments are merged batch by batch
in batch order, so a run of ``n`` replicates extended to ``m`` ends bit for bit where a fresh
run of ``m`` ends **if** it continues from the merged moments of the same batches the fresh run
merged: the first ``k = n // batch_size`` *full* batches. A last batch smaller than
``batch_size`` (``n`` not a multiple of it) was merged as a partial batch, which the fresh run
of ``m`` never does; it is computed again as part of a full batch.

So the finalisation keeps the merged moments after those ``k`` full batches in the store's
group ``ensemble.zarr/extension`` (``{flux}_mean``, ``{flux}_m2`` per prediction row,
float64, with the count in its attributes): the moments alternate between two slots of the
work store, so after the last batch one slot holds the state after all batches and the other
the state one batch earlier. An extension then

1. removes the stale ``summary.json`` and, for a finished run, creates the work store again
   with the kept moments in slot ``a`` (an unfinished run keeps its own slots);
2. resizes every per-replicate array and the ``replicate`` coordinate to ``m`` (their chunks
   of ``batch_size`` replicates are unchanged; the rows of batch ``k`` are rewritten whole);
3. records ``k`` finished batches and the new config's hash in ``progress.json`` (atomic: the
   commit point), then renames the config in the store's attributes (a run killed between the
   two has them renamed when it resumes: :func:`sync_config_attrs`).

The run then resumes at batch ``k``. Every count extends bit for bit, for every batch size:
when ``n < batch_size`` no full batch was merged and the run starts again from nothing (the
same bits, all replicates computed again). A run finished before the kept moments existed
(no ``extension`` group) is refused with a one-line error naming ``--overwrite``, and so is a
run with ``predictive = "quantiles"`` (its pooled weights after the full batches are not kept).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import zarr

from srgpu.config import EnsembleConfig
from srgpu.errors import StoreError
from srgpu.run.batch import batch_specs
from srgpu.run.progress import read_progress, write_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import checksum_codecs
from srgpu.run.store_layout import create_store, row_arrays
from srgpu.run.work_store import create_work
from srgpu.schema import OUTPUT_FLUXES

if TYPE_CHECKING:  # pragma: no cover
    from srgpu.data.inputs import Inputs

EXTENSION_GROUP = "extension"
"""The group of ``ensemble.zarr`` holding the merged moments an extension starts from."""


def full_batches(n_replicates: int, batch_size: int) -> int:
    """How many of a run's batches hold ``batch_size`` replicates (all but a smaller last)."""
    return n_replicates // batch_size


def _other(slot: str) -> str:
    return "b" if slot == "a" else "a"


def keep_extension_state(store: RunDir, config: EnsembleConfig) -> None:
    """At finalisation (before the work store is removed): copy the merged moments after the
    run's full batches into ``ensemble.zarr/extension`` (none when no batch was full)."""
    p = read_progress(store)
    n, bs = config.n_replicates, config.batch_size
    k = full_batches(n, bs)
    root = zarr.open_group(store.path, mode="r+", zarr_format=3)
    if EXTENSION_GROUP in root:
        del root[EXTENSION_GROUP]
    if k == 0:
        return
    # after the last batch, its slot holds all batches; the other slot one batch fewer
    slot = p["moments_slot"] if n % bs == 0 else _other(p["moments_slot"])
    work = zarr.open_group(store.work, mode="r", zarr_format=3)
    grp = root.create_group(EXTENSION_GROUP)
    for f in OUTPUT_FLUXES:
        for part in ("mean", "m2"):
            src = work[f"{slot}_{f}_{part}"]
            dst = grp.create_array(
                f"{f}_{part}",
                shape=src.shape,
                chunks=src.chunks,
                dtype="float64",
                fill_value=np.nan,
                compressors=checksum_codecs(),
            )
            dst[:] = src[:]
    grp.attrs.update(
        {
            "replicates": k * bs,
            "batches": k,
            "batch_size": bs,
            "long_name": "merged per-row moments of the first full batches (for extending "
            "the run to more replicates)",
        }
    )


def _read_kept(store: RunDir, *, k: int, bs: int) -> dict[str, np.ndarray]:
    """The kept moments of a finished run, checked (present, readable, finite, right count)."""
    where = store.path / EXTENSION_GROUP
    fix = "use --overwrite to compute the run again with the new count"
    try:
        grp = zarr.open_group(store.path, mode="r", zarr_format=3)[EXTENSION_GROUP]
    except KeyError:
        raise StoreError(
            f"{where}: missing (the run was finished before srgpu kept the merged moments an "
            f"extension starts from); {fix}"
        ) from None
    except Exception as exc:  # noqa: BLE001 - damaged metadata
        raise StoreError(f"{where}: cannot be opened ({type(exc).__name__}); {fix}") from None
    if grp.attrs.get("replicates") != k * bs:
        raise StoreError(
            f"{where}: holds the moments of {grp.attrs.get('replicates')} replicates, the "
            f"extension needs those of {k * bs}; {fix}"
        )
    out = {}
    for f in OUTPUT_FLUXES:
        for part in ("mean", "m2"):
            name = f"{f}_{part}"
            try:
                values = np.asarray(grp[name][:], dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - checksum, truncation, missing
                raise StoreError(f"{where}/{name}: damaged ({type(exc).__name__}); {fix}") from None
            if not np.isfinite(values).all():
                raise StoreError(f"{where}/{name}: holds missing values; {fix}")
            out[name] = values
    return out


def _resize_rows(store: RunDir, config: EnsembleConfig) -> None:
    """Every per-replicate array and the ``replicate`` coordinate to ``config``'s count."""
    n = config.n_replicates
    root = zarr.open_group(store.path, mode="r+", zarr_format=3)
    for name in row_arrays(config):
        arr = root[name]
        arr.resize((n, *arr.shape[1:]))
    rep = root["replicate"]
    rep.resize((n,))
    rep[:] = np.arange(n, dtype=rep.dtype)


def _consolidate(store: RunDir) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(str(store.path), zarr_format=3)


def sync_config_attrs(store: RunDir, config: EnsembleConfig) -> None:
    """Give the store's attributes ``config`` (the one ``progress.json`` records) where they
    hold another: the last step of an extension, redone when a run was killed before it."""
    try:
        if (
            zarr.open_group(store.path, mode="r", zarr_format=3).attrs.get("config_hash")
            == config.hash()
        ):
            return
    except Exception:  # noqa: BLE001 - a missing or damaged store: the store's checks speak
        return
    root = zarr.open_group(store.path, mode="r+", zarr_format=3)
    root.attrs.update({"config": config.to_toml(), "config_hash": config.hash()})
    _consolidate(store)


def prepare_extension(
    store: RunDir,
    progress: dict[str, Any],
    *,
    old: EnsembleConfig,
    config: EnsembleConfig,
    inputs: Inputs,
) -> None:
    """Turn the store of ``old`` (finished or not) into a resumable run of ``config``, which
    differs from it by a larger replicate count only (see the module docstring)."""
    bs = config.batch_size
    n_old = old.n_replicates
    if progress["complete"]:
        k = full_batches(n_old, bs)
        slot = "a"
    else:
        nb = progress["batches_done"]
        specs = batch_specs(n_old, bs)
        partial_last = nb > 0 and specs[nb - 1].size < bs
        k = nb - 1 if partial_last else nb
        slot = progress["moments_slot"]
        if partial_last and k > 0:
            slot = _other(slot)
    if k == 0 or not progress["created"]:
        # no full batch merged: the extended run is a fresh run (every replicate computed)
        store.clear()
        create_store(store, config, inputs)
        return
    kept = _read_kept(store, k=k, bs=bs) if progress["complete"] else None
    try:
        store.summary_path.unlink(missing_ok=True)  # the old run's numbers
        if kept is not None:
            work = create_work(store, config=config, inputs=inputs)
            for name, values in kept.items():
                work[f"{slot}_{name}"][:] = values
        _resize_rows(store, config)
        _consolidate(store)
    except OSError as exc:
        raise StoreError(
            f"{store.out}: preparing the extension failed ({exc.strerror or exc}); "
            f"{store._retry(exc, 'to try again')}"
        ) from None
    write_progress(store, config=config, batches_done=k, slot=slot, count=k * bs)
    sync_config_attrs(store, config)
