"""Headers with units and one precision per column for the score tables that ``srgpu compare``
prints and ``srgpu report`` shows (the error and flux columns in g C m-2 yr-1).

:func:`header` gives a column's header (its unit, where it has one); :func:`cell` formats one
value of a column with that column's fixed number of decimals, so that a column never mixes
``412`` and ``85.3`` and ``1.23``. Columns not listed (the global totals: their table's title
carries the unit) keep the caller's generic format.
"""

from __future__ import annotations

import math
from typing import Any

FLUX_UNIT = "g C m-2 yr-1"
"""The unit of the flux, RMSE and bias columns, as the console and report print it."""

COLUMNS: dict[str, tuple[str, str]] = {
    # site scores and Taylor statistics (g C m-2 yr-1)
    "rmse": (f"rmse ({FLUX_UNIT})", ".1f"),
    "bias": (f"bias ({FLUX_UNIT})", ".1f"),
    "obs_mean": (f"obs_mean ({FLUX_UNIT})", ".1f"),
    "sim_mean": (f"sim_mean ({FLUX_UNIT})", ".1f"),
    "crmsd": (f"crmsd ({FLUX_UNIT})", ".1f"),
    "sd_ref": (f"sd_ref ({FLUX_UNIT})", ".1f"),
    "sd_model": (f"sd_model ({FLUX_UNIT})", ".1f"),
    # dimensionless
    "r": ("r", ".3f"),
    "sd_norm": ("sd_norm (1)", ".3f"),
    "crmsd_norm": ("crmsd_norm (1)", ".3f"),
    "mean_abs_z": ("mean_abs_z (1)", ".3f"),
    "z_score": ("z_score (1)", ".3f"),
    "within_2sd": ("within_2sd (1)", ".3f"),
    "ilamb_bias_score": ("ilamb_bias_score (1)", ".3f"),
    "bias_pct": ("bias_pct (%)", ".1f"),
    "diff_pct": ("diff_pct (%)", ".1f"),
}
"""Column name -> (header with unit, format of every value)."""


def header(column: str) -> str:
    """The header of ``column``: with its unit where the table of :data:`COLUMNS` has it."""
    return COLUMNS.get(column, (column, ""))[0]


def formats(column: str) -> bool:
    """Whether ``column`` has a fixed format here."""
    return column in COLUMNS


def cell(column: str, value: Any, *, missing: str = "—") -> str:
    """``value`` of ``column`` in that column's fixed format (``missing`` for NaN/None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return missing
    return format(v, COLUMNS[column][1])
