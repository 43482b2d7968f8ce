"""A run's output directory as the store's parts see it: where its four files are, what opening
it found, the fix a failed write suggests, and removing srgpu's own files (never another's).

:class:`~srgpu.run.store.EnsembleStore` is one (it adds the directory's lock and the run's
operations); the parts (:mod:`srgpu.run.progress`, :mod:`srgpu.run.store_layout`,
:mod:`srgpu.run.work_store`, :mod:`srgpu.run.resume`, :mod:`srgpu.run.final_results`) take it
as ``store`` and need no more than this.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

from srgpu.errors import StoreError
from srgpu.run.guard import written_by_srgpu


class RunDir:
    """The places srgpu writes in ``out`` and the state an opening records."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / "ensemble.zarr"
        self.work = self.out / "work.zarr"
        self.progress_path = self.out / "progress.json"
        self.summary_path = self.out / "summary.json"
        self.inputs_sha: dict[str, str] = {}
        self.resumed_from: int | None = None  # batches done when an existing run was reopened
        # the hash recorded by a run written before the [train]/[predict] tables, when its
        # config, translated, is this run's (see srgpu.run.resume._legacy_hash)
        self.legacy_hash: str | None = None
        self.extended_from: int | None = None  # replicates of a finished run being extended

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
