"""The report's uncertainty section: the replicate spread beside the predictive distribution.

Two kinds of uncertainty (docs/predictive.md): the SD across replicates of the forest mean
(``F_sd_map``) and the SD of the forests' predictive distribution (``F_pred_sd``, one
observation given its predictors). :func:`fig_uncertainty_maps` draws them side by side for SR
and HR; :func:`fig_calibration` their held-out calibration from ``summary.json``
(``calibration`` and ``calibration_spread``: coverage of the central 50/90/95 % intervals
against nominal, PIT histograms); :func:`uncertainty_html` the text and tables, whose numbers are
``summary.json``'s (rounded for display only). A store without a predictive distribution gets
a note instead. A ``predictive = "quantiles"`` run adds the quantile maps and the integrated MAD
beside the paper's (:mod:`~srgpu.analysis.report.quantiles`); a moments run a note on how to
get them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.analysis.report.constants import COLORS, FLUX_UNITS
from srgpu.analysis.report.html import _e, html_table
from srgpu.analysis.report.panels import _map_panel, _plt, _robust_limits
from srgpu.analysis.report.quantiles import quantiles_html
from srgpu.schema import PREDICTIVE_FLUXES, flux_var

LEVELS = ("0.5", "0.9", "0.95")
BAND_KEYS = (("predictive", "calibration"), ("replicate spread", "calibration_spread"))
"""The two bands and their ``summary.json`` blocks."""

PAPER_SENTENCE = (
    "The paper (Lu et al. 2021) reported the predictive kind: its global uncertainty "
    "(SR 85.5 ± 40.4 Pg C yr-1, MAD 27.3; HR ± 25.0, MAD 16.9) comes from quantregForest's "
    "predictive distribution, and its MAD/SD ratio of 0.6745 = 1/1.4826 says that its 'SD' is "
    "most likely R's mad() (1.4826 × MAD) of that distribution, not the replicate spread "
    "(docs/predictive.md)."
)


def has_uncertainty(store: xr.Dataset, summary: dict) -> bool:
    """Whether the run has the predictive SD maps and both bands' calibration."""
    return (
        all(flux_var(f, "pred_sd") in store for f in PREDICTIVE_FLUXES)
        and "calibration" in summary
        and "calibration_spread" in summary
    )


