"""The result of a model comparison, and the directory format that holds it.

:func:`srgpu.analysis.compare.compare` returns a :class:`CompareResult`; ``srgpu compare``
writes it with :meth:`CompareResult.write` and ``srgpu report --compare DIR`` reads it back with
:meth:`CompareResult.read`. The directory holds:

* ``NAME.csv`` and ``NAME.json`` (records) for every score table (``global_totals``,
  ``site_scores``, ``taylor``, ``uncertainty_scores``, ``biome_cv``, ``latitudinal_profiles``,
  ``relationships``, ``model_globals``, ``reference_lu2021``), units in ``docs/compare.md``;
* ``maps.nc``: the ensemble's and every model's time-mean maps on the ensemble grid
  (:func:`srgpu.analysis.compare.scores.comparison_maps`);
* ``compare.json``: the options (store, method, root_fraction, years, band_deg), the
  uncertainty band used by ``uncertainty_scores`` (``band``: used, requested, definition, per
  flux, notes; :mod:`srgpu.analysis.compare.bands`) and, per model, its path, comparison period,
  notes and source variables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from srgpu.errors import InputError

META_FILE = "compare.json"
MAPS_FILE = "maps.nc"
MARKER_TABLE = "global_totals"
"""The table whose CSV marks a directory as a comparison output."""

SCORE_TABLES: tuple[tuple[str, str, list[str] | None], ...] = (
    (
        "global_totals",
        "Global totals (Pg C yr-1)",
        [
            "source",
            "flux",
            "total_pg",
            "total_domain_pg",
            "rf_q025",
            "rf_q975",
            "in_band",
            "diff_pct",
            "period",
        ],
    ),
    (
        "site_scores",
        "Against the SRDB sites (g C m-2 yr-1)",
        ["source", "flux", "n", "r", "rmse", "bias", "obs_mean", "sim_mean"],
    ),
    (
        "taylor",
        "Taylor statistics against the ensemble map",
        ["source", "flux", "sd_norm", "r", "crmsd_norm", "bias", "bias_pct"],
    ),
    (
        "uncertainty_scores",
        "Against the ensemble with its uncertainty",
        ["source", "flux", "band", "mean_abs_z", "z_score", "within_2sd", "ilamb_bias_score"],
    ),
    ("biome_cv", "Spread across models per vegetation bin", None),
    ("model_globals", "Models' global values", None),
)
"""The score tables in reading order: (name, title with units, columns shown; ``None``: all).
``srgpu compare`` prints the first ones, ``srgpu report`` shows them all."""


@dataclass
class CompareResult:
    """Score tables, options and per-model notes of one comparison.

    ``comparison`` (the regridded fields, :class:`~srgpu.analysis.compare.scores.Comparison`)
    and ``run_out`` (the compared run's ``OUT`` directory) are present for a comparison run in
    this process and ``None`` for one read from disk.
    """

    tables: dict[str, pd.DataFrame]
    meta: dict[str, Any]
    comparison: Any = field(default=None, repr=False)
    run_out: Path | None = None

    @property
    def default_dir(self) -> Path | None:
        """Where ``srgpu compare`` writes by default: ``OUT/compare`` of the compared run."""
        return None if self.run_out is None else self.run_out / "compare"

    @property
    def model_names(self) -> list[str]:
        """The compared models, in the order given."""
        return list(self.meta.get("models", {}))

    @property
    def band(self) -> str | None:
        """The uncertainty band of ``uncertainty_scores`` (``"spread"`` or ``"predictive"``;
        ``None`` for a comparison written before the choice existed: the spread)."""
        b = self.meta.get("band")
        return b.get("used") if isinstance(b, dict) else None

    def notes(self, model: str) -> list[str]:
        """What the reader and the comparison noted about ``model`` (conversions, gaps)."""
        return list(self.meta.get("models", {}).get(model, {}).get("notes", []))

    def write(self, out: str | Path) -> list[Path]:
        """Write the directory described in the module docstring; returns the paths written."""
        from srgpu.analysis.compare.scores import comparison_maps

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, df in self.tables.items():
            csv, js = out / f"{name}.csv", out / f"{name}.json"
            df.to_csv(csv, index=False)
            js.write_text(df.to_json(orient="records", indent=1, double_precision=10) + "\n")
            written += [csv, js]
        if self.comparison is not None:
            comparison_maps(self.comparison).to_netcdf(out / MAPS_FILE)
            written.append(out / MAPS_FILE)
        (out / META_FILE).write_text(json.dumps(self.meta, indent=1) + "\n")
        written.append(out / META_FILE)
        return written

    @classmethod
    def read(cls, directory: str | Path) -> CompareResult:
        """The tables and options that :meth:`write` wrote to ``directory`` (no maps)."""
        directory = Path(directory)
        if not (directory / f"{MARKER_TABLE}.csv").exists():
            raise InputError(
                "not an srgpu compare output",
                file=directory / f"{MARKER_TABLE}.csv",
                expected="the directory written by srgpu compare (global_totals.csv, ...)",
            )
        tables = {}
        for csv in sorted(directory.glob("*.csv")):
            try:
                tables[csv.stem] = pd.read_csv(csv)
            except pd.errors.EmptyDataError:
                tables[csv.stem] = pd.DataFrame()
        meta_path = directory / META_FILE
        try:
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg})", file=meta_path) from None
        return cls(tables=tables, meta=meta)
