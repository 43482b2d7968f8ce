"""``OUT/progress.json``, the single record of what a run has done (see :mod:`srgpu.run.store`):
its fields and their JSON types, read back checked and written atomically."""

from __future__ import annotations

import json
from typing import Any

from srgpu.config import EnsembleConfig
from srgpu.errors import StoreError
from srgpu.run.run_dir import RunDir
from srgpu.run.safe_io import atomic_write_text, dumps_strict, error_line

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


def read_progress(store: RunDir) -> dict[str, Any] | None:
    """The progress record, its fields checked (a damaged one is a :class:`StoreError`)."""
    path = store.progress_path
    if path.is_symlink():
        raise StoreError(f"{path}: is a symbolic link; remove it or use --overwrite")
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path}: unreadable progress record ({error_line(exc)}); use --overwrite to "
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
            f"{path}: damaged progress record ({problem}); use --overwrite to start the run again"
        )
    return data


def write_progress(
    store: RunDir,
    *,
    config: EnsembleConfig | None = None,
    batches_done: int,
    slot: str | None,
    count: int,
    complete: bool = False,
    created: bool = True,
) -> None:
    """Record ``batches_done`` batches (``count`` replicates, merged moments in ``slot``)
    atomically; the config hash and input fingerprints come from ``config`` and the store, or,
    without ``config``, from the record on disk. A failed write keeps the previous record."""
    old = {} if config is not None else (read_progress(store) or {})
    record = {
        "config_hash": config.hash() if config is not None else old["config_hash"],
        "inputs": store.inputs_sha if config is not None else old["inputs"],
        "batches_done": batches_done,
        "replicates_done": count,
        "moments_slot": slot,
        "complete": complete,
        "created": created,
    }
    try:
        atomic_write_text(store.progress_path, dumps_strict(record))
    except OSError as exc:
        raise StoreError(
            f"{store.progress_path}: cannot be written ({exc.strerror or exc}); the previous "
            f"record is kept: {store._retry(exc)}"
        ) from None
