"""The output store: ``OUT/ensemble.zarr`` (Zarr v3 through xarray), resumable.

Layout (see ``docs/store.md``): static context and per-replicate arrays are created up front;
each finished batch writes its replicates' rows (time-mean maps, annual totals, validation);
the per-row moments of all finished batches live in ``OUT/work.zarr``, merged strictly in batch
order. At the end the gridded results and ``OUT/summary.json`` are written and the work store
is removed.

Resume and atomicity: ``OUT/progress.json`` is the single record of what is done. It is written
to a temporary file and renamed over the old one (atomic on POSIX), and only after the batch's
data is fully written. The merged moments alternate between two slots (``a``/``b``): batch k
writes its merge into the slot that ``progress.json`` does *not* point at, then flips the
pointer. A run killed at any point therefore resumes from the last completed batch, rewrites
the rows of the batch it lost (same values: replicates are pure functions of the seed) and ends
bit for bit where an uninterrupted run ends. ``progress.json`` is written before the arrays are
created, with ``"created": false`` until they all exist: a run killed while creating the store
creates it again. Zarr chunks are written atomically (temporary file + rename), so a kill never
leaves a torn chunk; ``docs/reliability.md`` lists the kill points that are tested.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from srgpu import __version__
from srgpu.config import FLUXES, EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import InputError, StoreError
from srgpu.run.batch import METRICS, OUTPUT_FLUXES, BatchResult
from srgpu.run.stats import Moments, bounds_from_centres, moments_sd, replicate_summary

FLUX_UNITS = "g m-2 yr-1"  # of carbon: CF/UDUNITS has no "g C"; long names say so
FLUX_LONG = {
    "SR": "soil respiration (total soil CO2 efflux, as carbon)",
    "HR": "heterotrophic respiration (as carbon)",
    "AR": "autotrophic (root) respiration, SR - HR (as carbon)",
}
# Only HR has a CF standard name we are sure of (CMIP's ``rh``); SR and AR carry long names.
FLUX_STANDARD_NAME = {
    "HR": (
        "surface_upward_mass_flux_of_carbon_dioxide_expressed_as_carbon_"
        "due_to_heterotrophic_respiration"
    ),
}
SUMMARY_STATS = ("mean", "sd", "median", "mad", "q025", "q975", "cv")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_ensemble_dataset(zarr_path: Path, *, required: tuple[str, ...] = ()) -> xr.Dataset:
    """Open a finished ensemble store for reading (lazy) and check that it holds ``required``.

    Readers (``srgpu compare``, ``srgpu report``) call this: a path that is not a Zarr store or
    a store without a needed variable is an :class:`InputError` naming the file and field.
    """
    try:
        with warnings.catch_warnings():  # stores written without consolidated metadata
            warnings.simplefilter("ignore")
            store = xr.open_zarr(zarr_path, consolidated=None)
    except Exception as exc:
        raise InputError(
            f"cannot be opened as Zarr ({type(exc).__name__})",
            file=zarr_path,
            expected="an srgpu ensemble store (docs/store.md)",
        ) from None
    for name in required:
        if name not in store.variables:
            raise InputError(
                "ensemble store lacks a variable",
                file=zarr_path,
                field=name,
                expected="the layout of docs/store.md",
            )
    return store


class EnsembleStore:
    """A run's output directory. Use :meth:`open` to create or resume one."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / "ensemble.zarr"
        self.work = self.out / "work.zarr"
        self.progress_path = self.out / "progress.json"
        self.summary_path = self.out / "summary.json"

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, out: str | Path, *, config: EnsembleConfig, inputs: Inputs, overwrite: bool = False
    ) -> EnsembleStore:
        """Create the store for ``config`` or reopen a compatible one to resume it."""
        store = cls(Path(out))
        try:
            store.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{store.out}: cannot create the output directory: {exc.strerror}"
            ) from None
        if not os.access(store.out, os.W_OK):
            raise StoreError(f"{store.out}: the output directory is not writable")
        progress = store.read_progress()
        exists = store.path.exists() or progress is not None
        if exists and overwrite:
            store.clear()
            progress = None
        elif exists:
            if progress is None:
                raise StoreError(
                    f"{store.path}: exists but has no progress record (not written by this "
                    "version of srgpu, or damaged); use --overwrite to replace it"
                )
            if progress.get("config_hash") != config.hash():
                raise StoreError(
                    f"{store.path}: was written with a different config "
                    f"(hash {progress.get('config_hash', '?')[:12]} != {config.hash()[:12]}); "
                    "use --overwrite to replace it, or another --out"
                )
            if progress.get("created", True):
                return store
            store.clear()  # a run killed while creating the store: create it again
        store._create(config, inputs)
        return store

    def clear(self) -> None:
        """Remove this run's files (only the ones srgpu writes, inside ``out``; a symbolic link
        in their place is removed, never followed)."""
        try:
            for p in (self.path, self.work, self.progress_path, self.summary_path):
                if p.is_symlink() or p.is_file():
                    p.unlink()
                elif p.is_dir():
                    shutil.rmtree(p)
        except OSError as exc:
            raise StoreError(f"{self.out}: cannot remove the old run: {exc}") from None

    def read_progress(self) -> dict[str, Any] | None:
        if not self.progress_path.exists():
            return None
        try:
            return json.loads(self.progress_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.progress_path}: unreadable progress record: {exc}") from None

    @property
    def batches_done(self) -> int:
        p = self.read_progress()
        return 0 if p is None else int(p["batches_done"])

    @property
    def complete(self) -> bool:
        p = self.read_progress()
        return bool(p and p.get("complete"))

    # -- creation ------------------------------------------------------------------------
    def _create(self, config: EnsembleConfig, inputs: Inputs) -> None:
        import dask.array as da

        # the progress record comes first, marked "created": false until every array exists,
        # so that a run killed while creating the store is recognised and started again
        self._write_progress(config=config, batches_done=0, slot=None, count=0, created=False)
        n_rep = config.n_replicates
        preds = inputs.predictors
        coords = {
            "lat": preds["lat"],
            "lon": preds["lon"],
            "year": ("year", inputs.years, {"long_name": "year"}),
            "replicate": ("replicate", np.arange(n_rep), {"long_name": "replicate model index"}),
            "cell": ("cell", np.arange(inputs.n_cells), {"long_name": "prediction-domain cell"}),
            "flux": ("flux", np.array(FLUXES, dtype=object)),
            "metric": ("metric", np.array(METRICS, dtype=object)),
        }
        ds = xr.Dataset(coords=coords)
        for axis in ("lat", "lon"):
            ds[f"{axis}_bnds"] = ((axis, "bnds"), bounds_from_centres(preds[axis].values))
            ds[axis].attrs["bounds"] = f"{axis}_bnds"
        ds["cell_ilat"] = ("cell", inputs.cell_ilat.astype(np.int32))
        ds["cell_ilon"] = ("cell", inputs.cell_ilon.astype(np.int32))
        ds["cell_area"] = preds["cell_area"].astype(np.float64)
        ds["cell_area"].attrs.update(units="m2", standard_name="cell_area")
        ds["land_fraction"] = preds["land_fraction"].astype(np.float64)
        ds["land_fraction"].attrs.update(units="1", standard_name="land_area_fraction")
        ds["veg_bin"] = preds["veg_bin"].astype(np.int8)
        ds["veg_bin"].attrs.update(
            long_name="vegetation bin (0 none, 1 EBF, 2 other forests, 3 shrublands, "
            "4 savannas+grasslands, 5 croplands)"
        )
        ds["domain"] = preds["domain"].astype(np.int8)
        ds["domain"].attrs.update(long_name="prediction domain (vegetated land), 1 = in")
        chunk_r = min(config.batch_size, n_rep)
        for f in OUTPUT_FLUXES:
            ds[f"{f}_replicate_map"] = (
                ("replicate", "cell"),
                da.full((n_rep, inputs.n_cells), np.nan, dtype=np.float32, chunks=(chunk_r, -1)),
                {
                    "units": FLUX_UNITS,
                    "long_name": f"per-replicate time-mean {FLUX_LONG[f]}",
                },
            )
            ds[f"{f}_replicate_total"] = (
                ("replicate", "year"),
                da.full((n_rep, inputs.n_years), np.nan, dtype=np.float64, chunks=(chunk_r, -1)),
                {
                    "units": "Pg yr-1",
                    "long_name": f"per-replicate global total {FLUX_LONG[f]} (as carbon)",
                },
            )
        ds["validation"] = (
            ("replicate", "flux", "metric"),
            da.full((n_rep, len(FLUXES), len(METRICS)), np.nan, chunks=(chunk_r, -1, -1)),
            {"long_name": "validation on the held-out records (r2: 1; rmse: g m-2 yr-1; r: 1)"},
        )
        ds["replicate_done"] = (
            ("replicate",),
            da.zeros((n_rep,), dtype=np.int8, chunks=(chunk_r,)),
            {"long_name": "1 when the replicate's rows are written and merged"},
        )
        sites = _site_variables(inputs)
        ds = ds.merge(sites)
        ds.attrs.update(
            Conventions="CF-1.8",
            title="srgpu random-forest ensemble of soil respiration (after Lu et al. 2021)",
            source=f"srgpu {__version__}",
            config=config.to_toml(),
            config_hash=config.hash(),
            srgpu_version=__version__,
            climatology=int(preds.attrs.get("climatology", 0)),
        )
        try:
            ds.to_zarr(self.path, mode="w", compute=False, zarr_format=3, consolidated=False)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot write the store: {exc}") from None
        grp = zarr.open_group(self.work, mode="w", zarr_format=3)
        for slot in ("a", "b"):
            for f in OUTPUT_FLUXES:
                for part in ("mean", "m2"):
                    grp.create_array(
                        f"{slot}_{f}_{part}",
                        shape=(inputs.n_rows,),
                        chunks=(min(inputs.n_rows, 1 << 20),),
                        dtype="float64",
                    )
        self._write_progress(config=config, batches_done=0, slot=None, count=0)

    def _write_progress(
        self,
        *,
        config: EnsembleConfig | None = None,
        batches_done: int,
        slot: str | None,
        count: int,
        complete: bool = False,
        created: bool = True,
    ) -> None:
        old = self.read_progress() or {}
        record = {
            "config_hash": config.hash() if config is not None else old["config_hash"],
            "batches_done": batches_done,
            "replicates_done": count,
            "moments_slot": slot,
            "complete": complete,
            "created": created,
        }
        atomic_write_text(self.progress_path, json.dumps(record, indent=1))

    # -- batches -------------------------------------------------------------------------
    def read_moments(self) -> dict[str, Moments] | None:
        p = self.read_progress()
        if p is None or p["moments_slot"] is None:
            return None
        grp = zarr.open_group(self.work, mode="r")
        slot, count = p["moments_slot"], int(p["replicates_done"])
        return {
            f: Moments(count=count, mean=grp[f"{slot}_{f}_mean"][:], m2=grp[f"{slot}_{f}_m2"][:])
            for f in OUTPUT_FLUXES
        }

    def write_batch(self, result: BatchResult, merged: dict[str, Moments]) -> None:
        """Write one batch's replicate rows and the merged moments, then record it as done."""
        spec = result.spec
        region = {"replicate": slice(spec.start, spec.stop)}
        part = xr.Dataset()
        for f in OUTPUT_FLUXES:
            part[f"{f}_replicate_map"] = (("replicate", "cell"), result.maps[f].astype(np.float32))
            part[f"{f}_replicate_total"] = (("replicate", "year"), result.totals[f])
        part["validation"] = (("replicate", "flux", "metric"), result.validation)
        part["replicate_done"] = (("replicate",), np.ones(spec.size, dtype=np.int8))
        progress = self.read_progress()
        if progress["batches_done"] != spec.index:
            raise StoreError(
                f"{self.path}: batch {spec.index} written out of order "
                f"(store has {progress['batches_done']} batches)"
            )
        new_slot = "b" if progress["moments_slot"] == "a" else "a"
        try:
            part.to_zarr(self.path, region=region, zarr_format=3, consolidated=False)
            grp = zarr.open_group(self.work, mode="r+")
            for f in OUTPUT_FLUXES:
                grp[f"{new_slot}_{f}_mean"][:] = np.asarray(merged[f].mean)
                grp[f"{new_slot}_{f}_m2"][:] = np.asarray(merged[f].m2)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing batch {spec.index} failed ({exc.strerror or exc}); "
                "nothing was recorded as done: rerun the same command to resume"
            ) from None
        self._write_progress(
            batches_done=spec.index + 1, slot=new_slot, count=int(merged["SR"].count)
        )

    # -- finalisation --------------------------------------------------------------------
    def finalize(self, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int = 8192) -> dict:
        """Write the gridded results and ``summary.json``; return the summary.

        Idempotent: a finalisation that fails (disk full, killed) is simply run again by the
        same command; a failed write is a :class:`StoreError`, never a traceback.
        """
        try:
            return self._finalize(config=config, inputs=inputs, cell_chunk=cell_chunk)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing the final results failed ({exc.strerror or exc}); "
                "all batches are kept: rerun the same command once there is space"
            ) from None

    def _finalize(self, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int) -> dict:
        from srgpu.run.summary import build_summary

        moments = self.read_moments()
        if moments is None:
            raise StoreError(f"{self.path}: no finished batch to summarise")
        ds = xr.open_zarr(self.path, consolidated=False, zarr_format=3)
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

        final = xr.Dataset(coords={"year": ds["year"], "lat": ds["lat"], "lon": ds["lon"]})
        cell_stats: dict[str, dict[str, np.ndarray]] = {}
        for f in OUTPUT_FLUXES:
            attrs = {"units": FLUX_UNITS}
            if f in FLUX_STANDARD_NAME:
                attrs["standard_name"] = FLUX_STANDARD_NAME[f]
            m = moments[f]
            final[f"{f}_mean"] = (
                ("year", "lat", "lon"),
                grid3d(np.asarray(m.mean)),
                {
                    **attrs,
                    "long_name": f"ensemble mean {FLUX_LONG[f]}",
                    "cell_methods": "realization: mean",
                },
            )
            final[f"{f}_sd"] = (
                ("year", "lat", "lon"),
                grid3d(
                    np.asarray(moments_sd(m, ddof=1))
                    if m.count > 1
                    else np.full(m.mean.shape, np.nan)
                ),
                {
                    "units": FLUX_UNITS,
                    "long_name": f"ensemble standard deviation of {FLUX_LONG[f]}",
                    "cell_methods": "realization: standard_deviation",
                },
            )
            per_cell = {k: np.empty(n_cells) for k in SUMMARY_STATS}
            maps = ds[f"{f}_replicate_map"]
            for c0 in range(0, n_cells, cell_chunk):
                c1 = min(c0 + cell_chunk, n_cells)
                block = np.asarray(maps[:, c0:c1].values, dtype=np.float64)
                s = replicate_summary(block, axis=0)
                for k in SUMMARY_STATS:
                    per_cell[k][c0:c1] = np.asarray(s[k])
            cell_stats[f] = per_cell
            final[f] = (
                ("lat", "lon"),
                grid2d(per_cell["mean"]),
                {
                    **attrs,
                    "long_name": f"{FLUX_LONG[f]}, time mean of the ensemble mean",
                    "cell_methods": "time: mean realization: mean",
                    # one ancillary variable = a scalar uncertainty, as ilamb3 reads it
                    "ancillary_variables": f"{f}_sd_map",
                },
            )
            labels = {
                "sd": ("sd_map", "standard deviation across replicates of the time-mean"),
                "median": ("median", "median across replicates of the time-mean"),
                "mad": (
                    "mad",
                    "median absolute deviation (unscaled) across replicates of the time-mean",
                ),
                "q025": ("q025", "2.5 % quantile across replicates of the time-mean"),
                "q975": ("q975", "97.5 % quantile across replicates of the time-mean"),
                "cv": ("cv", "coefficient of variation across replicates of the time-mean"),
            }
            for k, (suffix, long) in labels.items():
                units = "%" if k == "cv" else FLUX_UNITS
                final[f"{f}_{suffix}"] = (
                    ("lat", "lon"),
                    grid2d(per_cell[k]),
                    {"units": units, "long_name": f"{long} of {FLUX_LONG[f]}"},
                )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = cell_stats["AR"]["mean"] / cell_stats["SR"]["mean"]
        final["AR_SR_ratio"] = (
            ("lat", "lon"),
            grid2d(ratio),
            {"units": "1", "long_name": "AR / SR"},
        )
        final.attrs.update(ds.attrs)  # appending rewrites the root attributes
        final.to_zarr(self.path, mode="a", zarr_format=3, consolidated=False)

        summary = build_summary(
            config=config,
            inputs=inputs,
            store=xr.open_zarr(self.path, consolidated=False, zarr_format=3),
            cell_stats=cell_stats,
        )
        with warnings.catch_warnings():
            # consolidated metadata is a zarr-python extension of v3: readers may ignore it,
            # xarray's default open uses it.
            warnings.simplefilter("ignore", category=UserWarning)
            zarr.consolidate_metadata(str(self.path), zarr_format=3)
        atomic_write_text(self.summary_path, json.dumps(summary, indent=1, default=_json_default))
        p = self.read_progress()
        self._write_progress(
            batches_done=p["batches_done"],
            slot=p["moments_slot"],
            count=p["replicates_done"],
            complete=True,
        )
        shutil.rmtree(self.work, ignore_errors=True)  # the merged moments are in the store now
        return summary


