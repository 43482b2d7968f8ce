"""Safe reading and writing of a run's files.

Text files (``progress.json``, ``summary.json``) are written through a temporary file and an
atomic rename, as strict JSON; every array is compressed with a crc32c checksum
(:func:`checksum_codecs`), so that a damaged chunk fails to read, and the checks here name the
array and the chunk in one line (:class:`~srgpu.errors.InputError` for a reader,
:class:`~srgpu.errors.StoreError` for a run) instead of a traceback.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from srgpu.errors import InputError, StoreError


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
            return f"c ({error_line(exc)})"
        return None
    for coords in itertools.product(*(range(n) for n in arr.cdata_shape)):
        try:
            arr.blocks[coords]
        except Exception as exc:  # noqa: BLE001 - checksum mismatch, truncated chunk
            return f"c/{'/'.join(map(str, coords))} ({error_line(exc)})"
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
            f"cannot be opened as Zarr ({error_line(exc)})",
            file=zarr_path,
            expected="an srgpu ensemble store (docs/store.md)",
        ) from None
    for name in names:
        try:
            arr = grp[name]
        except Exception as exc:  # noqa: BLE001 - damaged metadata
            raise InputError(
                f"array metadata damaged ({error_line(exc)})", file=zarr_path, field=name
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


def store_group(path: Path, *, mode: str = "r") -> zarr.Group:
    """The Zarr v3 group at ``path``; one that cannot be opened is a damaged store
    (:class:`StoreError`)."""
    try:
        return zarr.open_group(path, mode=mode, zarr_format=3)
    except Exception as exc:  # noqa: BLE001 - any failure here is a damaged store
        raise StoreError(
            f"{path}: cannot be opened ({error_line(exc)}); the store is damaged: use "
            "--overwrite to start the run again"
        ) from None


def store_array(grp: zarr.Group, path: Path, name: str) -> zarr.Array:
    """Array ``name`` of ``grp`` (the group at ``path``); a missing one, damaged metadata or a
    group in its place is a :class:`StoreError`."""
    try:
        arr = grp[name]
    except Exception as exc:  # noqa: BLE001 - deleted or corrupt metadata
        raise StoreError(
            f"{path}/{name}: array missing or its metadata damaged ({error_line(exc)}); "
            "use --overwrite to start the run again"
        ) from None
    if not isinstance(arr, zarr.Array):
        raise StoreError(f"{path}/{name}: is not an array; use --overwrite to start again")
    return arr


def error_line(exc: BaseException) -> str:
    """``exc`` as one line: its type and its message with the white space folded."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
