"""The report's figures, one small function each (opened store in, ``matplotlib`` figure out),
and :func:`make_figures`, which draws them per section."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.analysis.report.constants import (
    COLORS,
    FLUX_NAMES,
    FLUX_UNITS,
    SECTIONS,
    TOTAL_UNITS,
)
from srgpu.analysis.report.html import Figure, _render
from srgpu.analysis.report.inputs import ReportData
from srgpu.analysis.report.panels import _edges, _map_panel, _plt, _robust_limits, _weights
from srgpu.analysis.report.quantiles import fig_quantile_maps, has_quantiles
from srgpu.analysis.report.sections import _period
from srgpu.analysis.report.uncertainty import (
    fig_calibration,
    fig_uncertainty_maps,
    has_uncertainty,
)
from srgpu.schema import (
    AR_SR_RATIO,
    CELL_ILAT,
    CELL_ILON,
    OUTPUT_FLUXES,
    SITE_FLUX,
    SITE_ILAT,
    SITE_ILON,
    SITE_IYEAR,
    SITE_VALUE,
    VALIDATION,
    flux_var,
)


def fig_maps(store: xr.Dataset, flux: str):
    """Time-mean ensemble mean, SD across replicates and CV (%) of one flux."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.5), layout="constrained")
    mean = np.asarray(store[flux].values, float)
    sd = np.asarray(store[flux_var(flux, "sd_map")].values, float)
    cv = np.asarray(store[flux_var(flux, "cv")].values, float)
    lo, hi = _robust_limits(mean, upper_pct=99)
    _map_panel(
        axes[0],
        store,
        mean,
        title=f"{flux}: ensemble mean",
        cmap="YlOrBr",
        vmin=lo,
        vmax=hi,
        label=FLUX_UNITS,
        extend="both" if lo < 0 else "max",
    )
    _map_panel(
        axes[1],
        store,
        sd,
        title=f"{flux}: SD across replicates",
        cmap="PuBu",
        vmin=0,
        vmax=_robust_limits(sd)[1],
        label=FLUX_UNITS,
    )
    _map_panel(
        axes[2],
        store,
        np.where(np.isfinite(mean) & (mean != 0), cv, np.nan),
        title=f"{flux}: CV across replicates",
        cmap="viridis",
        vmin=0,
        vmax=_robust_limits(np.abs(cv), upper_pct=95)[1],
        label="%",
    )
    title = FLUX_NAMES[flux] + ", time mean"
    negative = np.isfinite(mean) & (mean < 0)
    if flux == "AR" and negative.any():  # root respiration cannot be negative: mark the cells
        ilat, ilon = np.nonzero(negative)
        w = _weights(store)
        share = float(w[negative].sum() / w[np.isfinite(mean)].sum())
        for ax in axes:
            ax.scatter(
                store["lon"].values[ilon],
                store["lat"].values[ilat],
                s=4,
                marker="x",
                color="red",
                lw=0.6,
                label="AR < 0",
            )
        axes[0].legend(fontsize=7, loc="lower left")
        title += f"; red x: AR < 0 in {int(negative.sum())} cells ({100 * share:.1f} % of the area)"
    fig.suptitle(title, fontsize=10)
    return fig


def fig_ratio_map(store: xr.Dataset):
    """AR/SR of the time-mean maps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    ratio = np.asarray(store[AR_SR_RATIO].values, float)
    _map_panel(
        ax,
        store,
        ratio,
        title="AR / SR of the time-mean maps",
        cmap="plasma",
        vmin=0,
        vmax=1,
        label="AR / SR (1)",
        extend="both",
    )
    return fig


def zonal_totals(store: xr.Dataset, flux: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-replicate zonal totals of the time-mean map, Tg C yr-1 per degree of latitude:
    returns (lat, array (replicate, lat))."""
    reps = np.asarray(store[flux_var(flux, "replicate_map")].values, float)
    ilat = np.asarray(store[CELL_ILAT].values, int)
    ilon = np.asarray(store[CELL_ILON].values, int)
    lat = np.asarray(store["lat"].values, float)
    w = _weights(store)[ilat, ilon]
    height = np.diff(_edges(lat, -90, 90))
    out = np.zeros((reps.shape[0], lat.size))
    contrib = np.nan_to_num(reps) * w  # (R, cell), g yr-1
    for r in range(reps.shape[0]):
        out[r] = np.bincount(ilat, weights=contrib[r], minlength=lat.size)
    return lat, out / 1e12 / height


