"""Where a run's input files are, so that a finished run can be re-read from any directory.

The config stores the paths as the user typed them (often relative to the directory the run was
started in); changing them would change the config's hash. ``srgpu ensemble`` therefore also
writes ``OUT/inputs.json`` (:func:`record_inputs`): the working directory, and each input's
absolute path and size. :func:`resolve_inputs` turns the config's paths back into files that
exist, trying in order: the path itself if absolute; the recorded absolute path; the path
relative to the current directory; relative to the folder holding ``OUT`` (runs made before the
record existed, started beside ``OUT``). A file found nowhere, or found with another size than
recorded, is an :class:`~srgpu.errors.InputError` that says where it was and what to do.
"""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path
from typing import Any

from srgpu.config import EnsembleConfig
from srgpu.errors import InputError

__all__ = ["RECORD_NAME", "record_inputs", "resolve_inputs"]

RECORD_NAME = "inputs.json"


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _exists(path: Path) -> bool:
    text = str(path)
    return bool(glob.glob(text)) if _is_glob(text) and not path.exists() else path.exists()


def _paths(config: EnsembleConfig) -> list[str]:
    out = [config.srdb] if config.srdb else []
    out += list(config.drivers)
    if config.vegetation:
        out.append(config.vegetation)
    return out


def record_inputs(config: EnsembleConfig, out: str | Path) -> Path | None:
    """Write ``OUT/inputs.json`` for ``config``'s input paths (nothing for the demo world)."""
    if config.is_demo:
        return None
    cwd = Path.cwd()
    files: dict[str, Any] = {}
    for text in _paths(config):
        path = Path(text) if Path(text).is_absolute() else cwd / text
        entry: dict[str, Any] = {"path": str(path)}
        if path.is_file():
            entry["size"] = path.stat().st_size
        files[text] = entry
    target = Path(out) / RECORD_NAME
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"cwd": str(cwd), "files": files}, indent=1))
    os.replace(tmp, target)
    return target


def _read_record(out: Path) -> dict[str, Any]:
    path = out / RECORD_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable record of the run's inputs ({exc})", file=path) from None
    return data if isinstance(data, dict) else {}


def resolve_inputs(config: EnsembleConfig, out: str | Path) -> EnsembleConfig:
    """``config`` with its SRDB, driver and vegetation paths replaced by ones that exist from the
    current directory (see the module docstring); the demo world is returned unchanged."""
    if config.is_demo:
        return config
    out = Path(out)
    record = _read_record(out)
    files = record.get("files", {})
    mapping: dict[str, str] = {}
    for text in _paths(config):
        entry = files.get(text, {})
        recorded = entry.get("path")
        given = Path(text)
        candidates = (
            [given]
            if given.is_absolute()
            else [Path(p) for p in (recorded,) if p] + [given, out.resolve().parent / given]
        )
        found = next((c for c in candidates if _exists(c)), None)
        if found is None:
            where = recorded or str(given)
            raise InputError(
                "an input of this run is not where it was (moved or deleted?)",
                file=where,
                expected=f"the file {text!r} of the run's config: put it back, or run from "
                f"{record.get('cwd', 'the directory the run was started in')}",
            )
        size = entry.get("size")
        if size is not None and found.is_file() and found.stat().st_size != size:
            raise InputError(
                "an input of this run changed since the run (another size)",
                file=found,
                value=found.stat().st_size,
                expected=f"{size} bytes, the file the run read: restore it, or rerun srgpu "
                "ensemble with --overwrite on the inputs as they are now",
            )
        mapping[text] = str(found)
    return config.replace(
        srdb=mapping.get(config.srdb) if config.srdb else None,
        drivers=tuple(mapping[d] for d in config.drivers),
        vegetation=mapping.get(config.vegetation) if config.vegetation else None,
    )
