"""What the report reads: the ensemble store, its summary and comparison tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import xarray as xr

from srgpu.results import open_run
from srgpu.schema import CELL_AREA, DOMAIN, LAND_FRACTION, OUTPUT_FLUXES


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


def open_store(path: str | Path) -> tuple[xr.Dataset, dict, Path]:
    """The finished run at ``path`` (``OUT`` or ``OUT/ensemble.zarr``) through
    :func:`srgpu.results.open_run`: ``(dataset, summary, store path)``."""
    run = open_run(path, required=(*OUTPUT_FLUXES, CELL_AREA, LAND_FRACTION, DOMAIN), summary=True)
    return run.dataset, run.summary, run.store_path
