"""Benchmarking terrestrial ecosystem models against the ensemble (Lu et al. 2021, section 3.2).

``models`` reads CMOR/TRENDY-style NetCDF (units, calendars, SR from rh and root respiration),
``regrid`` puts model fields on the ensemble grid with xarray-regrid, ``scores`` compares them with
the SRDB sites and the ensemble, ``reference`` holds the values the paper reports. :func:`compare`
wires the three stages; ``srgpu compare`` is its command line.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

import pandas as pd

from srgpu.analysis.compare.ilamb import ilamb_reference
from srgpu.analysis.compare.models import ModelOutput, read_model
from srgpu.analysis.compare.scores import (
    Comparison,
    comparison_maps,
    open_ensemble,
    prepare,
    run_all,
)

__all__ = [
    "Comparison",
    "ModelOutput",
    "compare",
    "comparison_maps",
    "ilamb_reference",
    "read_model",
]


def compare(
    store: str | Path,
    models: Mapping[str, str | Path],
    *,
    method: str = "conservative",
    root_fraction: float | None = None,
    years: tuple[int, int] | None = None,
    band_deg: float | None = None,
    skip_checks: Mapping[str, Collection[str]] | None = None,
) -> tuple[Comparison, dict[str, pd.DataFrame]]:
    """Read ``models`` (name -> file or directory), compare them with the ensemble ``store``.

    ``skip_checks``: model name -> variables (or ``"all"``) whose plausibility checks are
    skipped (:mod:`srgpu.analysis.compare.plausibility`). Returns the prepared
    :class:`Comparison` (regridded fields, for maps and figures) and the score tables of
    :func:`srgpu.analysis.compare.scores.run_all`.
    """
    ensemble = open_ensemble(store)
    outputs = {
        name: read_model(
            path,
            name=name,
            root_fraction=root_fraction,
            skip_checks=(skip_checks or {}).get(name, ()),
        )
        for name, path in models.items()
    }
    cmp = prepare(ensemble, outputs, method=method, years=years)
    return cmp, run_all(cmp, band_deg=band_deg)
