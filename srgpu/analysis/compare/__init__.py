"""Benchmarking terrestrial ecosystem models against the ensemble (Lu et al. 2021, section 3.2).

``models`` reads CMOR/TRENDY-style NetCDF (units, calendars, SR from rh and root respiration),
``regrid`` puts model fields on the ensemble grid with xarray-regrid, ``scores`` compares them with
the SRDB sites and the ensemble, ``reference`` holds the values the paper reports. :func:`compare`
wires the three stages and returns a :class:`~srgpu.analysis.compare.result.CompareResult`, which
also writes and reads the output directory; ``srgpu compare`` and ``srgpu report`` call it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from srgpu.analysis.compare.bands import BANDS, DEFINITIONS, flux_band
from srgpu.analysis.compare.ilamb import ilamb_reference
from srgpu.analysis.compare.models import ModelOutput, read_model
from srgpu.analysis.compare.reference import reference_table
from srgpu.analysis.compare.result import CompareResult
from srgpu.analysis.compare.scores import (
    Comparison,
    comparison_maps,
    open_ensemble,
    prepare,
    run_all,
)

__all__ = [
    "BANDS",
    "CompareResult",
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
    band: str | None = None,
) -> CompareResult:
    """Read ``models`` (name -> file or directory), compare them with the ensemble ``store``.

    ``skip_checks``: model name -> variables (or ``"all"``) whose plausibility checks are
    skipped (:mod:`srgpu.analysis.compare.plausibility`). ``band``: the ensemble uncertainty
    that "within the ensemble's uncertainty" (the ``uncertainty_scores`` table) uses,
    ``"spread"`` (SD across replicates) or ``"predictive"`` (the forests' predictive SD, the
    paper's kind); ``None``: predictive where the store has it, else the spread with a note
    (:mod:`srgpu.analysis.compare.bands`). Returns a :class:`CompareResult`: the
    score tables of :func:`srgpu.analysis.compare.scores.run_all` plus the paper's reference
    values (``reference_lu2021``), the options and per-model notes (``meta``), and the prepared
    :class:`Comparison` (regridded fields, for maps and figures). ``result.write(DIR)`` writes
    what ``srgpu compare`` writes; ``srgpu report`` calls this same function.
    """
    from srgpu.results import locate_run

    run_out, _ = locate_run(store)
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
    cmp = prepare(ensemble, outputs, method=method, years=years, band=band)
    tables = run_all(cmp, band_deg=band_deg)
    tables["reference_lu2021"] = reference_table()
    meta = {
        "store": str(store),
        "method": method,
        "root_fraction": root_fraction,
        "years": None if years is None else list(years),
        "band_deg": band_deg,
        "band": {
            "used": cmp.band,
            "requested": band,
            "definition": DEFINITIONS[cmp.band],
            "per_flux": {f: flux_band(cmp.band, f) for f in cmp.rf_sd},
            "notes": list(cmp.band_notes),
            "global_totals": "rf_q025/rf_q975 (in_band) are the replicate spread of the global "
            "total whatever the band: no predictive interval of a total is defined",
        },
        "period": {
            "label": cmp.period.label,
            "years": list(cmp.period.years),
            "ensemble": cmp.period.ensemble_label,
            "ensemble_years": cmp.period.ensemble_years,
            "requested": None if years is None else list(years),
            "notes": list(cmp.period_notes),
        },
        "skip_checks": {k: sorted(v) for k, v in (skip_checks or {}).items()},
        "models": {
            name: {
                "path": str(models[name]),
                "period": list(cmp.periods[name]),
                "notes": list(cmp.notes[name]),
                "sources": dict(m.sources),
            }
            for name, m in cmp.models.items()
        },
    }
    return CompareResult(tables=tables, meta=meta, comparison=cmp, run_out=run_out)
