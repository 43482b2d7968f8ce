"""An output directory opened again: create the store, resume it, extend it or refuse it
(:func:`create_or_resume`) and check the progress record against the arrays (:func:`verify`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import zarr

from srgpu import schema as S
from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import StoreError
from srgpu.run.batch import BatchSpec, batch_specs
from srgpu.run.extend import prepare_extension, sync_config_attrs
from srgpu.run.guard import check_fingerprints, input_fingerprints, written_by_srgpu
from srgpu.run.progress import read_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import error_line, store_array, store_group
from srgpu.run.store_layout import create_store, row_arrays
from srgpu.schema import (
    CALIBRATION,
    CALIBRATION_METRICS,
    METRICS,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    REPLICATE_DONE,
    TRAINED_FLUXES,
    VALIDATION,
    flux_var,
)


def create_or_resume(
    store: RunDir, *, config: EnsembleConfig, inputs: Inputs, overwrite: bool
) -> None:
    """Create the store for ``config`` in ``store.out``, or reopen a compatible one to resume
    it, or extend a run of fewer replicates; refuse anything else (see
    :meth:`~srgpu.run.store.EnsembleStore.open`)."""
    store.inputs_sha = input_fingerprints(config)
    present = [p for p in store._own_paths() if p.exists() or p.is_symlink()]
    if present and overwrite:
        store.clear()
        present = []
    if not present:
        create_store(store, config, inputs)
        return
    _refuse_links(store)
    progress = read_progress(store)
    if progress is None:
        foreign = [p for p in present if not written_by_srgpu(p)]
        if foreign:
            raise StoreError(
                f"{foreign[0]}: exists and was not written by srgpu; srgpu never deletes "
                "or overwrites it: move it away, or use another --out"
            )
        raise StoreError(
            f"{store.out}: holds an srgpu run without its progress record "
            f"({', '.join(p.name for p in present)}); use --overwrite to replace it"
        )
    if progress["config_hash"] != config.hash():
        store.legacy_hash = _legacy_hash(store, progress["config_hash"], config)
    if progress["config_hash"] not in (config.hash(), store.legacy_hash):
        from srgpu.config_diff import describe_config_diff, replicates_change, stored_config

        old = stored_config(store.path)
        counts = None if old is None else replicates_change(old, config)
        if counts is not None and counts[1] > counts[0] and config.predictive == "quantiles":
            raise StoreError(
                f"{store.path}: holds a run of {counts[0]} replicates with predictive = "
                f"'quantiles', which cannot be extended to {counts[1]} (its pooled weights "
                "after the full batches are not kept): use --overwrite to compute the run "
                "again, or another --out"
            )
        if counts is not None and counts[1] > counts[0]:
            check_fingerprints(progress["inputs"], store.inputs_sha, out=store.out)
            prepare_extension(store, progress, old=old, config=config, inputs=inputs)
            store.extended_from = counts[0]
            return
        if counts is not None:
            raise StoreError(
                f"{store.path}: holds a run of {counts[0]} replicates; --replicates "
                f"{counts[1]} is fewer (a run can only be extended): use --overwrite to "
                "replace it, or another --out"
            )
        changed = describe_config_diff(old, config) if old is not None else ""
        if not changed:
            changed = f"hash {progress['config_hash'][:12]} != {config.hash()[:12]}"
        raise StoreError(
            f"{store.path}: was written with a different config ({changed}); "
            "use --overwrite to replace it, or another --out"
        )
    check_fingerprints(progress["inputs"], store.inputs_sha, out=store.out)
    if not progress["created"]:
        store.clear()  # a run killed while creating the store: create it again
        create_store(store, config, inputs)
        return
    store.resumed_from = progress["batches_done"]
    sync_config_attrs(store, config)  # an extension killed before it renamed its config


def _legacy_hash(store: RunDir, recorded: str, config: EnsembleConfig) -> str | None:
    """``recorded`` when the store's config is in the spelling before the ``[train]`` and
    ``[predict]`` tables (``backend``, ``train_on``, ``engine``, ``[forest] trainer``) and,
    translated (:func:`srgpu.config.translate_legacy`), equals ``config``: the same run,
    whose recorded hash is that of the old spelling. ``None`` otherwise."""
    import tomllib

    from srgpu.config import translate_legacy
    from srgpu.config_diff import stored_config_text

    text = stored_config_text(store.path)
    try:
        data = tomllib.loads(text) if text else {}
        found = translate_legacy(data)[1]
        same = bool(found) and EnsembleConfig.from_dict(data).hash() == config.hash()
    except Exception:  # noqa: BLE001 - unreadable: the hash check below speaks
        return None
    return recorded if same else None


def _refuse_links(store: RunDir) -> None:
    """No symbolic link in srgpu's places: a resume would write through it."""
    for p in store._own_paths():
        if p.is_symlink():
            raise StoreError(
                f"{p}: is a symbolic link; srgpu does not write through links: remove it "
                "(--overwrite removes the link, not its target)"
            )
    for top in (store.path, store.work):
        if not top.is_dir():
            continue
        for root, dirs, files in os.walk(top):
            for name in (*dirs, *files):
                q = Path(root) / name
                if q.is_symlink():
                    raise StoreError(
                        f"{q}: a symbolic link inside the store; srgpu does not write "
                        "through links: use --overwrite to start again"
                    )


