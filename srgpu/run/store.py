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

The store's parts, one module each: :mod:`srgpu.run.safe_io` (atomic writes, strict JSON,
checksums, damaged-chunk checks), :mod:`srgpu.run.progress` (the progress record),
:mod:`srgpu.run.store_layout` (the arrays, creating the store, writing a batch's rows),
:mod:`srgpu.run.work_store` (the merged moments and pooled weights), :mod:`srgpu.run.resume`
(create, resume, extend or refuse; clear; verify) and :mod:`srgpu.run.final_results` (the
gridded results and ``summary.json``). :class:`EnsembleStore` owns a run's directory and its
lock and calls them; they take it as a :class:`~srgpu.run.run_dir.RunDir` (its paths and what
opening it found), so that none of them depends on this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from srgpu.config import EnsembleConfig
from srgpu.data.inputs import Inputs
from srgpu.errors import StoreError
from srgpu.run import final_results, resume, work_store
from srgpu.run.batch import BatchResult
from srgpu.run.guard import OutLock, check_out_dir
from srgpu.run.progress import read_progress, write_progress
from srgpu.run.run_dir import RunDir
from srgpu.run.stats import Moments
from srgpu.run.store_layout import write_row_arrays


class EnsembleStore(RunDir):
    """A run's output directory. Use :meth:`open` to create or resume one (it holds the
    directory's lock until :meth:`close`)."""

    def __init__(self, out: Path):
        super().__init__(out)
        self.lock = OutLock(self.out)

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
            resume.create_or_resume(store, config=config, inputs=inputs, overwrite=overwrite)
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

    def read_progress(self) -> dict[str, Any] | None:
        """The progress record, its fields checked (:func:`srgpu.run.progress.read_progress`)."""
        return read_progress(self)

    @property
    def batches_done(self) -> int:
        p = self.read_progress()
        return 0 if p is None else int(p["batches_done"])

    @property
    def complete(self) -> bool:
        p = self.read_progress()
        return bool(p and p.get("complete"))

    # -- verification --------------------------------------------------------------------
    def verify(self, config: EnsembleConfig, inputs: Inputs | None = None) -> dict[int, str]:
        """``{batch index: problem}`` for every finished batch whose rows are missing, damaged
        or not finite (:func:`srgpu.run.resume.verify`)."""
        return resume.verify(self, config, inputs)

    # -- batches -------------------------------------------------------------------------
    def read_moments(self) -> dict[str, Moments] | None:
        """The merged moments of the finished batches
        (:func:`srgpu.run.work_store.read_moments`)."""
        return work_store.read_moments(self)

    def read_weights(self) -> dict | None:
        """The pooled predictive weights of the finished batches
        (:func:`srgpu.run.work_store.read_weights`)."""
        return work_store.read_weights(self)

    def write_rows(self, result: BatchResult) -> None:
        """Rewrite a finished batch's replicate rows (repair: rows are pure functions of the
        seed, so the recomputed rows are the lost ones, bit for bit); moments are untouched."""
        spec = result.spec
        try:
            write_row_arrays(self, result)
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
            write_row_arrays(self, result)
            work_store.write_slot(self, new_slot, merged, pooled)
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing batch {spec.index} failed ({exc.strerror or exc}); "
                f"nothing was recorded as done: {self._retry(exc)}"
            ) from None
        write_progress(
            self, batches_done=spec.index + 1, slot=new_slot, count=int(merged["SR"].count)
        )

    # -- finalisation --------------------------------------------------------------------
    def finalize(self, *, config: EnsembleConfig, inputs: Inputs, cell_chunk: int = 8192) -> dict:
        """Write the gridded results and ``summary.json``; return the summary.

        Idempotent: a finalisation that fails (disk full, killed) is simply run again by the
        same command; a failed write is a :class:`StoreError`, never a traceback. The caller
        verifies the rows first (:meth:`verify`); the moments are verified as they are read.
        """
        try:
            return final_results.write_final_results(
                self, config=config, inputs=inputs, cell_chunk=cell_chunk
            )
        except OSError as exc:
            raise StoreError(
                f"{self.out}: writing the final results failed ({exc.strerror or exc}); "
                f"all batches are kept: {self._retry(exc, 'to finish')}"
            ) from None

    def reopen_complete(self, *, config: EnsembleConfig, inputs: Inputs) -> tuple[dict, list[str]]:
        """A complete store opened again, checked and repaired; ``(summary, notes)``
        (:func:`srgpu.run.final_results.reopen_complete`)."""
        return final_results.reopen_complete(self, config=config, inputs=inputs)
