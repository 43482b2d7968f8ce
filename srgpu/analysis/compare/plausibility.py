"""Plausibility checks on model input (issue 16, item 2).

Units that parse but are wrong (``g m-2 d-1`` on data in kg m-2 s-1), flipped signs or a
negative patch give totals that are silently wrong. After a variable is converted and
annualised, :func:`check_variable` refuses it when

* **sign**: a variable that cannot be negative has a cell-year value below ``-tolerance``
  (:data:`SIGN_TOLERANCE`; ``npp`` may be negative and is not checked), or
* **global total**: its mean annual global total (own grid, cell area x land fraction, all
  years read) lies outside :data:`PLAUSIBLE_TOTALS`.

A violation is an :class:`~srgpu.errors.InputError` naming the file, the variable and the value.
A model that is regional, or a deliberate experiment, is compared anyway with an explicit
per-model override (``read_model(..., skip_checks={"rh"})`` or ``{"all"}``; ``srgpu compare
--skip-checks NAME[=VAR,...]``); the skipped checks are written to the model's notes.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from srgpu.errors import InputError


class Range(NamedTuple):
    """A plausible global total: ``low`` to ``high`` in ``units``; ``source`` says why."""

    low: float
    high: float
    units: str
    source: str


PLAUSIBLE_TOTALS: dict[str, Range] = {
    # fluxes, Pg C yr-1; each range is several times wider than the spread of published
    # estimates and models, so that it catches unit and sign errors, not model disagreement
    "gpp": Range(
        60.0, 250.0, "Pg C yr-1", "CMIP5/6 and TRENDY models 100-175; Jung et al. 2011 FLUXCOM 119"
    ),
    "npp": Range(
        25.0, 120.0, "Pg C yr-1", "about half of GPP: CMIP/TRENDY 45-75 (Ito 2011 review 56)"
    ),
    "ra": Range(20.0, 180.0, "Pg C yr-1", "GPP - NPP: 50-80 in TRENDY (Lu et al. 2021 table 1)"),
    "rh": Range(15.0, 150.0, "Pg C yr-1", "Lu et al. 2021: ten TRENDY models 39-65, RF 50.9 (HR)"),
    "raRoot": Range(
        5.0, 100.0, "Pg C yr-1", "Lu et al. 2021: root respiration 12-44 in models, RF 33.3 (AR)"
    ),
    # stocks, Pg C
    "cSoil": Range(
        300.0, 5000.0, "Pg C", "CMIP5 510-3040 (Todd-Brown et al. 2013); HWSD about 1300"
    ),
    "cLitter": Range(5.0, 500.0, "Pg C", "CMIP5/TRENDY litter 20-200"),
    "cRoot": Range(10.0, 600.0, "Pg C", "root biomass about 150 (Robinson 2007), models 50-300"),
}
"""Plausible global totals per canonical variable (own grid, land only)."""

SIGN_TOLERANCE: dict[str, float] = {
    "rh": 1.0,
    "ra": 1.0,
    "raRoot": 1.0,
    "gpp": 1.0,
    "cSoil": 1e-3,
    "cLitter": 1e-3,
    "cRoot": 1e-3,
}
"""Variables that cannot be negative -> the most negative value tolerated (g C m-2 yr-1 for
fluxes, kg C m-2 for stocks: rounding noise, far below any real value). ``npp`` may be negative
(respiration above production) and has no sign check."""

ALL = "all"
"""In ``skip_checks``: skip every check of the model."""


def global_total(
    da: xr.DataArray, *, area: xr.DataArray, land_fraction: xr.DataArray, stock: bool
) -> float:
    """Mean over years of the global total: Pg C yr-1 (flux, g C m-2 yr-1) or Pg C (stock,
    kg C m-2)."""
    scale = 1e-12 if stock else 1e-15
    total = (da.fillna(0.0) * area * land_fraction).sum(("lat", "lon")) * scale
    return float(total.mean()) if total.ndim else float(total)


def check_variable(
    canon: str,
    da: xr.DataArray,
    *,
    area: xr.DataArray,
    land_fraction: xr.DataArray,
    file: str | Path,
    field: str,
    units: str | None,
    skip: Collection[str] = (),
) -> list[str]:
    """Check one converted variable; return notes of skipped checks, raise on a violation.

    ``da`` is in srgpu units (g C m-2 yr-1 or kg C m-2) on the model grid; ``units`` is the
    file's units attribute, quoted in the message because a wrong attribute is the usual cause.
    """
    if ALL in skip or canon in skip:
        return [f"plausibility checks of {canon} skipped on request"]
    stock = canon.startswith("c")
    srgpu_units = "kg C m-2" if stock else "g C m-2 yr-1"
    tol = SIGN_TOLERANCE.get(canon)
    if tol is not None:
        lowest = float(da.min(skipna=True))
        if lowest < -tol:
            n = int((da < -tol).sum())
            raise InputError(
                f"negative values: {n} cell-year(s) down to {lowest:.4g} {srgpu_units} "
                f"(units attribute {units!r})",
                file=file,
                field=field,
                value=lowest,
                expected=f"{canon} >= 0 (or --skip-checks to compare it anyway)",
            )
    rng = PLAUSIBLE_TOTALS.get(canon)
    if rng is not None:
        total = global_total(da, area=area, land_fraction=land_fraction, stock=stock)
        if not (rng.low <= total <= rng.high) or not np.isfinite(total):
            raise InputError(
                f"implausible global total {total:.4g} {rng.units} (units attribute {units!r})",
                file=file,
                field=field,
                value=total,
                expected=f"{rng.low:g}-{rng.high:g} {rng.units} ({rng.source}); a regional "
                "model or a deliberate experiment: --skip-checks NAME",
            )
    return []