def verify(store: RunDir, config: EnsembleConfig, inputs: Inputs | None = None) -> dict[int, str]:
    """Check ``progress.json`` against the arrays: ``{batch index: problem}`` for every
    finished batch whose row chunks are missing, damaged (checksum) or not finite.

    Structural damage (impossible progress fields, a missing array or damaged metadata)
    raises :class:`StoreError`. Damaged rows are returned, not raised: they are pure
    functions of the seed and can be recomputed (:meth:`~srgpu.run.store.EnsembleStore.write_rows`).
    """
    p = read_progress(store)
    if p is None:
        raise StoreError(f"{store.progress_path}: missing; use --overwrite to start again")
    specs = batch_specs(config.n_replicates, config.batch_size)
    nb = p["batches_done"]
    expect = specs[nb - 1].stop if 0 < nb <= len(specs) else 0
    problem = None
    if nb > len(specs):
        problem = f"batches_done {nb} > the run's {len(specs)} batches"
    elif p["replicates_done"] != expect:
        problem = f"replicates_done {p['replicates_done']} != {expect} after {nb} batches"
    elif (p["moments_slot"] is None) != (nb == 0):
        problem = f"moments_slot {p['moments_slot']!r} after {nb} batches"
    elif p["complete"] and nb != len(specs):
        problem = f"complete with {nb} of {len(specs)} batches done"
    if problem:
        raise StoreError(
            f"{store.progress_path}: does not match the run ({problem}); use --overwrite to "
            "start the run again"
        )
    grp = store_group(store.path)
    shapes = None
    if inputs is not None:  # the shape of one replicate's row of each array
        shapes = {flux_var(f, "replicate_map"): (inputs.n_cells,) for f in OUTPUT_FLUXES}
        shapes.update({flux_var(f, "replicate_total"): (inputs.n_years,) for f in OUTPUT_FLUXES})
        shapes.update({VALIDATION: (len(TRAINED_FLUXES), len(METRICS)), REPLICATE_DONE: ()})
        for f in PREDICTIVE_FLUXES:
            for kind in ("pred_replicate_mean", "pred_replicate_second"):
                shapes[flux_var(f, kind)] = (inputs.n_cells,)
        shapes[CALIBRATION] = (len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS))
        n_sites = sum(inputs.fluxes[f].y.size for f in TRAINED_FLUXES)
        shapes[S.SITE_FOREST_MEAN] = shapes[S.SITE_HELDOUT] = (n_sites,)
    damaged: dict[int, str] = {}
    for name in row_arrays(config):
        arr = store_array(grp, store.path, name)
        want = (config.n_replicates, *(shapes or {}).get(name, arr.shape[1:]))
        chunk = min(config.batch_size, config.n_replicates)
        if tuple(arr.shape) != want or arr.chunks[0] != chunk:
            raise StoreError(
                f"{store.path}/{name}: shape {tuple(arr.shape)} in chunks of "
                f"{arr.chunks[0]} replicates, the run needs {want} in chunks of {chunk}; "
                "use --overwrite to start the run again"
            )
        for spec in specs[:nb]:
            if spec.index in damaged:
                continue
            bad = _check_rows(store, arr, name, spec)
            if bad:
                damaged[spec.index] = bad
    return damaged


def _check_rows(store: RunDir, arr: zarr.Array, name: str, spec: BatchSpec) -> str | None:
    where = (
        f"{store.path.name}/{name} chunk {_chunk_key(arr.ndim, spec.index)} "
        f"(replicates {spec.start}-{spec.stop - 1})"
    )
    try:
        rows = arr[spec.start : spec.stop]
    except Exception as exc:  # noqa: BLE001 - checksum mismatch, truncated chunk
        return f"{where} is damaged ({error_line(exc)})"
    ok = (rows == 1).all() if name == REPLICATE_DONE else np.isfinite(rows).all()
    return None if ok else f"{where} is missing or holds missing values"


def _chunk_key(ndim: int, index: int) -> str:
    return "c/" + "/".join([str(index)] + ["0"] * (ndim - 1))
