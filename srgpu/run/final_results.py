"""The end of a run: the gridded results (mean and standard deviation from the merged moments,
the replicate statistics of every cell from the per-replicate rows, the predictive distribution)
and ``summary.json``; a complete store opened again is checked, its lost attributes restored and
its summary rebuilt."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import StoreError
from srgpu.run.extend import keep_extension_state
from srgpu.run.predictive import pooled_order_statistics, pooled_predictive
from srgpu.run.progress import read_progress, write_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import (
    atomic_write_text,
    checksum_codecs,
    dumps_strict,
    error_line,
    store_array,
    store_group,
    strict_json,
)
from srgpu.run.stats import moments_sd, replicate_summary
from srgpu.run.store_layout import cf_coordinate_attrs
from srgpu.run.work_store import checked_rows, read_moments, weight_names
from srgpu.schema import (
    AR_SR_RATIO,
    CELL_AREA,
    FLUX_KINDS,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    PREDICTIVE_ORDER_KINDS,
    REPLICATE_STATS,
    flux_attrs,
    flux_var,
    gridded_attrs,
)

FINAL_READ_VALUES = 1 << 24
"""The final statistics read the per-replicate rows in blocks of whole cells: a multiple of
``cell_chunk`` cells of at most this many values (64 MiB as float32), or one ``cell_chunk``
where that is more. A row chunk holds every cell of a batch's replicates, so a short run reads
(and decompresses) each chunk once instead of once per ``cell_chunk`` cells; a 2000-replicate
run reads ``cell_chunk`` cells at a time as before. They compute in blocks of ``cell_chunk``
cells either way."""


def final_read_cells(*, n_replicates: int, cell_chunk: int) -> int:
    """Cells per read of the final statistics (see :data:`FINAL_READ_VALUES`)."""
    return max(1, FINAL_READ_VALUES // (max(n_replicates, 1) * cell_chunk)) * cell_chunk


def final_attributes(
    *, predictive: bool = False, quantiles: bool = False
) -> dict[str, dict[str, str]]:
    """The attributes of every gridded result written at finalisation, by variable name.

    One table (from :mod:`srgpu.schema`), used to write them and to verify (and repair) them
    when a complete store is opened again: a finalisation killed between an array's creation
    and its attributes cannot leave a variable without units or long name.
    """
    out: dict[str, dict[str, str]] = {}
    for f in OUTPUT_FLUXES:
        out[flux_var(f, "mean")] = gridded_attrs(flux_attrs(f, "mean"))
        out[flux_var(f, "sd")] = gridded_attrs(flux_attrs(f, "sd"))
        # the CF uncertainty link (ilamb3 needs ilamb_reference's form instead)
        out[flux_var(f, "time_mean")] = {
            **gridded_attrs(flux_attrs(f, "time_mean")),
            "ancillary_variables": flux_var(f, "sd_map"),
        }
        for kind in REPLICATE_STATS.values():
            out[flux_var(f, kind)] = gridded_attrs(flux_attrs(f, kind), kind=kind)
    out[AR_SR_RATIO] = {"units": "1", "long_name": "AR / SR", "cell_measures": f"area: {CELL_AREA}"}
    if predictive:
        for f in PREDICTIVE_FLUXES:
            for kind in ("pred_mean", "pred_sd"):
                out[flux_var(f, kind)] = gridded_attrs(flux_attrs(f, kind))
    if quantiles:  # predictive = "quantiles": the pooled distribution's order statistics
        for f in PREDICTIVE_FLUXES:
            for kind in PREDICTIVE_ORDER_KINDS:
                out[flux_var(f, kind)] = gridded_attrs(flux_attrs(f, kind))
    return out


def write_final_results(
    store: RunDir, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int
) -> dict:
    """Write the gridded results and ``summary.json``, mark the run complete and remove the
    work store; return the summary (see :meth:`~srgpu.run.store.EnsembleStore.finalize`)."""
    moments = read_moments(store)
    if moments is None:
        raise StoreError(f"{store.path}: no finished batch to summarise")
    ds = xr.open_zarr(store.path, consolidated=False, zarr_format=3)
    grp = store_group(store.path)  # the row arrays, read without dask
    nlat, nlon = ds.sizes["lat"], ds.sizes["lon"]
    ilat, ilon = inputs.cell_ilat, inputs.cell_ilon
    n_years, n_cells = inputs.n_years, inputs.n_cells

    def grid2d(values: np.ndarray) -> np.ndarray:
        out = np.full((nlat, nlon), np.nan)
        out[ilat, ilon] = values
        return out

    def grid3d(values: np.ndarray) -> np.ndarray:
        out = np.full((n_years, nlat, nlon), np.nan)
        out[:, ilat, ilon] = values.reshape(n_years, n_cells)
        return out

    predictive = config.predictive != "none"
    quantiles = config.predictive == "quantiles"
    attrs = final_attributes(predictive=predictive, quantiles=quantiles)
    final = xr.Dataset(coords={"year": ds["year"], "lat": ds["lat"], "lon": ds["lon"]})
    cell_stats: dict[str, dict[str, np.ndarray]] = {}
    step = final_read_cells(n_replicates=ds.sizes["replicate"], cell_chunk=cell_chunk)

    def blocks(arr: zarr.Array):
        """``(c0, c1, rows)``: ``arr[:, c0:c1]`` by ``cell_chunk`` cells, read ``step``
        cells at a time."""
        for r0 in range(0, n_cells, step):
            raw = arr[:, r0 : min(r0 + step, n_cells)]
            for c0 in range(r0, min(r0 + step, n_cells), cell_chunk):
                c1 = min(c0 + cell_chunk, n_cells)
                yield c0, c1, raw[:, c0 - r0 : c1 - r0]

    for f in OUTPUT_FLUXES:
        m = moments[f]
        final[flux_var(f, "mean")] = (FLUX_KINDS["mean"].dims, grid3d(np.asarray(m.mean)))
        sd = np.asarray(moments_sd(m, ddof=1)) if m.count > 1 else np.full(m.mean.shape, np.nan)
        final[flux_var(f, "sd")] = (FLUX_KINDS["sd"].dims, grid3d(sd))
        per_cell = {k: np.empty(n_cells) for k in ("mean", *REPLICATE_STATS)}
        maps = store_array(grp, store.path, flux_var(f, "replicate_map"))
        for c0, c1, rows in blocks(maps):
            block = np.asarray(rows, dtype=np.float64)
            s = replicate_summary(block, axis=0)
            for k in per_cell:
                per_cell[k][c0:c1] = np.asarray(s[k])
        cell_stats[f] = per_cell
        final[flux_var(f, "time_mean")] = (("lat", "lon"), grid2d(per_cell["mean"]))
        for stat, kind in REPLICATE_STATS.items():
            final[flux_var(f, kind)] = (FLUX_KINDS[kind].dims, grid2d(per_cell[stat]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = cell_stats["AR"]["mean"] / cell_stats["SR"]["mean"]
    final[AR_SR_RATIO] = (("lat", "lon"), grid2d(ratio))
    if predictive:  # the equal mixture over replicates (and years) of each cell
        for f in PREDICTIVE_FLUXES:
            first, second = (
                store_array(grp, store.path, flux_var(f, "pred_replicate_mean")),
                store_array(grp, store.path, flux_var(f, "pred_replicate_second")),
            )
            pm, psd = np.empty(n_cells), np.empty(n_cells)
            for (c0, c1, a), (_, _, b) in zip(blocks(first), blocks(second), strict=True):
                pm[c0:c1], psd[c0:c1] = pooled_predictive(a, b)
            final[flux_var(f, "pred_mean")] = (("lat", "lon"), grid2d(pm))
            final[flux_var(f, "pred_sd")] = (("lat", "lon"), grid2d(psd))
    if quantiles:  # exact order statistics of the pooled weights
        for f, stats in _pooled_statistics(store, inputs).items():
            for kind in PREDICTIVE_ORDER_KINDS:
                final[flux_var(f, kind)] = (("lat", "lon"), grid2d(stats[kind]))
    for name in final.data_vars:
        final[name].attrs.update(attrs[name])
    final.attrs.update(ds.attrs)  # appending rewrites the root attributes
    final = cf_coordinate_attrs(final)  # and the coordinates
    existing = set(ds.variables)
    encoding = {
        name: {"compressors": checksum_codecs()} for name in final.data_vars if name not in existing
    }
    final.to_zarr(store.path, mode="a", zarr_format=3, consolidated=False, encoding=encoding)
    keep_extension_state(store, config)  # before the work store goes
    _repair_attributes(store, predictive=predictive, quantiles=quantiles)
    # the store as written: the rows as opened above, the gridded results from memory
    # (the same values; no second opening of the store)
    summary = _summary(
        store.path,
        config=config,
        inputs=inputs,
        cell_stats=cell_stats,
        store=ds.assign(final.data_vars),
    )
    atomic_write_text(store.summary_path, dumps_strict(summary))
    p = read_progress(store)
    write_progress(
        store,
        batches_done=p["batches_done"],
        slot=p["moments_slot"],
        count=p["replicates_done"],
        complete=True,
    )
    shutil.rmtree(store.work, ignore_errors=True)  # the merged moments are in the store now
    return strict_json(summary)


def _pooled_statistics(store: RunDir, inputs: Inputs) -> dict[str, dict[str, np.ndarray]]:
    """Per flux, the order statistics of the pooled weights (:func:`pooled_order_statistics`)
    per cell, read from the work store chunk by chunk (bounded memory)."""
    p = read_progress(store)
    grp = store_group(store.work)
    out: dict[str, dict[str, np.ndarray]] = {}
    for f in PREDICTIVE_FLUXES:
        y_sorted = np.sort(np.asarray(inputs.fluxes[f].y, dtype=np.float64), kind="stable")
        w_name, t_name, c_name = weight_names(p["moments_slot"], f)
        arr = store_array(grp, store.work, w_name)
        n = arr.shape[0]
        totals = checked_rows(store, grp, t_name, 0, n)
        counts = checked_rows(store, grp, c_name, 0, n)
        stats = {k: np.empty(n) for k in PREDICTIVE_ORDER_KINDS}
        for r0 in range(0, n, arr.chunks[0]):
            r1 = min(r0 + arr.chunks[0], n)
            part = pooled_order_statistics(
                checked_rows(store, grp, w_name, r0, r1),
                totals[r0:r1],
                counts[r0:r1],
                y_sorted,
            )
            for k in stats:
                stats[k][r0:r1] = part[k]
        out[f] = stats
    return out


def _summary(
    path: Path,
    *,
    config: EnsembleConfig,
    inputs: Inputs,
    cell_stats: dict,
    store: xr.Dataset | None = None,
) -> dict:
    """:func:`~srgpu.run.summary.build_summary` of ``store`` (default: the store at ``path``
    opened)."""
    from srgpu.run.summary import build_summary

    return build_summary(
        config=config,
        inputs=inputs,
        store=store if store is not None else xr.open_zarr(path, consolidated=False, zarr_format=3),
        cell_stats=cell_stats,
    )


def _repair_attributes(
    store: RunDir,
    *,
    consolidate: bool = True,
    predictive: bool = False,
    quantiles: bool = False,
) -> list[str]:
    """Give every gridded result its attributes (units, long name, ...) where one lacks
    them; reconsolidate the metadata (always, or when something was repaired). Returns the
    names repaired."""
    grp = store_group(store.path, mode="r+")
    repaired = []
    for name, want in final_attributes(predictive=predictive, quantiles=quantiles).items():
        arr = store_array(grp, store.path, name)
        have = dict(arr.attrs)
        if any(have.get(k) != v for k, v in want.items()):
            arr.update_attributes(want)
            repaired.append(name)
    if not (consolidate or repaired):
        return repaired
    with warnings.catch_warnings():
        # consolidated metadata is a zarr-python extension of v3: readers may ignore it,
        # xarray's default open uses it.
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(str(store.path), zarr_format=3)
    return repaired


def reopen_complete(
    store: RunDir, *, config: EnsembleConfig, inputs: Inputs
) -> tuple[dict, list[str]]:
    """A complete store opened again: check its gridded results (readable, attributes),
    repair lost attributes, and rebuild ``summary.json`` from the store when it is missing
    or damaged. Returns ``(summary, notes)``; the caller verifies the rows first."""
    notes: list[str] = []
    try:
        grp = store_group(store.path)
        predictive = config.predictive != "none"
        quantiles = config.predictive == "quantiles"
        for name in final_attributes(predictive=predictive, quantiles=quantiles):
            arr = store_array(grp, store.path, name)
            try:
                arr[...]
            except Exception as exc:  # noqa: BLE001 - checksum, truncation
                raise StoreError(
                    f"{store.path}/{name}: damaged ({error_line(exc)}); the gridded results "
                    "need the merged moments, which a complete run no longer keeps: use "
                    "--overwrite to compute the run again"
                ) from None
        repaired = _repair_attributes(
            store, consolidate=False, predictive=predictive, quantiles=quantiles
        )
        if repaired:
            notes.append(f"restored the attributes of {', '.join(repaired)}")
        summary = None
        try:
            summary = json.loads(store.summary_path.read_text())
        except (OSError, ValueError):
            pass
        if not isinstance(summary, dict) or summary.get("config_hash") not in (
            config.hash(),
            store.legacy_hash,
        ):
            summary = strict_json(_rebuild_summary(store, config=config, inputs=inputs))
            atomic_write_text(store.summary_path, dumps_strict(summary))
            notes.append(f"rebuilt {store.summary_path.name} from the store")
    except OSError as exc:
        raise StoreError(
            f"{store.out}: repairing the complete store failed ({exc.strerror or exc}); "
            f"{store._retry(exc, 'to try again')}"
        ) from None
    return summary, notes


def _rebuild_summary(store: RunDir, *, config: EnsembleConfig, inputs: Inputs) -> dict:
    """The summary of a complete store, from its gridded results."""
    ds = xr.open_zarr(store.path, consolidated=False, zarr_format=3)
    ilat, ilon = inputs.cell_ilat, inputs.cell_ilon
    cell_stats = {
        f: {
            "mean": np.asarray(ds[f].values)[ilat, ilon],
            "sd": np.asarray(ds[flux_var(f, "sd_map")].values)[ilat, ilon],
            "mad": np.asarray(ds[flux_var(f, "mad")].values)[ilat, ilon],
        }
        for f in OUTPUT_FLUXES
    }
    return _summary(store.path, config=config, inputs=inputs, cell_stats=cell_stats)
