"""The output store: ``OUT/ensemble.zarr`` (Zarr v3 through xarray), resumable.

Layout (see ``docs/store.md``): static context and per-replicate arrays are created up front;
each finished batch writes its replicates' rows (time-mean maps, annual totals, validation);
the per-row moments of all finished batches live in ``OUT/work.zarr``, merged strictly in batch
order. At the end the gridded results and ``OUT/summary.json`` are written, the merged moments
after the run's full batches are kept in the group ``ensemble.zarr/extension`` (for extending
the run to more replicates: :mod:`srgpu.run.extend`) and the work store is removed.

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

import errno
import json
import math
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
from srgpu import schema as S
from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import InputError, StoreError
from srgpu.grid import bounds_from_centres
from srgpu.run.batch import BatchResult, BatchSpec, batch_specs
from srgpu.run.guard import (
    WORK_MARK,
    OutLock,
    check_fingerprints,
    check_out_dir,
    input_fingerprints,
    written_by_srgpu,
)
from srgpu.run.predictive import pooled_order_statistics, pooled_predictive
from srgpu.run.stats import Moments, moments_sd, replicate_summary
from srgpu.schema import (
    AR_SR_RATIO,
    CALIBRATION,
    CALIBRATION_METRICS,
    CELL_AREA,
    CELL_ILAT,
    CELL_ILON,
    COORD_ATTRS,
    DOMAIN,
    FLUX_KINDS,
    FLUX_UNITS,
    FORMAT_VERSION,
    LAND_FRACTION,
    METRICS,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    PREDICTIVE_ORDER_KINDS,
    REPLICATE_DONE,
    REPLICATE_STATS,
    TRAINED_FLUXES,
    VALIDATION,
    VEG_BIN,
    flux_attrs,
    flux_var,
    gridded_attrs,
)

ROW_ARRAYS = (
    *(flux_var(f, "replicate_map") for f in OUTPUT_FLUXES),
    *(flux_var(f, "replicate_total") for f in OUTPUT_FLUXES),
    VALIDATION,
    REPLICATE_DONE,
)
"""The per-replicate arrays a batch writes (chunked by batch along ``replicate``)."""

PREDICTIVE_ROW_ARRAYS = (
    *(flux_var(f, "pred_replicate_mean") for f in PREDICTIVE_FLUXES),
    *(flux_var(f, "pred_replicate_second") for f in PREDICTIVE_FLUXES),
    CALIBRATION,
    S.SITE_FOREST_MEAN,
    S.SITE_HELDOUT,
)
"""The per-replicate arrays of the predictive distribution and of the two bands' held-out
calibration (``config.predictive``)."""

EXTRA_ROW_DIMS = {
    CALIBRATION: ("replicate", "flux", "cal_metric"),
    S.SITE_FOREST_MEAN: ("replicate", "site"),
    S.SITE_HELDOUT: ("replicate", "site"),
}
"""Dimensions of a batch's further rows (``BatchResult.extra``) other than (replicate, cell)."""


def row_arrays(config: EnsembleConfig) -> tuple[str, ...]:
    """Every per-replicate array a batch of this run writes."""
    return ROW_ARRAYS + (PREDICTIVE_ROW_ARRAYS if config.predictive != "none" else ())


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


NAN_FILL = "AAAAAAAA+H8="
"""A NaN ``_FillValue`` attribute as xarray writes it in Zarr v3 (base64 of the float64 NaN)."""

OWN_NAMES = ("ensemble.zarr", "work.zarr", "progress.json", "summary.json")
"""The only names srgpu writes (or removes) in ``OUT`` (besides its lock file)."""


def checksum_codecs() -> tuple:
    """Compressors of every array srgpu writes: zstd (zarr's default), then a crc32c checksum
    of the compressed chunk, so that a flipped, truncated or replaced chunk fails to read."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=0, checksum=False), Crc32cCodec())


def _file_mode() -> int:
    """0666 less the process umask: the mode every other file of the store gets."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def strict_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by ``None`` (JSON ``null``): the files srgpu
    writes are strict JSON that any parser reads."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.generic):
        return strict_json(obj.item())
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    return obj


def dumps_strict(obj: Any) -> str:
    """Strict JSON text (no ``NaN``/``Infinity`` tokens) of ``obj``."""
    return json.dumps(strict_json(obj), indent=1, allow_nan=False)


