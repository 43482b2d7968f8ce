"""``OUT/work.zarr``: the merged per-row moments of the finished batches and, with ``predictive
= "quantiles"``, the pooled predictive weights, each in two slots ``a``/``b`` that batches
alternate between (see :mod:`srgpu.run.store`); created NaN, read back checked (checksums and
finiteness)."""

from __future__ import annotations

import numpy as np
import zarr

from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import StoreError
from srgpu.run.guard import WORK_MARK
from srgpu.run.progress import read_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import checksum_codecs, error_line, store_array, store_group
from srgpu.run.stats import Moments
from srgpu.schema import OUTPUT_FLUXES, PREDICTIVE_FLUXES


def weight_names(slot: str, flux: str) -> tuple[str, str, str]:
    """The work store's arrays of the pooled predictive weights of ``flux`` in ``slot``
    (``predictive = "quantiles"``): weights (cells, records), totals and counts (cells)."""
    return tuple(f"{slot}_{flux}_pred_{part}" for part in ("weights", "totals", "counts"))


def weight_chunk_cells(n_cells: int, n_records: int) -> int:
    """Cells per chunk of the pooled weights in the work store (about 16 MiB a chunk)."""
    return max(1, min(n_cells, (16 << 20) // (8 * max(n_records, 1))))


def create_work(store: RunDir, *, config: EnsembleConfig, inputs: Inputs) -> zarr.Group:
    """Create the work store: both moments slots and, with ``predictive = "quantiles"``,
    both slots of the pooled weights; every array NaN (raises ``OSError``)."""
    n_rows = inputs.n_rows
    grp = zarr.open_group(store.work, mode="w", zarr_format=3)
    for slot in ("a", "b"):
        for f in OUTPUT_FLUXES:
            for part in ("mean", "m2"):
                # NaN fill: a deleted chunk reads as missing, never as zeros
                grp.create_array(
                    f"{slot}_{f}_{part}",
                    shape=(n_rows,),
                    chunks=(min(n_rows, 1 << 20),),
                    dtype="float64",
                    fill_value=np.nan,
                    compressors=checksum_codecs(),
                )
        if config.predictive == "quantiles":  # the pooled weights (NaN: missing)
            for f in PREDICTIVE_FLUXES:
                n_rec = int(inputs.fluxes[f].y.size)
                chunk = weight_chunk_cells(inputs.n_cells, n_rec)
                w_name, t_name, c_name = weight_names(slot, f)
                grp.create_array(
                    w_name,
                    shape=(inputs.n_cells, n_rec),
                    chunks=(chunk, n_rec),
                    dtype="float64",
                    fill_value=np.nan,
                    compressors=checksum_codecs(),
                )
                for name in (t_name, c_name):
                    grp.create_array(
                        name,
                        shape=(inputs.n_cells,),
                        chunks=(inputs.n_cells,),
                        dtype="float64",
                        fill_value=np.nan,
                        compressors=checksum_codecs(),
                    )
    grp.attrs[WORK_MARK] = 1
    return grp


def read_moments(store: RunDir) -> dict[str, Moments] | None:
    """The merged moments of the finished batches (checksums and finiteness checked)."""
    p = read_progress(store)
    if p is None or p["moments_slot"] is None:
        return None
    if store.work.is_symlink() or not store.work.is_dir():
        raise StoreError(
            f"{store.work}: missing (or not a directory) while {p['batches_done']} batches "
            "are recorded; the merged moments cannot be rebuilt from the rows: use "
            "--overwrite to start the run again"
        )
    grp = store_group(store.work)
    slot, count = p["moments_slot"], int(p["replicates_done"])
    out: dict[str, Moments] = {}
    for f in OUTPUT_FLUXES:
        parts = {}
        for part in ("mean", "m2"):
            name = f"{slot}_{f}_{part}"
            arr = store_array(grp, store.work, name)
            values = np.empty(arr.shape, dtype=np.float64)
            step = arr.chunks[0]
            for i, r0 in enumerate(range(0, arr.shape[0], step)):
                try:
                    values[r0 : r0 + step] = arr[r0 : r0 + step]
                except Exception as exc:  # noqa: BLE001 - checksum, truncation
                    bad = f"is damaged ({error_line(exc)})"
                else:
                    ok = np.isfinite(values[r0 : r0 + step]).all()
                    bad = None if ok else "is missing or holds missing values"
                if bad:
                    raise StoreError(
                        f"{store.work}/{name} chunk c/{i} {bad}; the merged moments cannot "
                        "be rebuilt from the rows: use --overwrite to start the run again"
                    )
            parts[part] = values
        out[f] = Moments(count=count, mean=parts["mean"], m2=parts["m2"])
    return out


def checked_rows(store: RunDir, grp: zarr.Group, name: str, r0: int, r1: int) -> np.ndarray:
    """Rows ``r0 .. r1-1`` of work array ``name``, float64; a damaged (checksum) or missing
    (NaN) chunk is a :class:`StoreError`."""
    arr = store_array(grp, store.work, name)
    try:
        values = np.asarray(arr[r0:r1], dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - checksum, truncation
        bad = f"is damaged ({error_line(exc)})"
    else:
        bad = None if np.isfinite(values).all() else "is missing or holds missing values"
    if bad:
        raise StoreError(
            f"{store.work}/{name} rows {r0}-{r1 - 1} {bad}; the pooled weights cannot be "
            "rebuilt from the rows: use --overwrite to start the run again"
        )
    return values


def read_weights(store: RunDir) -> dict | None:
    """The pooled predictive weights of the finished batches (``predictive =
    "quantiles"``), per flux a :class:`~srgpu.forest.predictive.WeightAccumulator`
    (checksums and finiteness checked); ``None`` before the first batch."""
    from srgpu.forest.predictive import WeightAccumulator

    p = read_progress(store)
    if p is None or p["moments_slot"] is None:
        return None
    grp = store_group(store.work)
    out = {}
    for f in PREDICTIVE_FLUXES:
        w_name, t_name, c_name = weight_names(p["moments_slot"], f)
        arr = store_array(grp, store.work, w_name)
        weights = np.empty(arr.shape, dtype=np.float64)
        step = arr.chunks[0]
        for r0 in range(0, arr.shape[0], step):
            r1 = min(r0 + step, arr.shape[0])
            weights[r0:r1] = checked_rows(store, grp, w_name, r0, r1)
        n = arr.shape[0]
        out[f] = WeightAccumulator(
            weights=weights,
            totals=checked_rows(store, grp, t_name, 0, n),
            counts=checked_rows(store, grp, c_name, 0, n),
        )
    return out


def write_slot(store: RunDir, slot: str, merged: dict[str, Moments], pooled: dict | None) -> None:
    """Write the merged moments of the finished batches and (``predictive = "quantiles"``)
    their pooled weights into ``slot`` (raises ``OSError``)."""
    grp = zarr.open_group(store.work, mode="r+")
    for f in OUTPUT_FLUXES:
        grp[f"{slot}_{f}_mean"][:] = np.asarray(merged[f].mean)
        grp[f"{slot}_{f}_m2"][:] = np.asarray(merged[f].m2)
    for f, acc in (pooled or {}).items():
        for name, values in zip(
            weight_names(slot, f), (acc.weights, acc.totals, acc.counts), strict=True
        ):
            grp[name][:] = values
