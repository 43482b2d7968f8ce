"""The values Lu et al. (2021) report for the ten TRENDY models and for their random forests.

Source: Lu H *et al* 2021 "Comparing machine learning-derived global estimates of soil respiration
and its components with those from terrestrial ecosystem models", *Environ. Res. Lett.* 16
054048: section 3.1 (RF values), section 3.2 and figure 5 (models), abstract (AR/SR range).
Only values written in the text are here: figure 5's bars for the other models are not given as
numbers, so they are missing (NaN), never read off a figure. Units: Pg C yr-1 for SR, HR, AR; a
fraction for AR/SR.
"""

from __future__ import annotations

import math

import pandas as pd

CITATION = "Lu et al. 2021, Environ. Res. Lett. 16 054048"

TEN_MODELS: tuple[str, ...] = (
    "BEPS",
    "CLASS-CTEM",
    "CLM5.0",
    "CABLE",
    "IBIS",
    "LPX-Bern",
    "LPJ-GUESS",
    "ORCHIDEE",
    "VISIT",
    "VEGAS",
)
"""The ten TRENDY models of the paper (section 2.3), in its order."""

_NAN = math.nan

# (model, flux) -> (value, where the text gives it)
_MODEL_VALUES: dict[tuple[str, str], tuple[float, str]] = {
    ("CLASS-CTEM", "SR"): (91.7, "section 3.2; highest SR"),
    ("CLASS-CTEM", "HR"): (61.7, "section 3.2; highest HR"),
    ("BEPS", "SR"): (61.4, "section 3.2; lowest SR"),
    ("BEPS", "AR"): (12.0, "section 3.2; lowest AR"),
    ("ORCHIDEE", "HR"): (39.8, "section 3.2; lowest HR"),
    ("CLM5.0", "AR"): (42.3, "section 3.2; highest AR"),
    ("LPX-Bern", "AR/SR"): (0.18, "section 3.2; lowest AR/SR"),
    ("LPJ-GUESS", "AR/SR"): (0.48, "section 3.2; highest AR/SR"),
}

ENSEMBLE_SUMMARY: dict[str, dict[str, float]] = {
    "SR": {"min": 61.4, "max": 91.7, "mean": 76.9},
    "HR": {"min": 39.8, "max": 61.7, "mean": 50.4},
    "AR": {"min": 12.0, "max": 42.3, "mean": 26.5},
    "AR/SR": {"min": 0.18, "max": 0.48, "mean": _NAN},
}
"""Range and mean of the ten models (section 3.2, abstract); the mean AR/SR is not given."""

RF_VALUES: dict[str, float] = {"SR": 85.5, "HR": 50.3, "AR": 35.2, "AR/SR": 0.41}
"""The paper's random-forest estimates, 1982-2012 (section 3.1)."""

RF_RANGES: dict[str, tuple[float, float]] = {
    "SR": (83.6, 87.8),
    "HR": (49.2, 51.1),
    "AR": (33.9, 36.9),
}
"""Interannual ranges of the RF global totals, 1982-2012 (section 3.1)."""

RF_SITE_RMSE: dict[str, float] = {"SR": 348.0, "HR": 240.0}
"""RMSE (g C m-2 yr-1) of the RF across the SRDB sites (section 3.2)."""


def model_table() -> pd.DataFrame:
    """One row per (model, flux) for the ten models: ``model, flux, value, units, where``;
    ``value`` is NaN where the paper gives no number."""
    rows = []
    for model in TEN_MODELS:
        for flux in ("SR", "HR", "AR", "AR/SR"):
            value, where = _MODEL_VALUES.get((model, flux), (_NAN, "not given in the text"))
            units = "1" if flux == "AR/SR" else "Pg C yr-1"
            rows.append(
                {"model": model, "flux": flux, "value": value, "units": units, "where": where}
            )
    return pd.DataFrame(rows)


def reference_table() -> pd.DataFrame:
    """The paper's figures in one tidy table: the ten models' individual values (where given),
    their range and mean (``model = "ten-model min|max|mean"``) and the RF (``model = "RF"``).
    Columns ``model, flux, value, units, where, source``."""
    rows = model_table().to_dict("records")
    for flux, summary in ENSEMBLE_SUMMARY.items():
        units = "1" if flux == "AR/SR" else "Pg C yr-1"
        for key, value in summary.items():
            where = "section 3.2" if not math.isnan(value) else "not given in the text"
            rows.append(
                {
                    "model": f"ten-model {key}",
                    "flux": flux,
                    "value": value,
                    "units": units,
                    "where": where,
                }
            )
    for flux, value in RF_VALUES.items():
        rows.append(
            {
                "model": "RF",
                "flux": flux,
                "value": value,
                "units": "1" if flux == "AR/SR" else "Pg C yr-1",
                "where": "section 3.1 and abstract",
            }
        )
    df = pd.DataFrame(rows)
    df["source"] = CITATION
    return df