def cf_coordinate_attrs(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with :data:`COORD_ATTRS` set on the coordinates it has."""
    for name, attrs in COORD_ATTRS.items():
        if name in ds.coords:
            ds[name].attrs.update(attrs)
    return ds


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename; the file gets
    the usual mode (0666 less the umask), like the store's chunks."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def damaged_chunk(arr: zarr.Array) -> str | None:
    """``None`` when every chunk of ``arr`` reads (checksum, decompression), else the key of
    the first chunk that does not (``c/i/j``) and why. Reads one chunk at a time."""
    import itertools

    if arr.ndim == 0:
        try:
            arr[...]
        except Exception as exc:  # noqa: BLE001 - any decoding failure
            return f"c ({_one_line(exc)})"
        return None
    for coords in itertools.product(*(range(n) for n in arr.cdata_shape)):
        try:
            arr.blocks[coords]
        except Exception as exc:  # noqa: BLE001 - checksum mismatch, truncated chunk
            return f"c/{'/'.join(map(str, coords))} ({_one_line(exc)})"
    return None


def check_store_readable(zarr_path: Path) -> None:
    """Read every chunk of every array of a store once: a damaged chunk (flipped bytes, cut
    short: the crc32c codec, or the decompressor, fails) is an :class:`InputError` naming the
    array and the chunk, instead of an exception deep inside a reader."""
    try:
        grp = zarr.open_group(zarr_path, mode="r")
        names = sorted(grp.array_keys())
    except Exception as exc:  # noqa: BLE001
        raise InputError(
            f"cannot be opened as Zarr ({_one_line(exc)})",
            file=zarr_path,
            expected="an srgpu ensemble store (docs/store.md)",
        ) from None
    for name in names:
        try:
            arr = grp[name]
        except Exception as exc:  # noqa: BLE001 - damaged metadata
            raise InputError(
                f"array metadata damaged ({_one_line(exc)})", file=zarr_path, field=name
            ) from None
        bad = damaged_chunk(arr)
        if bad:
            raise InputError(
                f"damaged chunk {bad}",
                file=zarr_path,
                field=name,
                expected="a store whose chunks pass their checksums: recompute it with "
                "srgpu ensemble --overwrite",
            )


PROGRESS_TYPES: dict[str, tuple[type, ...]] = {
    "config_hash": (str,),
    "inputs": (dict,),
    "batches_done": (int,),
    "replicates_done": (int,),
    "moments_slot": (str, type(None)),
    "complete": (bool,),
    "created": (bool,),
}
"""The fields of ``progress.json`` and their JSON types."""


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


def weight_names(slot: str, flux: str) -> tuple[str, str, str]:
    """The work store's arrays of the pooled predictive weights of ``flux`` in ``slot``
    (``predictive = "quantiles"``): weights (cells, records), totals and counts (cells)."""
    return tuple(f"{slot}_{flux}_pred_{part}" for part in ("weights", "totals", "counts"))


def weight_chunk_cells(n_cells: int, n_records: int) -> int:
    """Cells per chunk of the pooled weights in the work store (about 16 MiB a chunk)."""
    return max(1, min(n_cells, (16 << 20) // (8 * max(n_records, 1))))


def _chunk_key(ndim: int, index: int) -> str:
    return "c/" + "/".join([str(index)] + ["0"] * (ndim - 1))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class EnsembleStore:
    """A run's output directory. Use :meth:`open` to create or resume one (it holds the
    directory's lock until :meth:`close`)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / "ensemble.zarr"
        self.work = self.out / "work.zarr"
        self.progress_path = self.out / "progress.json"
        self.summary_path = self.out / "summary.json"
        self.lock = OutLock(self.out)
        self.inputs_sha: dict[str, str] = {}
        self.resumed_from: int | None = None  # batches done when an existing run was reopened
        # the hash recorded by a run written before the [train]/[predict] tables, when its
        # config, translated, is this run's (see _legacy_hash)
        self.legacy_hash: str | None = None
        self.extended_from: int | None = None  # replicates of a finished run being extended

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls, out: str | Path, *, config: EnsembleConfig, inputs: Inputs, overwrite: bool = False
    ) -> EnsembleStore:
        """Create the store for ``config`` or reopen a compatible one to resume it.

        Refuses ``/`` and system folders, takes the directory's exclusive lock (released by
        :meth:`close`), never deletes or overwrites a file srgpu did not write, refuses a store
        whose config or input files (sha256) differ, and symbolic links inside the store.
        """
        store = cls(Path(out))
        check_out_dir(store.out)
        try:
            store.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{store.out}: cannot create the output directory: {exc.strerror}"
            ) from None
        if not os.access(store.out, os.W_OK):
            raise StoreError(f"{store.out}: the output directory is not writable")
        store.lock.acquire()
        try:
            store._open(config=config, inputs=inputs, overwrite=overwrite)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the directory's lock."""
        self.lock.release()

    def __enter__(self) -> EnsembleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry(self, exc: OSError, what: str = "to resume") -> str:
        """The fix a failed write suggests, by its cause: space, permissions, or anything else
        (then ``--overwrite`` is the fix that always works)."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"rerun the same command {what} once there is space"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"rerun the same command {what} once {self.out} is writable"
        return (
            f"rerun the same command {what} once the cause is fixed, or use --overwrite to "
            "start the run again"
        )

    def _own_paths(self) -> tuple[Path, ...]:
        return (self.path, self.work, self.progress_path, self.summary_path)

    def _open(self, *, config: EnsembleConfig, inputs: Inputs, overwrite: bool) -> None:
        self.inputs_sha = input_fingerprints(config)
        present = [p for p in self._own_paths() if p.exists() or p.is_symlink()]
        if present and overwrite:
            self.clear()
            present = []
        if not present:
            self._create(config, inputs)
            return
        self._refuse_links()
        progress = self.read_progress()
        if progress is None:
            foreign = [p for p in present if not written_by_srgpu(p)]
            if foreign:
                raise StoreError(
                    f"{foreign[0]}: exists and was not written by srgpu; srgpu never deletes "
                    "or overwrites it: move it away, or use another --out"
                )
            raise StoreError(
                f"{self.out}: holds an srgpu run without its progress record "
                f"({', '.join(p.name for p in present)}); use --overwrite to replace it"
            )
        if progress["config_hash"] != config.hash():
            self.legacy_hash = self._legacy_hash(progress["config_hash"], config)
        if progress["config_hash"] not in (config.hash(), self.legacy_hash):
            from srgpu.config_diff import describe_config_diff, replicates_change, stored_config

            old = stored_config(self.path)
            counts = None if old is None else replicates_change(old, config)
            if counts is not None and counts[1] > counts[0] and config.predictive == "quantiles":
                raise StoreError(
                    f"{self.path}: holds a run of {counts[0]} replicates with predictive = "
                    f"'quantiles', which cannot be extended to {counts[1]} (its pooled weights "
                    "after the full batches are not kept): use --overwrite to compute the run "
                    "again, or another --out"
                )
            if counts is not None and counts[1] > counts[0]:
                from srgpu.run.extend import prepare_extension

                check_fingerprints(progress["inputs"], self.inputs_sha, out=self.out)
                prepare_extension(self, progress, old=old, config=config, inputs=inputs)
                self.extended_from = counts[0]
                return
            if counts is not None:
                raise StoreError(
                    f"{self.path}: holds a run of {counts[0]} replicates; --replicates "
                    f"{counts[1]} is fewer (a run can only be extended): use --overwrite to "
                    "replace it, or another --out"
                )
            changed = describe_config_diff(old, config) if old is not None else ""
            if not changed:
                changed = f"hash {progress['config_hash'][:12]} != {config.hash()[:12]}"
            raise StoreError(
                f"{self.path}: was written with a different config ({changed}); "
                "use --overwrite to replace it, or another --out"
            )
        check_fingerprints(progress["inputs"], self.inputs_sha, out=self.out)
        if not progress["created"]:
            self.clear()  # a run killed while creating the store: create it again
            self._create(config, inputs)
            return
        self.resumed_from = progress["batches_done"]
        from srgpu.run.extend import sync_config_attrs

        sync_config_attrs(self, config)  # an extension killed before it renamed its config

    def _legacy_hash(self, recorded: str, config: EnsembleConfig) -> str | None:
        """``recorded`` when the store's config is in the spelling before the ``[train]`` and
        ``[predict]`` tables (``backend``, ``train_on``, ``engine``, ``[forest] trainer``) and,
        translated (:func:`srgpu.config.translate_legacy`), equals ``config``: the same run,
        whose recorded hash is that of the old spelling. ``None`` otherwise."""
        import tomllib

        from srgpu.config import translate_legacy
        from srgpu.config_diff import stored_config_text

        text = stored_config_text(self.path)
        try:
            data = tomllib.loads(text) if text else {}
            found = translate_legacy(data)[1]
            same = bool(found) and EnsembleConfig.from_dict(data).hash() == config.hash()
        except Exception:  # noqa: BLE001 - unreadable: the hash check below speaks
            return None
        return recorded if same else None

    def _refuse_links(self) -> None:
        """No symbolic link in srgpu's places: a resume would write through it."""
        for p in self._own_paths():
            if p.is_symlink():
                raise StoreError(
                    f"{p}: is a symbolic link; srgpu does not write through links: remove it "
                    "(--overwrite removes the link, not its target)"
                )
        for top in (self.path, self.work):
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

    def clear(self) -> None:
        """Remove this run's files: only srgpu's four names inside ``out``, and only those srgpu
        wrote (:meth:`_removable`). A symbolic link in their place is removed, never followed."""
        for p in self._own_paths():
            if p.exists() and not p.is_symlink() and not self._removable(p):
                raise StoreError(
                    f"{p}: was not written by srgpu; srgpu never deletes it: move it away "
                    "yourself, or use another --out"
                )
        try:
            for p in self._own_paths():
                if p.is_symlink() or p.is_file():
                    p.unlink()
                elif p.is_dir():
                    shutil.rmtree(p)
        except OSError as exc:
            raise StoreError(f"{self.out}: cannot remove the old run: {exc}") from None

    def _removable(self, p: Path) -> bool:
        """Whether srgpu wrote ``p``: it carries srgpu's marks, or srgpu's progress record says
        the run is in a state where srgpu writes it (a store being created may not carry its
        marks yet; a finished run's ``summary.json`` may be damaged; a finished run has
        removed its work store, so a ``work.zarr`` beside it is someone else's)."""
        if written_by_srgpu(p):
            return True
        try:
            prog = json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            prog = None
        if not (isinstance(prog, dict) and "config_hash" in prog):
            # a damaged progress record beside srgpu's own store is srgpu's
            return p == self.progress_path and written_by_srgpu(self.path)
        if p.name == "work.zarr":
            return prog.get("complete") is not True
        if p.name == "summary.json":
            return prog.get("complete") is True
        return True

    def read_progress(self) -> dict[str, Any] | None:
        """The progress record, its fields checked (a damaged one is a :class:`StoreError`)."""
        path = self.progress_path
        if path.is_symlink():
            raise StoreError(f"{path}: is a symbolic link; remove it or use --overwrite")
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise StoreError(
                f"{path}: unreadable progress record ({_one_line(exc)}); use --overwrite to "
                "start the run again"
            ) from None
        problem = None
        if not isinstance(data, dict):
            problem = "not a JSON object"
        else:
            for key, types in PROGRESS_TYPES.items():
                value = data.get(key, ...)
                bad_int = types == (int,) and (
                    isinstance(value, bool) or not (isinstance(value, int) and value >= 0)
                )
                if value is ... or not isinstance(value, types) or bad_int:
                    problem = f"field {key!r} is {'missing' if value is ... else repr(value)}"
                    break
            else:
                if data["moments_slot"] not in (None, "a", "b"):
                    problem = f"field 'moments_slot' is {data['moments_slot']!r}"
        if problem:
            raise StoreError(
                f"{path}: damaged progress record ({problem}); use --overwrite to start the "
                "run again"
            )
        return data

    @property
    def batches_done(self) -> int:
        p = self.read_progress()
        return 0 if p is None else int(p["batches_done"])

    @property
    def complete(self) -> bool:
        p = self.read_progress()
        return bool(p and p.get("complete"))

    # -- verification --------------------------------------------------------------------
    def _group(self, path: Path, *, mode: str = "r") -> zarr.Group:
        try:
            return zarr.open_group(path, mode=mode, zarr_format=3)
        except Exception as exc:  # noqa: BLE001 - any failure here is a damaged store
            raise StoreError(
                f"{path}: cannot be opened ({_one_line(exc)}); the store is damaged: use "
                "--overwrite to start the run again"
            ) from None

    def _array(self, grp: zarr.Group, path: Path, name: str) -> zarr.Array:
        try:
            arr = grp[name]
        except Exception as exc:  # noqa: BLE001 - deleted or corrupt metadata
            raise StoreError(
                f"{path}/{name}: array missing or its metadata damaged ({_one_line(exc)}); "
                "use --overwrite to start the run again"
            ) from None
        if not isinstance(arr, zarr.Array):
            raise StoreError(f"{path}/{name}: is not an array; use --overwrite to start again")
        return arr

    def verify(self, config: EnsembleConfig, inputs: Inputs | None = None) -> dict[int, str]:
        """Check ``progress.json`` against the arrays: ``{batch index: problem}`` for every
        finished batch whose row chunks are missing, damaged (checksum) or not finite.

        Structural damage (impossible progress fields, a missing array or damaged metadata)
        raises :class:`StoreError`. Damaged rows are returned, not raised: they are pure
        functions of the seed and can be recomputed (:meth:`write_rows`).
        """
        p = self.read_progress()
        if p is None:
            raise StoreError(f"{self.progress_path}: missing; use --overwrite to start again")
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
                f"{self.progress_path}: does not match the run ({problem}); use --overwrite to "
                "start the run again"
            )
        grp = self._group(self.path)
        shapes = None
        if inputs is not None:  # the shape of one replicate's row of each array
            shapes = {flux_var(f, "replicate_map"): (inputs.n_cells,) for f in OUTPUT_FLUXES}
            shapes.update(
                {flux_var(f, "replicate_total"): (inputs.n_years,) for f in OUTPUT_FLUXES}
            )
            shapes.update({VALIDATION: (len(TRAINED_FLUXES), len(METRICS)), REPLICATE_DONE: ()})
            for f in PREDICTIVE_FLUXES:
                for kind in ("pred_replicate_mean", "pred_replicate_second"):
                    shapes[flux_var(f, kind)] = (inputs.n_cells,)
            shapes[CALIBRATION] = (len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS))
            n_sites = sum(inputs.fluxes[f].y.size for f in TRAINED_FLUXES)
            shapes[S.SITE_FOREST_MEAN] = shapes[S.SITE_HELDOUT] = (n_sites,)
        damaged: dict[int, str] = {}
        for name in row_arrays(config):
            arr = self._array(grp, self.path, name)
            want = (config.n_replicates, *(shapes or {}).get(name, arr.shape[1:]))
            chunk = min(config.batch_size, config.n_replicates)
            if tuple(arr.shape) != want or arr.chunks[0] != chunk:
                raise StoreError(
                    f"{self.path}/{name}: shape {tuple(arr.shape)} in chunks of "
                    f"{arr.chunks[0]} replicates, the run needs {want} in chunks of {chunk}; "
                    "use --overwrite to start the run again"
                )
            for spec in specs[:nb]:
                if spec.index in damaged:
                    continue
                bad = self._check_rows(arr, name, spec)
                if bad:
                    damaged[spec.index] = bad
        return damaged

    def _check_rows(self, arr: zarr.Array, name: str, spec: BatchSpec) -> str | None:
        where = (
            f"{self.path.name}/{name} chunk {_chunk_key(arr.ndim, spec.index)} "
            f"(replicates {spec.start}-{spec.stop - 1})"
        )
        try:
            rows = arr[spec.start : spec.stop]
        except Exception as exc:  # noqa: BLE001 - checksum mismatch, truncated chunk
            return f"{where} is damaged ({_one_line(exc)})"
        ok = (rows == 1).all() if name == REPLICATE_DONE else np.isfinite(rows).all()
        return None if ok else f"{where} is missing or holds missing values"

    # -- creation ------------------------------------------------------------------------
    def _create(self, config: EnsembleConfig, inputs: Inputs) -> None:
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
            "flux": ("flux", np.array(TRAINED_FLUXES, dtype=object)),
            "metric": ("metric", np.array(METRICS, dtype=object)),
        }
        ds = xr.Dataset(coords=coords)
        for axis, clip in (("lat", {"lower": -90.0, "upper": 90.0}), ("lon", {})):
            ds[f"{axis}_bnds"] = ((axis, "bnds"), bounds_from_centres(preds[axis].values, **clip))
        ds[CELL_ILAT] = ("cell", inputs.cell_ilat.astype(np.int32))
        ds[CELL_ILON] = ("cell", inputs.cell_ilon.astype(np.int32))
        ds[CELL_AREA] = preds[CELL_AREA].astype(np.float64)
        ds[CELL_AREA].attrs.update(units="m2", standard_name=CELL_AREA)
        ds[LAND_FRACTION] = preds[LAND_FRACTION].astype(np.float64)
        ds[LAND_FRACTION].attrs.update(units="1", standard_name="land_area_fraction")
        ds[VEG_BIN] = preds[VEG_BIN].astype(np.int8)
        ds[VEG_BIN].attrs.update(
            long_name="vegetation bin (0 none, 1 EBF, 2 other forests, 3 shrublands, "
            "4 savannas+grasslands, 5 croplands)",
            flag_values=np.arange(6, dtype=np.int8),
            flag_meanings="none evergreen_broadleaf_forest other_forest shrubland "
            "savanna_and_grassland cropland",
        )
        ds[DOMAIN] = preds[DOMAIN].astype(np.int8)
        ds[DOMAIN].attrs.update(
            long_name="prediction domain (vegetated land), 1 = in",
            flag_values=np.array([0, 1], dtype=np.int8),
            flag_meanings="outside_domain inside_domain",
        )
        # the per-replicate arrays (empty: their chunks are written batch by batch), created
        # after the rest: name -> (dimensions, shape after replicate, dtype, attributes)
        rows: dict[str, tuple] = {}
        for f in OUTPUT_FLUXES:
            rows[flux_var(f, "replicate_map")] = (
                ("replicate", "cell"),
                (inputs.n_cells,),
                np.float32,
                flux_attrs(f, "replicate_map"),
            )
            rows[flux_var(f, "replicate_total")] = (
                ("replicate", "year"),
                (inputs.n_years,),
                np.float64,
                flux_attrs(f, "replicate_total"),
            )
        rows[VALIDATION] = (
            ("replicate", "flux", "metric"),
            (len(TRAINED_FLUXES), len(METRICS)),
            np.float64,
            {"long_name": "validation on the held-out records (r2: 1; rmse: g m-2 yr-1; r: 1)"},
        )
        rows[REPLICATE_DONE] = (
            ("replicate",),
            (),
            np.int8,
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
            srgpu_format=FORMAT_VERSION,
            climatology=int(preds.attrs.get("climatology", 0)),
        )
        if config.predictive != "none":
            ds = ds.assign_coords(
                cal_metric=("cal_metric", np.array(CALIBRATION_METRICS, dtype=object))
            )
            for f in PREDICTIVE_FLUXES:
                for kind in ("pred_replicate_mean", "pred_replicate_second"):
                    rows[flux_var(f, kind)] = (
                        FLUX_KINDS[kind].dims,
                        (inputs.n_cells,),
                        np.float32,
                        flux_attrs(f, kind),
                    )
            rows[CALIBRATION] = (
                ("replicate", "flux", "cal_metric"),
                (len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)),
                np.float64,
                {
                    "long_name": "calibration of each replicate's predictive distribution on its "
                    "held-out records (coverage: 1; crps: g m-2 yr-1; pit_i: share of PIT values "
                    "in bin i of 10)"
                },
            )
            n_sites = ds.sizes["site"]
            rows[S.SITE_FOREST_MEAN] = (
                ("replicate", "site"),
                (n_sites,),
                np.float64,
                {
                    "units": FLUX_UNITS,
                    "long_name": "each replicate's forest mean at every record of its flux "
                    "(the replicate-spread band at held-out records)",
                },
            )
            rows[S.SITE_HELDOUT] = (
                ("replicate", "site"),
                # float32 with NaN fill, like every row array: a lost chunk reads as missing
                (n_sites,),
                np.float32,
                {
                    "units": "1",
                    "long_name": "1 where the replicate held the record out, 0 where it "
                    "trained on it",
                },
            )
        ds = cf_coordinate_attrs(ds)  # last: assigning DataArrays replaces coordinate attrs
        encoding = {name: {"compressors": checksum_codecs()} for name in ds.variables}
        try:
            ds.to_zarr(self.path, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
            self._create_rows(rows, n_replicates=n_rep, chunk=min(config.batch_size, n_rep))
            self._create_work(config=config, inputs=inputs)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: cannot write the store ({exc.strerror or exc}); nothing was "
                f"computed: {self._retry(exc, 'to start')}"
            ) from None
        self._write_progress(config=config, batches_done=0, slot=None, count=0)

    def _create_rows(self, rows: dict[str, tuple], *, n_replicates: int, chunk: int) -> None:
        """Create the empty per-replicate arrays ``rows`` (name -> (dimensions, shape after
        ``replicate``, dtype, attributes)) in chunks of ``chunk`` replicates, straight through
        zarr (raises ``OSError``): the metadata xarray writes for such an array (NaN fill
        recorded in ``_FillValue`` as well, 0 for integers), without building the placeholder
        dask arrays it would need."""
        grp = zarr.open_group(self.path, mode="r+", zarr_format=3)
        for name, (dims, shape, dtype, attrs) in rows.items():
            floating = np.dtype(dtype).kind == "f"
            grp.create_array(
                name,
                shape=(n_replicates, *shape),
                chunks=(chunk, *shape),
                dtype=dtype,
                fill_value=np.nan if floating else 0,
                compressors=checksum_codecs(),
                dimension_names=dims,
                attributes={**attrs, "_FillValue": NAN_FILL} if floating else dict(attrs),
            )

    def _create_work(self, *, config: EnsembleConfig, inputs: Inputs) -> zarr.Group:
        """Create the work store: both moments slots and, with ``predictive = "quantiles"``,
        both slots of the pooled weights; every array NaN (raises ``OSError``)."""
        n_rows = inputs.n_rows
        grp = zarr.open_group(self.work, mode="w", zarr_format=3)
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
        old = {} if config is not None else (self.read_progress() or {})
        record = {
            "config_hash": config.hash() if config is not None else old["config_hash"],
            "inputs": self.inputs_sha if config is not None else old["inputs"],
            "batches_done": batches_done,
            "replicates_done": count,
            "moments_slot": slot,
            "complete": complete,
            "created": created,
        }
        try:
            atomic_write_text(self.progress_path, dumps_strict(record))
        except OSError as exc:
            raise StoreError(
                f"{self.progress_path}: cannot be written ({exc.strerror or exc}); the previous "
                f"record is kept: {self._retry(exc)}"
            ) from None

    # -- batches -------------------------------------------------------------------------
    def read_moments(self) -> dict[str, Moments] | None:
        """The merged moments of the finished batches (checksums and finiteness checked)."""
        p = self.read_progress()
        if p is None or p["moments_slot"] is None:
            return None
        if self.work.is_symlink() or not self.work.is_dir():
            raise StoreError(
                f"{self.work}: missing (or not a directory) while {p['batches_done']} batches "
                "are recorded; the merged moments cannot be rebuilt from the rows: use "
                "--overwrite to start the run again"
            )
        grp = self._group(self.work)
        slot, count = p["moments_slot"], int(p["replicates_done"])
        out: dict[str, Moments] = {}
        for f in OUTPUT_FLUXES:
            parts = {}
            for part in ("mean", "m2"):
                name = f"{slot}_{f}_{part}"
                arr = self._array(grp, self.work, name)
                values = np.empty(arr.shape, dtype=np.float64)
                step = arr.chunks[0]
                for i, r0 in enumerate(range(0, arr.shape[0], step)):
                    try:
                        values[r0 : r0 + step] = arr[r0 : r0 + step]
                    except Exception as exc:  # noqa: BLE001 - checksum, truncation
                        bad = f"is damaged ({_one_line(exc)})"
                    else:
                        ok = np.isfinite(values[r0 : r0 + step]).all()
                        bad = None if ok else "is missing or holds missing values"
                    if bad:
                        raise StoreError(
                            f"{self.work}/{name} chunk c/{i} {bad}; the merged moments cannot "
                            "be rebuilt from the rows: use --overwrite to start the run again"
                        )
                parts[part] = values
            out[f] = Moments(count=count, mean=parts["mean"], m2=parts["m2"])
        return out

    def _checked_rows(self, grp: zarr.Group, name: str, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0 .. r1-1`` of work array ``name``, float64; a damaged (checksum) or missing
        (NaN) chunk is a :class:`StoreError`."""
        arr = self._array(grp, self.work, name)
        try:
            values = np.asarray(arr[r0:r1], dtype=np.float64)
        except Exception as exc:  # noqa: BLE001 - checksum, truncation
            bad = f"is damaged ({_one_line(exc)})"
        else:
            bad = None if np.isfinite(values).all() else "is missing or holds missing values"
        if bad:
            raise StoreError(
                f"{self.work}/{name} rows {r0}-{r1 - 1} {bad}; the pooled weights cannot be "
                "rebuilt from the rows: use --overwrite to start the run again"
            )
        return values

    def read_weights(self) -> dict | None:
        """The pooled predictive weights of the finished batches (``predictive =
        "quantiles"``), per flux a :class:`~srgpu.forest.predictive.WeightAccumulator`
        (checksums and finiteness checked); ``None`` before the first batch."""
        from srgpu.forest.predictive import WeightAccumulator

        p = self.read_progress()
        if p is None or p["moments_slot"] is None:
            return None
        grp = self._group(self.work)
        out = {}
        for f in PREDICTIVE_FLUXES:
            w_name, t_name, c_name = weight_names(p["moments_slot"], f)
            arr = self._array(grp, self.work, w_name)
            weights = np.empty(arr.shape, dtype=np.float64)
            step = arr.chunks[0]
            for r0 in range(0, arr.shape[0], step):
                r1 = min(r0 + step, arr.shape[0])
                weights[r0:r1] = self._checked_rows(grp, w_name, r0, r1)
            n = arr.shape[0]
            out[f] = WeightAccumulator(
                weights=weights,
                totals=self._checked_rows(grp, t_name, 0, n),
                counts=self._checked_rows(grp, c_name, 0, n),
            )
        return out

    def _pooled_statistics(self, inputs: Inputs) -> dict[str, dict[str, np.ndarray]]:
        """Per flux, the order statistics of the pooled weights (:func:`pooled_order_statistics`)
        per cell, read from the work store chunk by chunk (bounded memory)."""
        p = self.read_progress()
        grp = self._group(self.work)
        out: dict[str, dict[str, np.ndarray]] = {}
        for f in PREDICTIVE_FLUXES:
            y_sorted = np.sort(np.asarray(inputs.fluxes[f].y, dtype=np.float64), kind="stable")
            w_name, t_name, c_name = weight_names(p["moments_slot"], f)
            arr = self._array(grp, self.work, w_name)
            n = arr.shape[0]
            totals = self._checked_rows(grp, t_name, 0, n)
            counts = self._checked_rows(grp, c_name, 0, n)
            stats = {k: np.empty(n) for k in PREDICTIVE_ORDER_KINDS}
            for r0 in range(0, n, arr.chunks[0]):
                r1 = min(r0 + arr.chunks[0], n)
                part = pooled_order_statistics(
                    self._checked_rows(grp, w_name, r0, r1),
                    totals[r0:r1],
                    counts[r0:r1],
                    y_sorted,
                )
                for k in stats:
                    stats[k][r0:r1] = part[k]
            out[f] = stats
        return out

    def _rows(self, result: BatchResult) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """A batch's replicate rows: array name -> (dimensions, values)."""
        rows: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        for f in OUTPUT_FLUXES:
            rows[flux_var(f, "replicate_map")] = (
                ("replicate", "cell"),
                result.maps[f].astype(np.float32),
            )
            rows[flux_var(f, "replicate_total")] = (("replicate", "year"), result.totals[f])
        rows[VALIDATION] = (("replicate", "flux", "metric"), result.validation)
        rows[REPLICATE_DONE] = (("replicate",), np.ones(result.spec.size, dtype=np.int8))
        for name, values in result.extra.items():
            rows[name] = (EXTRA_ROW_DIMS.get(name, ("replicate", "cell")), values)
        return rows

    def _write_row_arrays(self, result: BatchResult) -> None:
        """Write a batch's replicate rows into their arrays, straight through zarr (the arrays
        exist; each batch fills whole chunks along ``replicate``): the same chunks, bit for
        bit, as an xarray region write, without opening the whole store's metadata."""
        spec = result.spec
        grp = zarr.open_group(self.path, mode="r+", zarr_format=3)
        for name, (dims, values) in self._rows(result).items():
            arr = grp[name]
            values = np.asarray(values)
            want = (spec.size, *arr.shape[1:])
            if tuple(arr.metadata.dimension_names or ()) != dims or values.shape != want:
                raise ValueError(
                    f"{self.path}/{name}: rows of shape {values.shape} over {dims} do not fit "
                    f"the array's {want} over {arr.metadata.dimension_names}"
                )
            arr[spec.start : spec.stop] = values

    def write_rows(self, result: BatchResult) -> None:
        """Rewrite a finished batch's replicate rows (repair: rows are pure functions of the
        seed, so the recomputed rows are the lost ones, bit for bit); moments are untouched."""
        spec = result.spec
        try:
            self._write_row_arrays(result)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: rewriting batch {spec.index} failed ({exc.strerror or exc}); "
                f"{self._retry(exc, 'to try again')}"
            ) from None

    def write_batch(
        self, result: BatchResult, merged: dict[str, Moments], pooled: dict | None = None
    ) -> None:
        """Write one batch's replicate rows, the merged moments and (``predictive =
        "quantiles"``) the pooled weights of all finished batches, then record it as done."""
        spec = result.spec
        progress = self.read_progress()
        if progress is None or progress["batches_done"] != spec.index:
            raise StoreError(
                f"{self.path}: batch {spec.index} written out of order "
                f"(store has {None if progress is None else progress['batches_done']} batches)"
            )
        new_slot = "b" if progress["moments_slot"] == "a" else "a"
        try:
            self._write_row_arrays(result)
            grp = zarr.open_group(self.work, mode="r+")
            for f in OUTPUT_FLUXES:
                grp[f"{new_slot}_{f}_mean"][:] = np.asarray(merged[f].mean)
                grp[f"{new_slot}_{f}_m2"][:] = np.asarray(merged[f].m2)
            for f, acc in (pooled or {}).items():
                for name, values in zip(
                    weight_names(new_slot, f), (acc.weights, acc.totals, acc.counts), strict=True
                ):
                    grp[name][:] = values
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing batch {spec.index} failed ({exc.strerror or exc}); "
                f"nothing was recorded as done: {self._retry(exc)}"
            ) from None
        self._write_progress(
            batches_done=spec.index + 1, slot=new_slot, count=int(merged["SR"].count)
        )

    # -- finalisation --------------------------------------------------------------------
    def finalize(self, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int = 8192) -> dict:
        """Write the gridded results and ``summary.json``; return the summary.

        Idempotent: a finalisation that fails (disk full, killed) is simply run again by the
        same command; a failed write is a :class:`StoreError`, never a traceback. The caller
        verifies the rows first (:meth:`verify`); the moments are verified as they are read.
        """
        try:
            return self._finalize(config=config, inputs=inputs, cell_chunk=cell_chunk)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing the final results failed ({exc.strerror or exc}); "
                f"all batches are kept: {self._retry(exc, 'to finish')}"
            ) from None

    def _finalize(self, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int) -> dict:
        moments = self.read_moments()
        if moments is None:
            raise StoreError(f"{self.path}: no finished batch to summarise")
        ds = xr.open_zarr(self.path, consolidated=False, zarr_format=3)
        grp = self._group(self.path)  # the row arrays, read without dask
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
            maps = self._array(grp, self.path, flux_var(f, "replicate_map"))
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
                    self._array(grp, self.path, flux_var(f, "pred_replicate_mean")),
                    self._array(grp, self.path, flux_var(f, "pred_replicate_second")),
                )
                pm, psd = np.empty(n_cells), np.empty(n_cells)
                for (c0, c1, a), (_, _, b) in zip(blocks(first), blocks(second), strict=True):
                    pm[c0:c1], psd[c0:c1] = pooled_predictive(a, b)
                final[flux_var(f, "pred_mean")] = (("lat", "lon"), grid2d(pm))
                final[flux_var(f, "pred_sd")] = (("lat", "lon"), grid2d(psd))
        if quantiles:  # exact order statistics of the pooled weights
            for f, stats in self._pooled_statistics(inputs).items():
                for kind in PREDICTIVE_ORDER_KINDS:
                    final[flux_var(f, kind)] = (("lat", "lon"), grid2d(stats[kind]))
        for name in final.data_vars:
            final[name].attrs.update(attrs[name])
        final.attrs.update(ds.attrs)  # appending rewrites the root attributes
        final = cf_coordinate_attrs(final)  # and the coordinates
        existing = set(ds.variables)
        encoding = {
            name: {"compressors": checksum_codecs()}
            for name in final.data_vars
            if name not in existing
        }
        final.to_zarr(self.path, mode="a", zarr_format=3, consolidated=False, encoding=encoding)
        from srgpu.run.extend import keep_extension_state

        keep_extension_state(self, config)  # before the work store goes
        self._repair_attributes(predictive=predictive, quantiles=quantiles)
        # the store as written: the rows as opened above, the gridded results from memory
        # (the same values; no second opening of the store)
        summary = self._summary(
            config=config, inputs=inputs, cell_stats=cell_stats, store=ds.assign(final.data_vars)
        )
        atomic_write_text(self.summary_path, dumps_strict(summary))
        p = self.read_progress()
        self._write_progress(
            batches_done=p["batches_done"],
            slot=p["moments_slot"],
            count=p["replicates_done"],
            complete=True,
        )
        shutil.rmtree(self.work, ignore_errors=True)  # the merged moments are in the store now
        return strict_json(summary)

    def _summary(
        self,
        *,
        config: EnsembleConfig,
        inputs: Inputs,
        cell_stats: dict,
        store: xr.Dataset | None = None,
    ) -> dict:
        """:func:`~srgpu.run.summary.build_summary` of ``store`` (default: the store opened)."""
        from srgpu.run.summary import build_summary

        return build_summary(
            config=config,
            inputs=inputs,
            store=store
            if store is not None
            else xr.open_zarr(self.path, consolidated=False, zarr_format=3),
            cell_stats=cell_stats,
        )

    def _repair_attributes(
        self, *, consolidate: bool = True, predictive: bool = False, quantiles: bool = False
    ) -> list[str]:
        """Give every gridded result its attributes (units, long name, ...) where one lacks
        them; reconsolidate the metadata (always, or when something was repaired). Returns the
        names repaired."""
        grp = self._group(self.path, mode="r+")
        repaired = []
        for name, want in final_attributes(predictive=predictive, quantiles=quantiles).items():
            arr = self._array(grp, self.path, name)
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
            zarr.consolidate_metadata(str(self.path), zarr_format=3)
        return repaired

    def reopen_complete(self, *, config: EnsembleConfig, inputs: Inputs) -> tuple[dict, list[str]]:
        """A complete store opened again: check its gridded results (readable, attributes),
        repair lost attributes, and rebuild ``summary.json`` from the store when it is missing
        or damaged. Returns ``(summary, notes)``; the caller verifies the rows first."""
        notes: list[str] = []
        try:
            grp = self._group(self.path)
            predictive = config.predictive != "none"
            quantiles = config.predictive == "quantiles"
            for name in final_attributes(predictive=predictive, quantiles=quantiles):
                arr = self._array(grp, self.path, name)
                try:
                    arr[...]
                except Exception as exc:  # noqa: BLE001 - checksum, truncation
                    raise StoreError(
                        f"{self.path}/{name}: damaged ({_one_line(exc)}); the gridded results "
                        "need the merged moments, which a complete run no longer keeps: use "
                        "--overwrite to compute the run again"
                    ) from None
            repaired = self._repair_attributes(
                consolidate=False, predictive=predictive, quantiles=quantiles
            )
            if repaired:
                notes.append(f"restored the attributes of {', '.join(repaired)}")
            summary = None
            try:
                summary = json.loads(self.summary_path.read_text())
            except (OSError, ValueError):
                pass
            if not isinstance(summary, dict) or summary.get("config_hash") not in (
                config.hash(),
                self.legacy_hash,
            ):
                summary = strict_json(self._rebuild_summary(config=config, inputs=inputs))
                atomic_write_text(self.summary_path, dumps_strict(summary))
                notes.append(f"rebuilt {self.summary_path.name} from the store")
        except OSError as exc:
            raise StoreError(
                f"{self.out}: repairing the complete store failed ({exc.strerror or exc}); "
                f"{self._retry(exc, 'to try again')}"
            ) from None
        return summary, notes

    def _rebuild_summary(self, *, config: EnsembleConfig, inputs: Inputs) -> dict:
        ds = xr.open_zarr(self.path, consolidated=False, zarr_format=3)
        ilat, ilon = inputs.cell_ilat, inputs.cell_ilon
        cell_stats = {
            f: {
                "mean": np.asarray(ds[f].values)[ilat, ilon],
                "sd": np.asarray(ds[flux_var(f, "sd_map")].values)[ilat, ilon],
                "mad": np.asarray(ds[flux_var(f, "mad")].values)[ilat, ilon],
            }
            for f in OUTPUT_FLUXES
        }
        return self._summary(config=config, inputs=inputs, cell_stats=cell_stats)


