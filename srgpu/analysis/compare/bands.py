"""Which uncertainty "within the ensemble's uncertainty" uses: the band of ``srgpu compare``.

The per-cell uncertainty ``s`` of the ``uncertainty_scores`` table (``mean_abs_z``,
``within_2sd``, ``ilamb_bias_score``) is one of two kinds (docs/predictive.md):

* ``"spread"``: ``F_sd_map``, the SD across replicates of the time-mean map (over a sub-period
  the mean of the yearly SDs ``F_sd``): how much the forest mean moves between forests trained
  on different 80 % draws. On held-out records this band covers far less than its nominal
  probability (``summary.json`` ``calibration_spread``), so scored against it almost every
  model, and the truth of the demo world, lies "outside".
* ``"predictive"``: ``F_pred_sd``, the SD of the forests' predictive distribution (quantile
  regression forest; the equal mixture over replicates and over the run's years), the kind of
  uncertainty the paper reported (its "SD" is most likely R's ``mad()`` of it). It is the SD of
  one observation at the cell given its predictors: a model's cell mean is judged against the
  scatter of what SRDB would measure there. SR and HR only: AR = SR - HR has no predictive
  distribution (two forests on different records give no joint one), so AR's rows keep the
  replicate spread and say so in their ``band`` column.

Default (``band=None``): ``"predictive"`` where the store has ``SR_pred_sd`` and ``HR_pred_sd``
(every run since predictive distributions are computed by default), the paper's kind and the
one whose held-out calibration is near nominal; a store without them (written before, or with
``predictive = "none"``) falls back to ``"spread"`` with a note. ``band="predictive"`` on such a
store is an :class:`~srgpu.errors.InputError`.

The global totals' ``rf_q025``/``rf_q975`` (``in_band``) stay the replicate spread of the total
whatever the band: a predictive interval for a global total would need the correlation of the
cells' errors, which the forests do not give (the integrated predictive SD in ``summary.json``
is an upper bound of the total's SD, not an interval).
"""

from __future__ import annotations

import xarray as xr

from srgpu.errors import InputError
from srgpu.schema import OUTPUT_FLUXES, PREDICTIVE_FLUXES, flux_var

BANDS = ("spread", "predictive")
"""The choices of ``srgpu compare --band``."""

DEFINITIONS = {
    "spread": "SD across replicates of the ensemble's time-mean map (F_sd_map; over a "
    "sub-period the mean of the yearly SDs F_sd): the spread of the forest mean",
    "predictive": "SD of the forests' predictive distribution (F_pred_sd: quantile regression "
    "forest, equal mixture over replicates and the run's years): the spread of one observation "
    "given its predictors, the kind the paper reported; AR (no predictive distribution) keeps "
    "the replicate spread",
}
"""What each band is, as written to ``compare.json`` and the report."""


def has_predictive(store: xr.Dataset) -> bool:
    """Whether ``store`` holds the predictive SD maps of every flux that has one."""
    return all(flux_var(f, "pred_sd") in store for f in PREDICTIVE_FLUXES)


def resolve_band(store: xr.Dataset, band: str | None) -> tuple[str, list[str]]:
    """The band a comparison uses and the notes that explain it (see the module docstring)."""
    if band is not None and band not in BANDS:
        raise InputError(
            "unknown uncertainty band", field="--band", value=band, expected=" or ".join(BANDS)
        )
    if band == "spread":
        return "spread", []
    if has_predictive(store):
        notes = []
        if "AR" in store:
            notes.append(
                "AR: no predictive distribution (SR and HR forests give no joint one): its "
                "uncertainty scores use the replicate spread"
            )
        return "predictive", notes
    missing = ", ".join(flux_var(f, "pred_sd") for f in PREDICTIVE_FLUXES)
    if band == "predictive":
        raise InputError(
            "the store has no predictive distribution",
            field=missing,
            expected='a run with predictive = "moments" (the default since predictive '
            "distributions exist): rerun srgpu ensemble, or use --band spread",
        )
    return "spread", [
        f"the store has no {missing} (written before predictive distributions, or with "
        'predictive = "none"): "within the ensemble\'s uncertainty" uses the replicate spread'
    ]


def flux_band(band: str, flux: str) -> str:
    """The band ``flux``'s scores use under ``band`` (AR keeps the spread)."""
    if flux not in OUTPUT_FLUXES:
        raise KeyError(flux)
    return "predictive" if band == "predictive" and flux in PREDICTIVE_FLUXES else "spread"


def predictive_sd(store: xr.Dataset, flux: str, *, full_period: bool) -> tuple[xr.DataArray, str]:
    """``F_pred_sd`` and a note for a sub-period (the store has no per-year predictive SD)."""
    sd = store[flux_var(flux, "pred_sd")]
    note = ""
    if not full_period:
        note = (
            f"{flux}: the predictive SD is of the run's whole period (the store has no "
            "per-year predictive SD); it is used for the comparison period as it is"
        )
    return sd, note