def fig_uncertainty_maps(store: xr.Dataset, summary: dict):
    """SR and HR: SD across replicates (left) and predictive SD (right), each on its own colour
    scale (the predictive SD is about ten times larger), titled with the area-integrated value."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 6.6), layout="constrained")
    for row, flux in enumerate(PREDICTIVE_FLUXES):
        f = summary.get("fluxes", {}).get(flux, {})
        pred_total = (f.get("predictive") or {}).get("integrated_sd_pg_per_yr")
        for col, (kind, label, total) in enumerate(
            (
                ("sd_map", "SD across replicates (forest mean)", f.get("integrated_sd_pg_per_yr")),
                ("pred_sd", "predictive SD (one observation)", pred_total),
            )
        ):
            values = np.asarray(store[flux_var(flux, kind)].values, float)
            title = f"{flux}: {label}"
            if total is not None:
                title += f"; integrated {total:.3g} Pg C yr$^{{-1}}$"
            _map_panel(
                axes[row, col],
                store,
                values,
                title=title,
                cmap="PuBu" if col == 0 else "OrRd",
                vmin=0,
                vmax=_robust_limits(values)[1],
                label=FLUX_UNITS,
            )
    fig.suptitle(
        "Two kinds of uncertainty, time mean (colour scales differ: end at the 98th percentile)",
        fontsize=10,
    )
    return fig


def fig_calibration(summary: dict):
    """Held-out calibration of both bands: coverage of the central intervals against nominal
    (left; error bars: SD over replicates) and the mean PIT histograms of SR and HR."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.9), layout="constrained")
    ax = axes[0]
    nominal = np.array([float(k) for k in LEVELS])
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="nominal")
    for flux in PREDICTIVE_FLUXES:
        for band, key in BAND_KEYS:
            c = summary[key][flux]["coverage"]
            mean = np.array([c[k]["mean"] for k in LEVELS])
            sd = np.array([c[k]["sd"] or 0.0 for k in LEVELS])
            ax.errorbar(
                nominal,
                mean,
                yerr=sd,
                color=COLORS[flux],
                marker="o" if band == "predictive" else "s",
                mfc=COLORS[flux] if band == "predictive" else "white",
                ls="-" if band == "predictive" else "--",
                lw=1.2,
                ms=5,
                capsize=2,
                label=f"{flux} {band}",
            )
    ax.set_xlim(0.4, 1.0)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("nominal probability of the central interval", fontsize=8)
    ax.set_ylabel("held-out coverage", fontsize=8)
    ax.set_title("Coverage of held-out records", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.tick_params(labelsize=7)
    for ax, flux in zip(axes[1:], PREDICTIVE_FLUXES, strict=True):
        edges = np.linspace(0, 1, 11)
        for band, key in BAND_KEYS:
            hist = np.asarray(summary[key][flux]["pit_hist"], float)
            ax.stairs(
                hist,
                edges,
                color=COLORS[flux],
                ls="-" if band == "predictive" else "--",
                lw=1.6,
                fill=band == "predictive",
                alpha=0.35 if band == "predictive" else 1.0,
                label=band,
            )
        ax.axhline(0.1, color="grey", lw=0.8, ls=":", label="calibrated (0.1)")
        ax.set_xlim(0, 1)
        ax.set_xlabel("PIT (mid-PIT), 10 bins", fontsize=8)
        ax.set_ylabel("share of held-out records", fontsize=8)
        ax.set_title(f"{flux}: PIT histograms", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center")
        ax.tick_params(labelsize=7)
    return fig


def calibration_table(summary: dict) -> pd.DataFrame:
    """One row per flux and band: coverage (%) of the central 50/90/95 % intervals (mean over
    replicates), mean CRPS (g C m-2 yr-1), band members and replicates."""
    rows = []
    for flux in PREDICTIVE_FLUXES:
        for band, key in BAND_KEYS:
            c = summary[key][flux]
            members = c.get("members")
            rows.append(
                {
                    "flux": flux,
                    "band": band,
                    **{
                        f"{float(k) * 100:g} % covers": 100 * c["coverage"][k]["mean"]
                        for k in LEVELS
                    },
                    "CRPS": c["crps"]["mean"],
                    "members": "own forest" if members is None else f"{members['mean']:.1f}",
                    "replicates": c["replicates"],
                }
            )
    return pd.DataFrame(rows)


def integrated_table(summary: dict) -> pd.DataFrame:
    """Per flux: the replicate spread's and the predictive distribution's integrated SD."""
    rows = []
    for flux in PREDICTIVE_FLUXES:
        f = summary["fluxes"][flux]
        rows.append(
            {
                "flux": flux,
                "replicate spread SD": f["integrated_sd_pg_per_yr"],
                "predictive SD": f["predictive"]["integrated_sd_pg_per_yr"],
            }
        )
    return pd.DataFrame(rows)


def membership_sentence(summary: dict) -> str:
    """Which leaf membership the predictive distribution used (``summary.json``'s
    ``calibration.<F>.membership``; a summary written before the setting: ``"all"``)."""
    from srgpu.run.summary import MEMBERSHIP_WORDS

    m = summary["calibration"][PREDICTIVE_FLUXES[0]].get("membership", "all")
    default = " (the default, the paper's)" if m == "all" else ""
    return (
        f"Leaf membership: {m}{default}: the weights read {MEMBERSHIP_WORDS.get(m, m)} "
        "(predictive_membership; docs/predictive.md)."
    )


def uncertainty_html(store: xr.Dataset, summary: dict) -> str:
    """The section's text and tables (figures are added by the caller)."""
    parts = []
    if not has_uncertainty(store, summary):
        parts.append(
            '<p class="note">This run has no predictive distribution (written before srgpu '
            'computed one, or with predictive = "none"): only the replicate spread is shown '
            "(Global maps). " + _e(PAPER_SENTENCE) + "</p>"
        )
        return "".join(parts)
    parts.append(
        "<p>Two kinds of uncertainty. The <b>replicate spread</b> (F_sd_map, F_q025/F_q975) is "
        "how much the forest mean moves between forests trained on different 80 % draws of the "
        "records. The <b>predictive distribution</b> (F_pred_sd) is that of one observation "
        "given its predictors, read from each forest as a quantile regression forest "
        "(Meinshausen 2006) and pooled over replicates. " + _e(membership_sentence(summary))
        + " " + _e(PAPER_SENTENCE) + "</p>"
    )  # fmt: skip
    parts.append("<h3>Integrated SD (Pg C yr-1)</h3>")
    parts.append(
        html_table(
            integrated_table(summary),
            caption="Per-cell SD maps times land area, summed (as if every cell erred the same "
            "way): summary.json fluxes.<F>.integrated_sd_pg_per_yr and "
            "fluxes.<F>.predictive.integrated_sd_pg_per_yr.",
        )
    )
    parts.append("<h3>Held-out calibration of the two bands</h3>")
    parts.append(
        html_table(
            calibration_table(summary),
            caption="On every replicate's held-out 20 % of the records: share (%) of the "
            "observations inside the central 50/90/95 % intervals, mean CRPS (g C m-2 yr-1), "
            "mean over replicates (summary.json calibration and calibration_spread). "
            "Predictive: each replicate's own forest. Replicate spread: the forest means of "
            "every replicate that did not train on the record ('members' of the band on "
            "average; a band of n members covers at most (n-1)/(n+1) of new draws with its full "
            "range, so few replicates narrow it further).",
        )
    )
    parts.append(quantiles_html(store, summary))
    return "".join(parts)


def band_note(compare_meta: dict) -> str:
    """Which band the comparison's "within the ensemble's uncertainty" used (its
    ``compare.json``), as a note for the model scores; empty without a comparison."""
    if not compare_meta:
        return ""
    band = compare_meta.get("band")
    if not isinstance(band, dict) or not band.get("used"):
        return (
            '<p class="note">Uncertainty scores: this comparison does not record its band '
            "(written before the choice existed): the replicate spread (F_sd_map).</p>"
        )
    notes = "".join(f" {_e(n)}." for n in band.get("notes", []))
    return (
        f'<p class="note">Uncertainty scores ("within the ensemble\'s uncertainty") use the '
        f"<b>{_e(band['used'])}</b> band: {_e(band.get('definition', ''))}.{notes} The global "
        "totals' rf_q025/rf_q975 are the replicate spread of the total.</p>"
    )
