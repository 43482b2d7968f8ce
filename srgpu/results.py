"""The one reader of a finished run: :func:`open_run`.

Every consumer of a run's output (``srgpu compare``, ``srgpu report``, ``srgpu explain``, the
estimator's ``open_store``) opens it here, so that they accept the same paths and apply the same
checks:

* ``path`` may be the run's output directory ``OUT`` or its store ``OUT/ensemble.zarr``;
* the store must be a Zarr store written by srgpu (its ``srgpu_format`` attribute; stores written
  before the attribute existed are format 1, the same layout), with a ``config`` attribute;
* with ``complete=True`` (the default) the run must be finished: a store whose
  ``progress.json`` does not say ``complete`` is refused (a store copied without its progress
  record is taken as it is: its variables are checked through ``required``);
* every chunk is read once and must pass its checksum (``verify``);
* ``summary=True`` also requires the ``summary.json`` beside the store (the report needs it);
* variables named in ``required`` must be present.

Every failure is an :class:`~srgpu.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

import json
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from srgpu.config import EnsembleConfig
from srgpu.errors import InputError
from srgpu.schema import FORMAT_VERSION

__all__ = ["Run", "derived_outputs", "locate_run", "open_run"]

STORE_NAME = "ensemble.zarr"
SUMMARY_NAME = "summary.json"
PROGRESS_NAME = "progress.json"

DERIVED_FILES = (
    "explain.nc",
    *(
        f"{f}_{kind}.png"
        for f in ("SR", "HR")
        for kind in ("importance", "partial_dependence", "aoa")
    ),
)
"""Files that srgpu's other commands (``explain``) write into a run's folder from its forests
or its results."""
DERIVED_DIRS = {"report": "report.html", "compare": "global_totals.csv"}
"""Folders that ``report`` and ``compare`` write into a run's folder, each with the file that
marks it as srgpu's (a folder without it is not srgpu's)."""


def derived_outputs(out: str | Path) -> list[str]:
    """The outputs of ``explain``, ``report`` and ``compare`` present in the run folder ``out``
    (folders with a trailing ``/``): they describe the run as it was when they were made."""
    out = Path(out)
    found = [n for n in DERIVED_FILES if (out / n).is_file() and not (out / n).is_symlink()]
    found += [
        n + "/"
        for n, marker in DERIVED_DIRS.items()
        if (out / n).is_dir() and not (out / n).is_symlink() and (out / n / marker).is_file()
    ]
    return found


@dataclass(frozen=True)
class Run:
    """A finished (or, with ``complete=False``, a started) run, opened for reading.

    ``dataset`` is the lazy xarray view of ``ensemble.zarr``; ``summary`` the parsed
    ``summary.json`` (``None`` where there is none); ``config`` the effective config the run was
    made with (``None`` for a store written by other software in srgpu's layout, such as a test
    fixture); ``format_version`` the store layout version.
    """

    out: Path
    store_path: Path
    summary_path: Path
    dataset: xr.Dataset
    summary: dict[str, Any] | None
    config: EnsembleConfig | None
    format_version: int

    def require_config(self) -> EnsembleConfig:
        """The run's config; an :class:`InputError` for a store without one."""
        if self.config is None:
            raise InputError(
                "the store has no config attribute",
                file=self.store_path,
                field="config",
                expected="a store written by srgpu ensemble",
            )
        return self.config

    @property
    def is_climatology(self) -> bool:
        """True when the drivers were a climatology (one period, no calendar years)."""
        return bool(int(self.dataset.attrs.get("climatology", 0)))


def locate_run(path: str | Path) -> tuple[Path, Path]:
    """``OUT`` or ``OUT/ensemble.zarr`` -> ``(OUT, OUT/ensemble.zarr)``, checking existence."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such ensemble output", file=path, expected=f"OUT or OUT/{STORE_NAME}")
    if (path / STORE_NAME).exists():
        return path, path / STORE_NAME
    if path.is_dir() and (path / "zarr.json").exists():
        return path.parent, path
    raise InputError(
        "not an srgpu ensemble output",
        file=path,
        expected=f"the output directory of srgpu ensemble (OUT) or OUT/{STORE_NAME}",
    )


def _open_dataset(store_path: Path) -> xr.Dataset:
    try:
        with warnings.catch_warnings():  # stores written without consolidated metadata
            warnings.simplefilter("ignore")
            return xr.open_zarr(store_path, consolidated=None)
    except Exception as exc:
        raise InputError(
            f"cannot be opened as Zarr ({type(exc).__name__})",
            file=store_path,
            expected="an srgpu ensemble store (docs/store.md)",
        ) from None


def _read_json(path: Path, *, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read the {what} ({exc.strerror})", file=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"the {what} is not valid JSON ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} is not a JSON object", file=path)
    return data


def _is_complete(out: Path) -> bool:
    progress = out / PROGRESS_NAME
    if progress.exists():
        return bool(_read_json(progress, what="progress record").get("complete"))
    return True  # a store copied without its progress record: judged by its variables


def open_run(
    path: str | Path,
    *,
    required: Iterable[str] = (),
    complete: bool = True,
    summary: bool = False,
    verify: bool = True,
) -> Run:
    """Open the run at ``path`` (``OUT`` or ``OUT/ensemble.zarr``) for reading.

    ``required``: store variables that must exist (an :class:`InputError` names the first one
    missing). ``complete``: refuse a run that has not finished (its maps and summary are not
    written until every replicate is done). ``summary``: require ``summary.json``. ``verify``:
    read every chunk once (checksums) so that a damaged one is named
    (:func:`srgpu.run.safe_io.check_store_readable`) instead of failing deep inside a reader.
    """
    out, store_path = locate_run(path)
    summary_path = out / SUMMARY_NAME
    finished = _is_complete(out)
    if complete and not finished:
        raise InputError(
            "the run is not finished (its maps and summary are written when every replicate is "
            "done)",
            file=store_path,
            expected="a complete run: rerun the same srgpu ensemble command to finish it",
        )
    if summary and not summary_path.exists():
        raise InputError(
            "no summary.json beside the store (is the run finished?)",
            file=summary_path,
            expected="the summary that srgpu ensemble writes when every replicate is done",
        )
    if verify:
        from srgpu.run.safe_io import check_store_readable

        check_store_readable(store_path)
    ds = _open_dataset(store_path)
    version = int(ds.attrs.get("srgpu_format", 1))
    if version > FORMAT_VERSION:
        raise InputError(
            "store written by a newer srgpu",
            file=store_path,
            field="srgpu_format",
            value=version,
            expected=f"format <= {FORMAT_VERSION} (upgrade srgpu)",
        )
    config = None
    if "config" in ds.attrs:
        try:
            config = EnsembleConfig.from_dict(
                tomllib.loads(ds.attrs["config"]), source=f"{store_path} config"
            )
        except tomllib.TOMLDecodeError as exc:
            raise InputError(
                f"the stored config is not valid TOML ({exc})", file=store_path, field="config"
            ) from None
    for name in required:
        if name not in ds.variables:
            raise InputError(
                "ensemble store lacks a variable",
                file=store_path,
                field=name,
                expected="the layout of docs/store.md",
            )
    parsed = _read_json(summary_path, what="summary") if summary_path.exists() else None
    return Run(
        out=out,
        store_path=store_path,
        summary_path=summary_path,
        dataset=ds,
        summary=parsed,
        config=config,
        format_version=version,
    )
