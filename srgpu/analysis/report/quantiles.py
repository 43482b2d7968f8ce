"""The report's quantile maps of a ``predictive = "quantiles"`` run, and its integrated MAD.

A quantiles run stores the exact order statistics of the pooled predictive distribution per
cell (``F_pred_median``, ``F_pred_mad``, ``F_pred_mad_scaled``, ``F_pred_q025`` …
``F_pred_q975``; docs/predictive.md) and ``summary.json`` gets
``fluxes.<F>.predictive.integrated_mad_pg_per_yr`` and ``integrated_mad_scaled_pg_per_yr``.

What is drawn (:func:`fig_quantile_maps`), per flux SR and HR, three maps of the time mean:

* the **predictive median**: the central estimate of one observation (it differs from the mean
  where the distribution is skewed);
* the **scaled MAD** (1.4826 × MAD, R's ``mad()``): the spread in the unit the paper most
  likely reported as its "SD", so the map is the per-cell field behind the paper's global
  uncertainty;
* the **width of the central 95 % interval** (``q975 - q025``): where a single observation (a
  site, a model cell) can fall and still be "within" the band. The bounds themselves are in the
  store; drawn as maps they look like the median map scaled up and down, so the width is shown.

:func:`quantile_table` puts the integrated MAD and scaled MAD beside the paper's MAD and "SD";
:func:`quantiles_html` gives that table with the 1.4826 reading, or, for a run without
quantiles, a note saying how to get them. Numbers are ``summary.json``'s (rounded for display
only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.analysis.report.constants import FLUX_UNITS
from srgpu.analysis.report.html import _e, html_table
from srgpu.analysis.report.panels import _map_panel, _plt, _robust_limits
from srgpu.constants import NORMAL_MAD_SCALE, PAPER_UNCERTAINTY_PG
from srgpu.schema import PREDICTIVE_FLUXES, flux_var

QUANTILE_KINDS = ("pred_median", "pred_mad", "pred_mad_scaled", "pred_q025", "pred_q975")
"""The store variables (per flux) the quantile maps and table need."""

MAD_SENTENCE = (
    "The paper's MAD/'SD' ratio is 27.3/40.4 = 0.676 (SR) and 16.9/25.0 = 0.676 (HR), "
    f"i.e. 1/{NORMAL_MAD_SCALE:.4f}: its 'SD' is most likely R's default mad() (1.4826 × MAD, "
    "which equals the SD only for a normal distribution) of the predictive distribution. So "
    "compare the paper's 'SD' with the 1.4826 × MAD column and its MAD with the MAD column, "
    "not with the predictive SD."
)
NOT_COMPUTED = (
    'Quantiles were not computed in this run (predictive = "moments"): the maps of the '
    "predictive median, 1.4826 × MAD and central 95 % interval, and the integrated MAD beside "
    "the paper's MAD 27.3 / 'SD' 40.4 (SR) and 16.9 / 25.0 (HR) Pg C yr-1, need a run with "
    'srgpu ensemble --predictive quantiles (or predictive = "quantiles" in the config; '
    "memory about 2 × 8 bytes × cells × records, docs/predictive.md)."
)


def has_quantiles(store: xr.Dataset, summary: dict) -> bool:
    """Whether the run stored the quantile maps of SR and HR and their integrated MAD."""
    fluxes = summary.get("fluxes", {})
    return all(flux_var(f, k) in store for f in PREDICTIVE_FLUXES for k in QUANTILE_KINDS) and all(
        (fluxes.get(f, {}).get("predictive") or {}).get("integrated_mad_pg_per_yr") is not None
        for f in PREDICTIVE_FLUXES
    )


def fig_quantile_maps(store: xr.Dataset, summary: dict):
    """SR and HR (rows): predictive median, 1.4826 × MAD and width of the central 95 %
    interval (columns), time mean; the MAD panel's title gives its area-integrated value."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(15.5, 6.6), layout="constrained")
    for row, flux in enumerate(PREDICTIVE_FLUXES):
        pred = summary["fluxes"][flux]["predictive"]
        median = np.asarray(store[flux_var(flux, "pred_median")].values, float)
        scaled = np.asarray(store[flux_var(flux, "pred_mad_scaled")].values, float)
        width = np.asarray(store[flux_var(flux, "pred_q975")].values, float) - np.asarray(
            store[flux_var(flux, "pred_q025")].values, float
        )
        lo, hi = _robust_limits(median, upper_pct=99)
        _map_panel(
            axes[row, 0],
            store,
            median,
            title=f"{flux}: predictive median",
            cmap="YlOrBr",
            vmin=lo,
            vmax=hi,
            label=FLUX_UNITS,
            extend="both" if lo < 0 else "max",
        )
        _map_panel(
            axes[row, 1],
            store,
            scaled,
            title=f"{flux}: 1.4826 × MAD (R's mad()); integrated "
            f"{pred['integrated_mad_scaled_pg_per_yr']:.3g} Pg C yr$^{{-1}}$",
            cmap="OrRd",
            vmin=0,
            vmax=_robust_limits(scaled)[1],
            label=FLUX_UNITS,
        )
        _map_panel(
            axes[row, 2],
            store,
            width,
            title=f"{flux}: width of the central 95 % interval (q97.5 − q2.5)",
            cmap="OrRd",
            vmin=0,
            vmax=_robust_limits(width)[1],
            label=FLUX_UNITS,
        )
    fig.suptitle(
        "Predictive distribution, exact quantiles (time mean; colour scales end at the 98th "
        "percentile, the median's at the 99th)",
        fontsize=10,
    )
    return fig


def quantile_table(summary: dict) -> pd.DataFrame:
    """Per flux: the integrated predictive SD, MAD and 1.4826 × MAD (Pg C yr-1) beside the
    paper's MAD and "SD"."""
    rows = []
    for flux in PREDICTIVE_FLUXES:
        pred = summary["fluxes"][flux]["predictive"]
        rows.append(
            {
                "flux": flux,
                "predictive SD": pred["integrated_sd_pg_per_yr"],
                "MAD": pred["integrated_mad_pg_per_yr"],
                "1.4826 × MAD": pred["integrated_mad_scaled_pg_per_yr"],
                "paper MAD": PAPER_UNCERTAINTY_PG[flux]["mad"],
                "paper 'SD'": PAPER_UNCERTAINTY_PG[flux]["sd"],
            }
        )
    return pd.DataFrame(rows)


def quantiles_html(store: xr.Dataset, summary: dict) -> str:
    """The integrated-MAD table with the 1.4826 reading, or the note that quantiles were not
    computed (and how to get them)."""
    if not has_quantiles(store, summary):
        return '<p class="note">' + _e(NOT_COMPUTED) + "</p>"
    return (
        "<h3>Integrated MAD beside the paper (Pg C yr-1)</h3>"
        + html_table(
            quantile_table(summary),
            caption="Per-cell SD, MAD and 1.4826 × MAD of the pooled predictive distribution "
            "times land area, summed (summary.json fluxes.<F>.predictive."
            "integrated_sd_pg_per_yr, integrated_mad_pg_per_yr, "
            "integrated_mad_scaled_pg_per_yr), beside Lu et al. 2021's global uncertainty (SRDB "
            "v5.0 on the real grids: a demo-world run is not expected to match it).",
        )
        + "<p>"
        + _e(MAD_SENTENCE)
        + "</p>"
    )