def fig_latitude(store: xr.Dataset, profiles: pd.DataFrame | None = None):
    """Zonal totals: median and 2.5-97.5 % across replicates (SR, HR, AR), and AR/SR."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 4.6), sharey=True, layout="constrained")
    sums = {}
    for ax, flux in zip(axes, OUTPUT_FLUXES, strict=False):
        lat, z = zonal_totals(store, flux)
        sums[flux] = z
        keep = np.abs(z).sum(axis=0) > 0
        lo, med, hi = np.quantile(z[:, keep], [0.025, 0.5, 0.975], axis=0)
        ax.fill_betweenx(lat[keep], lo, hi, color=COLORS[flux], alpha=0.3, lw=0, label="2.5-97.5 %")
        ax.plot(med, lat[keep], color=COLORS[flux], lw=1.6, label="ensemble median")
        if profiles is not None and not profiles.empty:
            _overlay_models(ax, profiles, flux, lat)
        ax.set_title(flux, fontsize=10)
        ax.set_xlabel("Tg C yr$^{-1}$ per degree latitude", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[3]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sums["AR"] / sums["SR"]
    keep = np.abs(sums["SR"]).sum(axis=0) > 0
    lo, med, hi = np.nanquantile(ratio[:, keep], [0.025, 0.5, 0.975], axis=0)
    ax.fill_betweenx(lat[keep], lo, hi, color="grey", alpha=0.3, lw=0, label="2.5-97.5 %")
    ax.plot(med, lat[keep], color="black", lw=1.6, label="ensemble median")
    ax.set_title("AR / SR of the zonal totals", fontsize=10)
    ax.set_xlabel("AR / SR (1)", fontsize=8)
    ax.set_xlim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    axes[0].set_ylabel("latitude (degrees north)", fontsize=8)
    axes[0].set_ylim(-60 if lat[keep].min() > -60 else -90, 90)
    return fig


def _overlay_models(ax, profiles: pd.DataFrame, flux: str, lat: np.ndarray) -> None:
    """Models' zonal totals from ``srgpu compare`` (Tg C yr-1 per band -> per degree)."""
    sub = profiles[(profiles["flux"] == flux) & (profiles["source"] != "RF")]
    for name, rows in sub.groupby("source", sort=False):
        bands = np.sort(rows["lat"].unique())
        width = np.median(np.diff(bands)) if bands.size > 1 else 1.0
        rows = rows[rows["zonal_total_tg"].abs() > 0].sort_values("lat")
        ax.plot(
            rows["zonal_total_tg"] / width,
            rows["lat"],
            lw=1,
            ls="--",
            label=f"{name} (ensemble domain)",
        )