def _site_variables(inputs: Inputs) -> xr.Dataset:
    frames = [inputs.fluxes[f].table.assign(flux=f) for f in FLUXES]
    import pandas as pd

    t = pd.concat(frames, ignore_index=True)
    ds = xr.Dataset()
    ds["site_flux"] = ("site", t["flux"].to_numpy().astype(object))
    ds["site_value"] = ("site", t["value"].to_numpy(np.float64), {"units": FLUX_UNITS})
    for col, name in (("lat", "site_lat"), ("lon", "site_lon"), ("year", "site_year")):
        ds[name] = ("site", t[col].to_numpy(np.float64))
    ds["site_lat"].attrs["units"] = "degrees_north"
    ds["site_lon"].attrs["units"] = "degrees_east"
    for col, name in (
        ("ilat", "site_ilat"),
        ("ilon", "site_ilon"),
        ("iyear", "site_iyear"),
        ("veg_bin", "site_veg_bin"),
    ):
        ds[name] = ("site", t[col].to_numpy(np.int32))
    ds["site_study"] = (
        "site",
        pd.to_numeric(t["study"], errors="coerce").fillna(-1).to_numpy(np.int64),
    )
    ds["site_record_id"] = (
        "site",
        pd.to_numeric(t["record_id"], errors="coerce").fillna(-1).to_numpy(np.int64),
    )
    return ds


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
