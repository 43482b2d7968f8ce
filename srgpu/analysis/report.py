"""Figures and a self-contained HTML report of an ensemble store (``srgpu report``).

:func:`build_report` reads ``OUT/ensemble.zarr`` and ``OUT/summary.json`` (layout in
``docs/store.md``), optionally the tables of ``srgpu compare`` (a ``--compare`` directory, or
models compared in process with :func:`srgpu.analysis.compare.compare`), draws each figure with
matplotlib's Agg backend, writes the PNGs beside ``report.html`` and embeds them in it as base64
data URIs: the HTML needs no network and no other file. Each figure is one small function
taking the opened store (and the summary or tables) and returning a ``matplotlib`` figure.

Units shown: fluxes in g C m-2 yr-1, global totals in Pg C yr-1, zonal totals in Tg C yr-1 per
degree of latitude.
"""

from __future__ import annotations

import base64
import html
import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from srgpu.errors import InputError
from srgpu.run.store import open_ensemble_dataset

FLUXES = ("SR", "HR", "AR")
FLUX_NAMES = {
    "SR": "soil respiration (SR)",
    "HR": "heterotrophic respiration (HR)",
    "AR": "autotrophic (root) respiration (AR = SR - HR)",
}
FLUX_UNITS = "g C m$^{-2}$ yr$^{-1}$"
TOTAL_UNITS = "Pg C yr$^{-1}$"
COLORS = {"SR": "#8c510a", "HR": "#01665e", "AR": "#762a83"}
OCEAN = "#dde6ee"  # NaN outside land
OTHER_LAND = "#bdbdbd"  # land outside the prediction domain
DPI = 96

SECTIONS = (
    ("overview", "Overview"),
    ("maps", "Global maps"),
    ("latitude", "Latitudinal profiles"),
    ("annual", "Global totals per year"),
    ("validation", "Validation"),
    ("global", "Global totals against ecosystem models"),
    ("scores", "Model scores"),
    ("run", "Run configuration and QC"),
)
"""Section ids and titles of the report, in order (the ids are the HTML anchors)."""


# --------------------------------------------------------------------------------------------
# inputs


@dataclass
class ReportData:
    """Everything the report draws from: the opened store, its summary and comparison tables."""

    store: xr.Dataset
    summary: dict
    store_path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    compare_meta: dict = field(default_factory=dict)

    @property
    def model_names(self) -> list[str]:
        gt = self.tables.get("global_totals")
        if gt is None or gt.empty:
            return []
        return [s for s in dict.fromkeys(gt["source"]) if s != "RF"]


def locate_store(path: str | Path) -> tuple[Path, Path]:
    """``OUT`` or ``OUT/ensemble.zarr`` -> (the Zarr store, ``summary.json`` beside it)."""
    path = Path(path)
    if not path.exists():
        raise InputError("no such ensemble output", file=path, expected="OUT or OUT/ensemble.zarr")
    zarr = path / "ensemble.zarr" if (path / "ensemble.zarr").exists() else path
    summary = zarr.parent / "summary.json"
    if not summary.exists():
        raise InputError(
            "no summary.json beside the store (is the run finished?)",
            file=summary,
            expected="the summary that srgpu ensemble writes when every replicate is done",
        )
    return zarr, summary


def open_store(path: str | Path) -> tuple[xr.Dataset, dict, Path]:
    """Open the ensemble store and its summary; the store is loaded into memory (it holds
    time-mean maps and per-replicate maps, not the forests)."""
    zarr, summary_path = locate_store(path)
    store = open_ensemble_dataset(
        zarr, required=("SR", "HR", "AR", "cell_area", "land_fraction", "domain")
    )
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", file=summary_path) from None
    return store, summary, zarr


def read_compare_dir(directory: str | Path) -> tuple[dict[str, pd.DataFrame], dict]:
    """The CSV tables and ``compare.json`` that ``srgpu compare`` wrote to ``directory``."""
    directory = Path(directory)
    if not (directory / "global_totals.csv").exists():
        raise InputError(
            "not an srgpu compare output",
            file=directory / "global_totals.csv",
            expected="the directory written by srgpu compare (global_totals.csv, ...)",
        )
    tables = {}
    for csv in sorted(directory.glob("*.csv")):
        try:
            tables[csv.stem] = pd.read_csv(csv)
        except pd.errors.EmptyDataError:
            tables[csv.stem] = pd.DataFrame()
    meta_path = directory / "compare.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return tables, meta