def _site_variables(inputs: Inputs) -> xr.Dataset:
    frames = [inputs.fluxes[f].table.assign(flux=f) for f in TRAINED_FLUXES]
    import pandas as pd

    t = pd.concat(frames, ignore_index=True)
    ds = xr.Dataset()
    ds[S.SITE_FLUX] = ("site", t["flux"].to_numpy().astype(object))
    ds[S.SITE_VALUE] = ("site", t["value"].to_numpy(np.float64), {"units": FLUX_UNITS})
    for col, name in (("lat", S.SITE_LAT), ("lon", S.SITE_LON), ("year", S.SITE_YEAR)):
        ds[name] = ("site", t[col].to_numpy(np.float64))
    ds[S.SITE_LAT].attrs["units"] = "degrees_north"
    ds[S.SITE_LON].attrs["units"] = "degrees_east"
    for col, name in (
        ("ilat", S.SITE_ILAT),
        ("ilon", S.SITE_ILON),
        ("iyear", S.SITE_IYEAR),
        (VEG_BIN, S.SITE_VEG_BIN),
    ):
        ds[name] = ("site", t[col].to_numpy(np.int32))
    for col, name in (("study", S.SITE_STUDY), ("record_id", S.SITE_RECORD_ID)):
        ds[name] = ("site", pd.to_numeric(t[col], errors="coerce").fillna(-1).to_numpy(np.int64))
    return ds