def fig_annual(store: xr.Dataset, summary: dict):
    """Per-year global totals: median and 2.5-97.5 % across replicates."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.4), layout="constrained")
    years = np.asarray(store["year"].values)
    clim = bool(summary.get("climatology"))
    truth = summary.get("demo_truth_pg_per_yr") or {}
    for ax, flux in zip(axes, OUTPUT_FLUXES, strict=True):
        t = np.asarray(store[flux_var(flux, "replicate_total")].values, float)
        lo, med, hi = np.quantile(t, [0.025, 0.5, 0.975], axis=0)
        c = COLORS[flux]
        if years.size > 1:
            ax.fill_between(years, lo, hi, color=c, alpha=0.3, lw=0, label="2.5-97.5 %")
            ax.plot(years, med, color=c, marker="o", ms=3, lw=1.5, label="median")
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.errorbar(
                [0],
                med,
                yerr=[med - lo, hi - med],
                fmt="o",
                color=c,
                capsize=5,
                label="median, 2.5-97.5 %",
            )
            ax.set_xticks([0], ["climatology" if clim else str(years[0])])
        if flux in truth:
            ax.axhline(truth[flux], color="black", ls=":", lw=1.2, label="demo truth")
        ax.set_title(f"global {flux}", fontsize=10)
        ax.set_ylabel(TOTAL_UNITS, fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def fig_validation_hist(store: xr.Dataset):
    """Held-out R2 and RMSE of every replicate (SR, HR)."""
    plt = _plt()
    val = store[VALIDATION]
    fig, axes = plt.subplots(1, 4, figsize=(13.5, 3.0), layout="constrained")
    panels = [(f, m) for m in ("r2", "rmse") for f in ("SR", "HR")]
    for ax, (flux, metric) in zip(axes, panels, strict=True):
        v = np.asarray(val.sel(flux=flux, metric=metric).values, float)
        v = v[np.isfinite(v)]
        if v.size >= 20:
            ax.hist(v, bins=min(30, v.size // 5), color=COLORS[flux], alpha=0.8)
            ax.set_ylabel("replicates", fontsize=8)
            ax.yaxis.get_major_locator().set_params(integer=True)
        else:  # too few for a histogram: one line per replicate
            ax.vlines(v, 0, 1, color=COLORS[flux], lw=2, label="one replicate")
            ax.set_ylim(0, 1.35)
            ax.set_yticks([])
        if v.size:
            ax.axvline(v.mean(), color="black", lw=1, ls="--", label=f"mean {v.mean():.3g}")
            ax.legend(fontsize=7, loc="upper right")
        label = "R$^2$ (1)" if metric == "r2" else f"RMSE ({FLUX_UNITS})"
        ax.set_xlabel(label, fontsize=8)
        ax.set_title(f"{flux}: held-out {'R²' if metric == 'r2' else 'RMSE'}", fontsize=9)
    return fig


def site_predictions(store: xr.Dataset, flux: str) -> tuple[np.ndarray, np.ndarray]:
    """(observed, ensemble mean at the site's cell and year) for the sites of ``flux``."""
    sel = np.array([str(v) for v in np.asarray(store[SITE_FLUX].values)]) == flux
    obs = np.asarray(store[SITE_VALUE].values, float)[sel]
    iy = np.asarray(store[SITE_IYEAR].values, int)[sel]
    ilat = np.asarray(store[SITE_ILAT].values, int)[sel]
    ilon = np.asarray(store[SITE_ILON].values, int)[sel]
    cube = np.asarray(store[flux_var(flux, "mean")].values, float)
    iy = np.clip(iy, 0, cube.shape[0] - 1)
    return obs, cube[iy, ilat, ilon]


def fig_sites(store: xr.Dataset):
    """Observed SRDB values against the ensemble mean at their cell-year."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4.4), layout="constrained")
    for ax, flux in zip(axes, ("SR", "HR"), strict=True):
        obs, sim = site_predictions(store, flux)
        ok = np.isfinite(obs) & np.isfinite(sim)
        obs, sim = obs[ok], sim[ok]
        ax.scatter(obs, sim, s=6, alpha=0.5, color=COLORS[flux], lw=0)
        top = float(max(obs.max(), sim.max())) * 1.05 if obs.size else 1.0
        ax.plot([0, top], [0, top], color="black", lw=0.8, ls="--", label="1:1")
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        if obs.size > 1:
            r = float(np.corrcoef(obs, sim)[0, 1])
            rmse = float(np.sqrt(np.mean((sim - obs) ** 2)))
            ax.text(
                0.03,
                0.97,
                f"n = {obs.size}\nr = {r:.2f}\nRMSE = {rmse:.0f}",
                transform=ax.transAxes,
                va="top",
                fontsize=8,
            )
        ax.set_xlabel(f"observed {flux} ({FLUX_UNITS})", fontsize=8)
        ax.set_ylabel(f"ensemble mean {flux} ({FLUX_UNITS})", fontsize=8)
        ax.set_title(f"{flux} at the SRDB site cells", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    return fig


def _replicate_ratio(store: xr.Dataset) -> np.ndarray:
    sr = np.asarray(store[flux_var("SR", "replicate_total")].values, float).mean(axis=1)
    ar = np.asarray(store[flux_var("AR", "replicate_total")].values, float).mean(axis=1)
    return ar / sr


def _compared_years(store: xr.Dataset, gt: pd.DataFrame) -> list[int] | None:
    """The store years of the comparison period (``global_totals``' RF ``period``), or None."""
    if gt.empty or "period" not in gt:
        return None
    text = (
        str(gt.loc[gt["source"] == "RF", "period"].iloc[0]) if (gt["source"] == "RF").any() else ""
    )
    first, _, last = text.partition("-")
    if not first.isdigit():
        return None
    first_y, last_y = int(first), int(last or first)
    years = [int(y) for y in np.asarray(store["year"].values) if first_y <= int(y) <= last_y]
    return years or None


def fig_global(
    store: xr.Dataset,
    summary: dict,
    tables: Mapping[str, pd.DataFrame],
    *,
    meta: Mapping | None = None,
):
    """Global SR, HR, AR and AR/SR: the ensemble, the paper's RF and ten models, given models.
    With compared models the ensemble bar covers the comparison period; the figure's title
    states the period and the root-fraction assumption (``meta``: ``compare.json``)."""
    from srgpu.analysis.compare import reference as ref

    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(14.5, 4.6), layout="constrained")
    models = ref.model_table()
    gt = tables.get("global_totals", pd.DataFrame())
    mg = tables.get("model_globals", pd.DataFrame())
    truth = summary.get("demo_truth_pg_per_yr") or {}
    years = _compared_years(store, gt)
    if summary.get("climatology"):
        period = "climatology"
    elif years:
        period = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    else:
        period = _period(summary)
    sub = store if years is None else store.sel(year=years)
    for ax, flux in zip(axes, (*OUTPUT_FLUXES, "AR/SR"), strict=True):
        labels, x = [], 0
        if flux == "AR/SR":
            reps = _replicate_ratio(sub)
        else:
            reps = np.asarray(sub[flux_var(flux, "replicate_total")].values, float).mean(axis=1)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        m = float(reps.mean())
        ax.bar(x, m, color="#4d4d4d", yerr=[[m - lo], [hi - m]], capsize=4)
        labels.append(f"this run {period}\n(2.5-97.5 %)")
        x += 1
        rf = ref.RF_VALUES[flux]
        if flux in ref.RF_RANGES:
            a, b = ref.RF_RANGES[flux]
            ax.bar(x, rf, color="#878787", yerr=[[rf - a], [b - rf]], capsize=4)
            labels.append("Lu 2021 RF\n(interannual)")
        else:
            ax.bar(x, rf, color="#878787")
            labels.append("Lu 2021 RF")
        x += 1
        s = ref.ENSEMBLE_SUMMARY[flux]
        ax.bar(x, s["max"] - s["min"], bottom=s["min"], color="#c6dbef", edgecolor="#2171b5")
        if not math.isnan(s["mean"]):
            ax.plot([x - 0.4, x + 0.4], [s["mean"]] * 2, color="#08306b", lw=2)
            ax.axhline(s["mean"], color="#2171b5", ls="--", lw=0.8, label="10-TEM mean")
            labels.append("10 TEMs\nrange, mean")
        else:
            labels.append("10 TEMs\nrange")
        x += 1
        given = models[(models["flux"] == flux) & models["value"].notna()]
        for _, row in given.iterrows():
            ax.bar(x, row["value"], color="#9ecae1", hatch="//", edgecolor="#2171b5")
            labels.append(f"{row['model']}\n(Lu 2021)")
            x += 1
        for name, value in _user_model_values(gt, mg, flux).items():
            ax.bar(x, value, color="#fdae61", edgecolor="#d95f02")
            labels.append(str(name))
            x += 1
        if flux in truth:
            ax.axhline(truth[flux], color="black", ls=":", lw=1.2, label="demo truth")
        ax.set_xticks(range(x), labels, fontsize=7, rotation=90)
        ax.set_title(f"global {flux}", fontsize=10)
        ax.set_ylabel("AR / SR (1)" if flux == "AR/SR" else TOTAL_UNITS, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    handles: dict[str, Any] = {}
    for ax in axes:  # one legend above the panels, never over the bars
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    root = None if meta is None else meta.get("root_fraction")
    models_given = bool(_user_model_values(gt, mg, "HR") or _user_model_values(gt, mg, "SR"))
    title = f"Period: {period}"
    if models_given and root is None:
        title += (
            ". Models without root respiration (raRoot): AR and SR not computed "
            "(no root-fraction assumption)"
        )
    elif models_given:
        title += f". Models without raRoot: AR = {root:g} x ra (assumed root fraction)"
    fig.suptitle(title, fontsize=9)
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside upper right",
            fontsize=7,
            ncol=len(handles),
            frameon=False,
        )
    fig.text(
        0.01,
        -0.01,
        f"Paper values: {ref.CITATION}, sections 3.1-3.2 and figure 5. Only values given in the "
        "text; the other models' bars of figure 5 are not given as numbers (range and mean shown).",
        fontsize=7,
        ha="left",
        va="top",
    )
    return fig


def _user_model_values(gt: pd.DataFrame, mg: pd.DataFrame, flux: str) -> dict[str, float]:
    if flux == "AR/SR":
        if mg.empty or "AR_SR" not in mg:
            return {}
        rows = mg[(mg["source"] != "RF") & mg["AR_SR"].notna()]
        return dict(zip(rows["source"], rows["AR_SR"].astype(float), strict=True))
    if gt.empty:
        return {}
    rows = gt[(gt["source"] != "RF") & (gt["flux"] == flux) & gt["total_pg"].notna()]
    return dict(zip(rows["source"], rows["total_pg"].astype(float), strict=True))


def make_figures(data: ReportData) -> dict[str, list[Figure]]:
    """Every figure of the report, grouped by section id."""
    store, summary = data.store, data.summary
    climatology = bool(summary.get("climatology"))
    period = "the climatology" if climatology else _period(summary)
    figs: dict[str, list[Figure]] = {k: [] for k, _ in SECTIONS}
    for flux in OUTPUT_FLUXES:
        figs["maps"].append(
            _render(
                fig_maps(store, flux),
                f"map_{flux}",
                f"{FLUX_NAMES[flux]}: time mean over {period} of the ensemble mean, its SD "
                "across replicates (of each replicate's time-mean map) and the CV = SD / mean "
                "(%). Grey: land outside the prediction domain; blue-grey: ocean. Colour scales "
                "end at the 99th (mean), 98th (SD) or 95th (CV) percentile.",
            )
        )
    figs["maps"].append(
        _render(
            fig_ratio_map(store),
            "map_AR_SR",
            "AR / SR of the time-mean ensemble maps (AR = SR - HR, replicate by replicate).",
        )
    )
    if has_uncertainty(store, summary):
        figs["uncertainty"].append(
            _render(
                fig_uncertainty_maps(store, summary),
                "map_uncertainty",
                f"SR and HR, time mean over {period}: left, the SD across replicates of each "
                "replicate's time-mean map (the replicate spread, F_sd_map); right, the SD of "
                "the forests' predictive distribution (F_pred_sd: one observation given its "
                "predictors, equal mixture over replicates and years). Each map has its own "
                "colour scale; titles give the maps integrated over area (Pg C yr-1).",
            )
        )
        figs["uncertainty"].append(
            _render(
                fig_calibration(summary),
                "calibration",
                "Held-out calibration of the two bands on every replicate's 20 % held-out "
                "records. Left: coverage of the central 50, 90 and 95 % intervals against "
                "nominal (dotted), mean over replicates, error bars their SD; filled circles "
                "the predictive distribution, open squares the replicate-spread band. Middle, "
                "right: mean PIT histograms (filled: predictive; dashed: replicate spread); a "
                "calibrated band is flat at 0.1, a too narrow one piles up in the outer bins.",
            )
        )
        if has_quantiles(store, summary):
            figs["uncertainty"].append(
                _render(
                    fig_quantile_maps(store, summary),
                    "map_quantiles",
                    f"SR and HR, time mean over {period}, exact order statistics of the pooled "
                    'predictive distribution (predictive = "quantiles"; equal mixture over '
                    "replicates and years). Left: the median (F_pred_median). Middle: 1.4826 x "
                    "the MAD (F_pred_mad_scaled, R's mad(): the paper's 'SD' most likely), "
                    "titled with its area integral. Right: the width of the central 95 % "
                    "interval, F_pred_q975 - F_pred_q025 (the bounds are in the store).",
                )
            )
    figs["latitude"].append(
        _render(
            fig_latitude(store, data.tables.get("latitudinal_profiles")),
            "latitude",
            "Zonal totals per grid row, in Tg C yr-1 per degree of latitude: for each replicate "
            "the time-mean map is summed over the row (flux x cell area x land fraction), then "
            "the median and the 2.5-97.5 % interval across replicates are drawn. AR/SR: the "
            "ratio of the zonal totals per replicate."
            + (
                " Dashed: the compared models, summed over the ensemble's prediction domain "
                "only (model flux outside it is not drawn; compare total_domain_pg with "
                "total_pg in global_totals), over the comparison period of srgpu compare; the "
                "ensemble band covers every year of the run."
                if data.model_names
                else ""
            ),
        )
    )
    figs["annual"].append(
        _render(
            fig_annual(store, summary),
            "annual",
            "Global totals per year (Pg C yr-1) across replicates (F_replicate_total): median and "
            "2.5-97.5 % interval."
            + (
                " Dotted: the demo world's true total."
                if summary.get("demo_truth_pg_per_yr")
                else ""
            )
            + (" One period: the drivers are a climatology." if climatology else ""),
        )
    )
    figs["validation"].append(
        _render(
            fig_validation_hist(store),
            "validation_hist",
            "Validation on each replicate's held-out 20 % of the records: distribution of R² "
            "and RMSE across replicates (below 20 replicates one line per replicate).",
        )
    )
    figs["validation"].append(
        _render(
            fig_sites(store),
            "sites",
            "Observed SRDB annual fluxes against the ensemble mean of their grid cell and year "
            "(F_mean at site_iyear, site_ilat, site_ilon). In-sample: most of these records "
            "trained some of the forests, so this is a fit, not a validation.",
        )
    )
    figs["global"].append(
        _render(
            fig_global(store, summary, data.tables, meta=data.compare_meta),
            "global",
            "Global totals (Pg C yr-1) and AR/SR. 'this run': mean across replicates of the "
            "time-mean total, error bar 2.5-97.5 %. 'Lu 2021 RF': the paper's random forests, "
            "error bar their 1982-2012 interannual range. '10 TEMs': range (box) and mean "
            "(line, dashed across the panel) of the ten TRENDY models; hatched: the individual "
            "model values the paper's text gives (Lu et al. 2021, Environ. Res. Lett. 16 054048, "
            "section 3.2, figure 5). Orange: models compared here (srgpu compare, totals on "
            "their own grid).",
        )
    )
    return figs
