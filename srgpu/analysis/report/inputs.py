"""What the report reads: the ensemble store, its summary and comparison tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from srgpu.errors import InputError
from srgpu.run.store import open_ensemble_dataset


@dataclass
class ReportData:
    """Everything the report draws from: the opened store, its summary and comparison tables."""

    store: xr.Dataset
    summary: dict
    store_path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    compare_meta: dict = field(default_factory=dict)

    @property
    def model_names(self) -> list[str]:
        gt = self.tables.get("global_totals")
        if gt is None or gt.empty:
            return []
        return [s for s in dict.fromkeys(gt["source"]) if s != "RF"]


def locate_store(path: str | Path) -> tuple[Path, Path]:
    """``OUT`` or ``OUT/ensemble.zarr`` -> (the Zarr store, ``summary.json`` beside it)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such ensemble output", file=path, expected="OUT or OUT/ensemble.zarr")
    zarr = path / "ensemble.zarr" if (path / "ensemble.zarr").exists() else path
    summary = zarr.parent / "summary.json"
    if not summary.exists():
        raise InputError(
            "no summary.json beside the store (is the run finished?)",
            file=summary,
            expected="the summary that srgpu ensemble writes when every replicate is done",
        )
    return zarr, summary


def open_store(path: str | Path) -> tuple[xr.Dataset, dict, Path]:
    """Open the ensemble store and its summary; the store is loaded into memory (it holds
    time-mean maps and per-replicate maps, not the forests)."""
    zarr, summary_path = locate_store(path)
    store = open_ensemble_dataset(
        zarr, required=("SR", "HR", "AR", "cell_area", "land_fraction", "domain")
    )
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", file=summary_path) from None
    return store, summary, zarr