def run_compare(
    store_path: Path,
    models: Mapping[str, str | Path],
    *,
    root_fraction: float | None = None,
    method: str = "conservative",
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Compare ``models`` with the store in process: the stages of
    :func:`srgpu.analysis.compare.compare` (``open_ensemble`` -> ``read_model`` -> ``prepare`` ->
    ``run_all``)."""
    from srgpu.analysis.compare import read_model
    from srgpu.analysis.compare.scores import open_ensemble, prepare, run_all

    ensemble = open_ensemble(store_path)
    if "site_flux" in ensemble:
        # the store writes variable-length strings (numpy StringDType), which
        # ``scores.site_scores`` cannot ``astype(str)``: hand it fixed-width strings
        flux = np.array([str(v) for v in np.asarray(ensemble["site_flux"].values)], dtype="U2")
        ensemble = ensemble.assign(site_flux=xr.DataArray(flux, dims=ensemble["site_flux"].dims))
    outputs = {
        name: read_model(path, name=name, root_fraction=root_fraction)
        for name, path in models.items()
    }
    cmp = prepare(ensemble, outputs, method=method)
    tables = run_all(cmp)
    meta = {
        "method": method,
        "root_fraction": root_fraction,
        "models": {
            name: {
                "path": str(models[name]),
                "period": list(cmp.periods[name]),
                "notes": list(cmp.notes[name]),
            }
            for name in cmp.models
        },
    }
    return tables, meta


# --------------------------------------------------------------------------------------------
# helpers


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _edges(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    c = np.asarray(centres, dtype=float)
    if c.size == 1:
        return np.array([lo, hi])
    mid = (c[1:] + c[:-1]) / 2
    first = c[0] - (mid[0] - c[0])
    last = c[-1] + (c[-1] - mid[-1])
    return np.clip(np.concatenate([[first], mid, [last]]), lo, hi)


def _weights(store: xr.Dataset) -> np.ndarray:
    """``cell_area x land_fraction`` (m2) on the domain, 0 elsewhere."""
    w = np.asarray(store["cell_area"].values, float) * np.asarray(
        store["land_fraction"].values, float
    )
    return np.where(np.asarray(store["domain"].values).astype(bool), np.nan_to_num(w), 0.0)


def _robust_limits(values: np.ndarray, *, upper_pct: float = 98.0) -> tuple[float, float]:
    """Colour limits: from 0 (or the low percentile where it is negative) to the
    ``upper_pct`` percentile of the finite values, so that a few extreme cells do not wash
    out the map."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo = min(0.0, float(np.percentile(v, 100 - upper_pct)))
    hi = float(np.percentile(v, upper_pct))
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return lo, hi


def _map_panel(ax, store, values, *, title, cmap, vmin, vmax, label, extend="max"):
    plt = _plt()
    lat, lon = store["lat"].values, store["lon"].values
    lat_e, lon_e = _edges(lat, -90, 90), _edges(lon, -180, 360)
    land = np.asarray(store["land_fraction"].values, float)
    domain = np.asarray(store["domain"].values).astype(bool)
    ax.set_facecolor(OCEAN)
    other = np.where((np.nan_to_num(land) > 0) & ~domain, 1.0, np.nan)
    ax.pcolormesh(
        lon_e, lat_e, other, cmap=plt.matplotlib.colors.ListedColormap([OTHER_LAND]), vmin=0, vmax=1
    )
    mesh = ax.pcolormesh(
        lon_e, lat_e, np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax
    )
    ax.set_xlim(lon_e[0], lon_e[-1])
    ax.set_ylim(-60 if lat_e[0] < -60 and not np.isfinite(values[lat < -60]).any() else -90, 90)
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(-180, 181, 60) if lon_e[0] < 0 else np.arange(0, 361, 60))
    ax.set_yticks(np.arange(-60, 91, 30))
    ax.tick_params(labelsize=7)
    ax.set_title(title, fontsize=9)
    cb = plt.colorbar(mesh, ax=ax, orientation="horizontal", pad=0.12, fraction=0.06, extend=extend)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return mesh


