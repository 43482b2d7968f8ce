"""Driver sources: files, directories, globs and Zarr stores expanded and opened."""

from __future__ import annotations

import glob
import warnings
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from srgpu.data.drivers.grid import normalise_grid
from srgpu.data.drivers.roles import Source
from srgpu.errors import InputError


def expand_sources(
    sources: Sequence[str | Path | xr.Dataset] | str | Path | xr.Dataset,
) -> list[str | Path | xr.Dataset]:
    """Expand directories (``*.nc``, ``*.nc4``, ``*.zarr`` in them) and globs, in sorted order."""
    if isinstance(sources, (str, Path, xr.Dataset)):
        sources = [sources]
    out: list[str | Path | xr.Dataset] = []
    for src in sources:
        if isinstance(src, xr.Dataset):
            out.append(src)
            continue
        text = str(src)
        path = Path(text)
        if any(c in text for c in "*?[") and not path.exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError("no file matches this pattern", file=text)
            out.extend(Path(m) for m in matches)
        elif (
            path.is_dir()
            and path.suffix != ".zarr"
            and not (path / "zarr.json").exists()
            and not (path / ".zgroup").exists()
        ):
            matches = sorted(
                p
                for p in path.iterdir()
                if p.suffix in (".nc", ".nc4", ".zarr") and not p.name.startswith(".")
            )
            if not matches:
                raise InputError("directory holds no .nc/.nc4/.zarr file", file=text)
            out.extend(matches)
        else:
            out.append(path)
    return out


def open_source(src: str | Path | xr.Dataset, *, index: int = 0) -> Source:
    """Open one source lazily (dask-backed for files) and normalise its grid."""
    if isinstance(src, xr.Dataset):
        label = f"<dataset {index}>"
        ds = src
    else:
        path = Path(src)
        label = str(path)
        if not path.exists():
            raise InputError("file not found", file=label)
        try:
            if path.is_dir():
                with warnings.catch_warnings():
                    # a store without consolidated metadata is fine (read it key by key)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ds = xr.open_zarr(path, chunks={})
            else:
                ds = xr.open_dataset(path, chunks={})
                if "time" in ds.dims and ds.sizes["time"] > 12:  # read a year at a time
                    ds.close()
                    ds = xr.open_dataset(path, chunks={"time": 12})
        except Exception as exc:  # noqa: BLE001 - any backend failure is an input problem
            raise InputError(
                f"cannot read as NetCDF or Zarr: {one_line(exc)}", file=label
            ) from None
    return Source(label, normalise_grid(ds, label=label))


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (library messages can span several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def open_sources(sources: Sequence[str | Path | xr.Dataset], *, start: int = 0) -> list[Source]:
    """Expand and open every source (see :func:`expand_sources`)."""
    return [open_source(s, index=start + i) for i, s in enumerate(expand_sources(sources))]