# --------------------------------------------------------------------------------------------
# figures


def fig_maps(store: xr.Dataset, flux: str):
    """Time-mean ensemble mean, SD across replicates and CV (%) of one flux."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.5), layout="constrained")
    mean = np.asarray(store[flux].values, float)
    sd = np.asarray(store[f"{flux}_sd_map"].values, float)
    cv = np.asarray(store[f"{flux}_cv"].values, float)
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
    fig.suptitle(FLUX_NAMES[flux] + ", time mean", fontsize=10)
    return fig


def fig_ratio_map(store: xr.Dataset):
    """AR/SR of the time-mean maps."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
    ratio = np.asarray(store["AR_SR_ratio"].values, float)
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
    reps = np.asarray(store[f"{flux}_replicate_map"].values, float)
    ilat = np.asarray(store["cell_ilat"].values, int)
    ilon = np.asarray(store["cell_ilon"].values, int)
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
    for ax, flux in zip(axes, FLUXES, strict=False):
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
        ax.plot(rows["zonal_total_tg"] / width, rows["lat"], lw=1, ls="--", label=str(name))


def fig_annual(store: xr.Dataset, summary: dict):
    """Per-year global totals: median and 2.5-97.5 % across replicates."""
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.4), layout="constrained")
    years = np.asarray(store["year"].values)
    clim = bool(summary.get("climatology"))
    truth = summary.get("demo_truth_pg_per_yr") or {}
    for ax, flux in zip(axes, FLUXES, strict=True):
        t = np.asarray(store[f"{flux}_replicate_total"].values, float)
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
    val = store["validation"]
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
    sel = np.array([str(v) for v in np.asarray(store["site_flux"].values)]) == flux
    obs = np.asarray(store["site_value"].values, float)[sel]
    iy = np.asarray(store["site_iyear"].values, int)[sel]
    ilat = np.asarray(store["site_ilat"].values, int)[sel]
    ilon = np.asarray(store["site_ilon"].values, int)[sel]
    cube = np.asarray(store[f"{flux}_mean"].values, float)
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
    sr = np.asarray(store["SR_replicate_total"].values, float).mean(axis=1)
    ar = np.asarray(store["AR_replicate_total"].values, float).mean(axis=1)
    return ar / sr


def fig_global(store: xr.Dataset, summary: dict, tables: Mapping[str, pd.DataFrame]):
    """Global SR, HR, AR and AR/SR: the ensemble, the paper's RF and ten models, given models."""
    from srgpu.analysis.compare import reference as ref

    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(14.5, 4.6), layout="constrained")
    models = ref.model_table()
    gt = tables.get("global_totals", pd.DataFrame())
    mg = tables.get("model_globals", pd.DataFrame())
    truth = summary.get("demo_truth_pg_per_yr") or {}
    for ax, flux in zip(axes, (*FLUXES, "AR/SR"), strict=True):
        labels, x = [], 0
        if flux == "AR/SR":
            reps = _replicate_ratio(store)
        else:
            reps = np.asarray(store[f"{flux}_replicate_total"].values, float).mean(axis=1)
        lo, hi = np.quantile(reps, [0.025, 0.975])
        m = float(reps.mean())
        ax.bar(x, m, color="#4d4d4d", yerr=[[m - lo], [hi - m]], capsize=4)
        labels.append("this run\n(2.5-97.5 %)")
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
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xticks(range(x), labels, fontsize=7, rotation=90)
        ax.set_title(f"global {flux}", fontsize=10)
        ax.set_ylabel("AR / SR (1)" if flux == "AR/SR" else TOTAL_UNITS, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
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


# --------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;
color:#222;background:#fafafa}
main{max-width:1400px;margin:0 auto;padding:0 24px 48px}
header{background:#2d3e50;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:1.5em} header p{margin:4px 0 0;color:#dfe6ee}
nav{background:#eef2f6;padding:8px 24px;border-bottom:1px solid #ccd}
nav a{margin-right:14px;color:#2d3e50;text-decoration:none;font-size:.92em}
h2{border-bottom:2px solid #2d3e50;padding-bottom:4px;margin-top:36px}
figure{margin:12px 0 20px;background:#fff;border:1px solid #ddd;padding:8px}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.88em;color:#444;margin-top:6px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:.86em;background:#fff}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eef2f6} td.l,th.l{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px;margin:10px 0}
pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:.82em;overflow-x:auto}
.kv td:first-child{text-align:left;color:#444}
p.cap{font-size:.88em;color:#444;margin:6px 0 2px}
"""

# Sets data-images-loaded / data-images-total on <body> once the page is loaded, so that a
# headless browser can check that every embedded figure decoded (tests/test_report.py).
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok));
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "—"
        a = abs(float(value))
        return f"{value:.0f}" if a >= 1e4 else f"{value:.3g}" if a < 10 else f"{value:.1f}"
    return str(value)


def html_table(df: pd.DataFrame, *, columns: list[str] | None = None, caption: str = "") -> str:
    """A small HTML table (numbers right-aligned, 3 significant digits)."""
    if df is None or df.empty:
        return '<p class="note">(empty table)</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df]
    num = {c: pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in cols}
    head = "".join(f'<th class="{"" if num[c] else "l"}">{_e(c)}</th>' for c in cols)
    rows = []
    for _, row in df.iterrows():
        cells = "".join(
            f'<td class="{"" if num[c] else "l"}">{_e(_fmt(row[c]))}</td>' for c in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    cap = f'<p class="cap">{_e(caption)}</p>' if caption else ""
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


@dataclass
class Figure:
    """A rendered figure: file name, PNG bytes and caption."""

    name: str
    png: bytes
    caption: str

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return (
            f'<figure id="fig-{_e(self.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(self.name)}"><figcaption>{_e(self.caption)}</figcaption></figure>'
        )


def _render(fig, name: str, caption: str) -> Figure:
    import io

    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Figure(name=name, png=buf.getvalue(), caption=caption)


def make_figures(data: ReportData) -> dict[str, list[Figure]]:
    """Every figure of the report, grouped by section id."""
    store, summary = data.store, data.summary
    climatology = bool(summary.get("climatology"))
    period = "the climatology" if climatology else _period(summary)
    figs: dict[str, list[Figure]] = {k: [] for k, _ in SECTIONS}
    for flux in FLUXES:
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
    figs["latitude"].append(
        _render(
            fig_latitude(store, data.tables.get("latitudinal_profiles")),
            "latitude",
            "Zonal totals per grid row, in Tg C yr-1 per degree of latitude: for each replicate "
            "the time-mean map is summed over the row (flux x cell area x land fraction), then "
            "the median and the 2.5-97.5 % interval across replicates are drawn. AR/SR: the "
            "ratio of the zonal totals per replicate."
            + (" Dashed: the compared models." if data.model_names else ""),
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
            fig_global(store, summary, data.tables),
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


def _period(summary: dict) -> str:
    years = summary.get("years") or []
    return f"{min(years)}-{max(years)}" if years else "the driver period"


def _overview(data: ReportData) -> str:
    s = data.summary
    parts = []
    if s.get("climatology"):
        parts.append(
            '<p class="note">The drivers are a 12-month <b>climatology</b>: the run predicts one '
            "period, not one per year, and every SRDB record joins the climatology whatever its "
            "year. The paper used monthly drivers for 1982-2012; interannual variability is "
            "absent here.</p>"
        )
    if s.get("demo"):
        parts.append(
            '<p class="note">This run is on the synthetic <b>demo world</b> '
            "(docs/demo.md): its fluxes are not real estimates.</p>"
        )
    rows = []
    truth = s.get("demo_truth_pg_per_yr") or {}
    for flux in FLUXES:
        f = s.get("fluxes", {}).get(flux, {})
        t = f.get("total_pg_per_yr", {})
        row = {
            "flux": flux,
            "mean": t.get("mean"),
            "sd": t.get("sd"),
            "median": t.get("median"),
            "mad": t.get("mad"),
            "q025": t.get("q025"),
            "q975": t.get("q975"),
            "integrated SD": f.get("integrated_sd_pg_per_yr"),
            "integrated MAD": f.get("integrated_mad_pg_per_yr"),
            "interannual min": (f.get("interannual_range") or [None, None])[0],
            "interannual max": (f.get("interannual_range") or [None, None])[1],
        }
        if truth:
            row["demo truth"] = truth.get(flux)
        rows.append(row)
    parts.append(
        "<p>Units: fluxes (maps, sites) in g C m-2 yr-1; global totals in Pg C yr-1; zonal "
        "totals in Tg C yr-1 per degree of latitude. AR = SR - HR, replicate by replicate.</p>"
    )
    parts.append("<h3>Global totals (Pg C yr-1)</h3>")
    parts.append(
        html_table(
            pd.DataFrame(rows).astype({"flux": str}),
            caption="Across replicates of the time-mean global total; integrated SD/MAD: the "
            "per-cell SD/MAD map summed over area (the paper's 'global uncertainty').",
        )
    )
    ratios = s.get("ratios", {})
    counts = s.get("counts", {})
    domain = s.get("domain", {})
    parts.append(
        _kv_table(
            [
                ("replicates", s.get("n_replicates")),
                ("years", _period(s) if not s.get("climatology") else "climatology"),
                ("SR records used", counts.get("SR")),
                ("HR records used", counts.get("HR")),
                ("domain cells", domain.get("n_cells")),
                ("domain area (km2)", domain.get("area_km2")),
                ("AR/SR (global)", ratios.get("AR/SR")),
                ("HR/SR (global)", ratios.get("HR/SR")),
                ("config hash", s.get("config_hash")),
                ("srgpu version", s.get("srgpu_version")),
            ]
        )
    )
    return "".join(parts)


def _validation_table(summary: dict) -> str:
    rows = []
    for flux, metrics in summary.get("validation", {}).items():
        for metric, v in metrics.items():
            rows.append({"flux": flux, "metric": metric, "mean": v.get("mean"), "sd": v.get("sd")})
    return html_table(
        pd.DataFrame(rows), caption="Held-out validation across replicates (mean, SD)."
    )


SCORE_TABLES = (
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
        ["source", "flux", "mean_abs_z", "z_score", "within_2sd", "ilamb_bias_score"],
    ),
    ("biome_cv", "Spread across models per vegetation bin", None),
    ("model_globals", "Models' global values", None),
)


def _scores(data: ReportData) -> str:
    if not data.tables:
        return (
            '<p class="note">No model compared. Give <code>--model NAME=PATH</code> or '
            "<code>--compare DIR</code> (the output of <code>srgpu compare</code>) to score "
            "ecosystem models here. The paper's reference values are below.</p>" + _reference_html()
        )
    parts = []
    for name, title, cols in SCORE_TABLES:
        if name in data.tables:
            parts.append(f"<h3>{_e(title)}</h3>" + html_table(data.tables[name], columns=cols))
    for model, meta in data.compare_meta.get("models", {}).items():
        for note in meta.get("notes", []):
            parts.append(f'<p class="note">{_e(model)}: {_e(note)}</p>')
    return "".join(parts) + _reference_html()


def _reference_html() -> str:
    from srgpu.analysis.compare.reference import CITATION, reference_table

    df = reference_table()
    df = df[df["value"].notna()]
    return f"<h3>Values reported by {_e(CITATION)}</h3>" + html_table(
        df, columns=["model", "flux", "value", "units", "where"]
    )


def _qc_html(qc: Any) -> str:
    """The QC counts of the summary as tables (reason x records/SR/HR, site joining)."""
    if not isinstance(qc, dict):
        return ""
    parts = []
    obs = qc.get("observations", {})
    reasons = obs.get("reasons") if isinstance(obs, dict) else None
    if isinstance(reasons, dict):
        rows = [
            {"reason": k, **{c: v.get(c) for c in ("records", "SR", "HR")}}
            for k, v in reasons.items()
            if isinstance(v, dict)
        ]
        parts.append(
            "<h3>Observation QC</h3>"
            + html_table(
                pd.DataFrame(rows),
                caption=f"SRDB records dropped per reason ({obs.get('n_records', '?')} records "
                "read); 'kept' is what the forests saw.",
            )
        )
    sites = qc.get("sites")
    if isinstance(sites, dict):
        parts.append("<h3>Site joining</h3>" + _kv_table(list(sites.items())))
    return "".join(parts)


def _run_html(data: ReportData) -> str:
    from srgpu.config import EnsembleConfig

    s = data.summary
    config_text = data.store.attrs.get("config")
    if not config_text and isinstance(s.get("config"), dict):
        try:
            config_text = EnsembleConfig.from_dict(s["config"]).to_toml()
        except Exception:
            config_text = json.dumps(s["config"], indent=1)
    parts = [
        _kv_table(
            [
                ("store", data.store_path.name),
                ("config hash (sha256)", s.get("config_hash", data.store.attrs.get("config_hash"))),
                ("climatology drivers", bool(s.get("climatology"))),
                ("demo world", bool(s.get("demo"))),
            ]
        ),
        "<h3>Configuration</h3>",
        f"<pre>{_e(config_text or '(not recorded)')}</pre>",
        _qc_html(s.get("qc")),
    ]
    timing = s.get("timing")
    if isinstance(timing, dict) and timing:
        flat = [(k, v) for k, v in timing.items() if not isinstance(v, dict | list)]
        if flat:
            parts.append("<h3>Timing (s)</h3>" + _kv_table(flat))
    return "".join(parts)


def render_html(data: ReportData, figures: Mapping[str, list[Figure]]) -> str:
    """The whole report as one HTML string (figures embedded)."""
    s = data.summary
    title = "srgpu ensemble report"
    period = "climatology" if s.get("climatology") else _period(s)
    sub = (
        f"{s.get('n_replicates', '?')} replicates, {period}, "
        f"config {str(s.get('config_hash', ''))[:12]}"
    )
    body = {
        "overview": _overview(data),
        "validation": _validation_table(s),
        "scores": _scores(data),
        "run": _run_html(data),
    }
    nav = "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in SECTIONS)
    sections = []
    for key, heading in SECTIONS:
        content = body.get(key, "") + "".join(f.html() for f in figures.get(key, []))
        sections.append(f'<section id="{key}"><h2>{_e(heading)}</h2>{content}</section>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f"<body><header><h1>{_e(title)}</h1><p>{_e(sub)}. Method after Lu et al. 2021, "
        "Environ. Res. Lett. 16 054048.</p></header>"
        f"<nav>{nav}</nav><main>{''.join(sections)}</main></body></html>\n"
    )


def build_report(
    store: str | Path,
    *,
    out: str | Path | None = None,
    compare_dir: str | Path | None = None,
    models: Mapping[str, str | Path] | None = None,
    root_fraction: float | None = None,
    method: str = "conservative",
) -> Path:
    """Write ``report.html`` and its PNG figures to ``out`` (default ``OUT/report``); return
    the HTML's path. ``compare_dir``: tables of ``srgpu compare``; ``models``: name -> path,
    compared in process (not both)."""
    from srgpu.errors import ConfigError

    if compare_dir is not None and models:
        raise ConfigError("give either --compare DIR or --model NAME=PATH, not both")
    ds, summary, zarr = open_store(store)
    tables: dict[str, pd.DataFrame] = {}
    meta: dict = {}
    if compare_dir is not None:
        tables, meta = read_compare_dir(compare_dir)
    elif models:
        tables, meta = run_compare(zarr, models, root_fraction=root_fraction, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of masked maps
        data = ReportData(
            store=ds.load(), summary=summary, store_path=zarr, tables=tables, compare_meta=meta
        )
        figures = make_figures(data)
    out_dir = Path(out) if out is not None else zarr.parent / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for figs in figures.values():
        for fig in figs:
            (out_dir / f"{fig.name}.png").write_bytes(fig.png)
    path = out_dir / "report.html"
    path.write_text(render_html(data, figures), encoding="utf-8")
    return path
