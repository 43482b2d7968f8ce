"""Scores of ecosystem models against SRDB sites and the random-forest ensemble.

Every function takes the ensemble store (``xr.Dataset``, layout in ``docs/store.md``) and the
models' fields on the ensemble grid (:class:`Comparison`) and returns a tidy ``pandas.DataFrame``
(one row per source x flux [x band/bin]) or an ``xr.Dataset``; ``"RF"`` is the ensemble's row.
Formulas are in ``docs/compare.md``. Area weights are ``cell_area x land_fraction`` of the store
over its prediction domain, restricted to cells where both compared fields are finite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from srgpu.analysis.compare.bands import flux_band, predictive_sd, resolve_band
from srgpu.analysis.compare.models import ModelOutput
from srgpu.analysis.compare.periods import Period, comparison_period, ensemble_period_fields
from srgpu.analysis.compare.regrid import area_total, regrid_fields, target_grid
from srgpu.data.vegetation import VEG_BINS
from srgpu.errors import InputError
from srgpu.schema import (
    CELL_AREA,
    CELL_ILAT,
    CELL_ILON,
    DOMAIN,
    LAND_FRACTION,
    OUTPUT_FLUXES,
    SITE_FLUX,
    SITE_ILAT,
    SITE_ILON,
    SITE_IYEAR,
    SITE_VALUE,
    SITE_YEAR,
    VEG_BIN,
    flux_var,
)

RF = "RF"
DRIVERS = ("gpp", "npp", "ra", "cSoil", "cLitter", "cRoot")
"""Model variables related to the soil fluxes across models (paper figures 7-9)."""


@dataclass(frozen=True)
class Comparison:
    """Models brought onto the ensemble grid, ready to score.

    ``maps[name]``: (year, lat, lon) fields on the ensemble grid (all years of the model);
    ``period``: the one comparison period (:mod:`srgpu.analysis.compare.periods`: the years the
    ensemble and every model share, cut to ``years``); ``means[name]``: the model's mean over
    it, masked to the domain; ``periods[name]``: its first and last year (``(0, 0)`` for a
    model without a time axis); ``rf_maps[flux]`` / ``rf_sd[flux]``: the ensemble's time-mean
    map and its uncertainty ``s`` over the same years, masked to the domain: the SD across
    replicates, or the predictive SD (``band``, :mod:`srgpu.analysis.compare.bands`; AR keeps
    the spread); ``band_notes``: why that band. Every map-based score uses them.
    """

    store: xr.Dataset
    models: Mapping[str, ModelOutput]
    maps: Mapping[str, xr.Dataset]
    means: Mapping[str, xr.Dataset]
    periods: Mapping[str, tuple[int, int]]
    method: str = "conservative"
    years: tuple[int, int] | None = None
    notes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    period: Period = field(default_factory=lambda: Period(years=(), ensemble_years=None))
    rf_maps: Mapping[str, xr.DataArray] = field(default_factory=dict)
    rf_sd: Mapping[str, xr.DataArray] = field(default_factory=dict)
    period_notes: tuple[str, ...] = ()
    band: str = "spread"
    band_notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# inputs


def open_ensemble(path) -> xr.Dataset:
    """The finished run at ``path`` (``OUT`` or ``OUT/ensemble.zarr``, through
    :func:`srgpu.results.open_run`) with the variables the comparison needs."""
    from srgpu.results import open_run

    store = open_run(path, required=("lat", "lon", CELL_AREA, LAND_FRACTION, DOMAIN)).dataset
    if not any(f in store for f in OUTPUT_FLUXES):
        raise InputError(
            "ensemble store has no flux map",
            file=path,
            field="SR",
            expected="SR, HR or AR (lat, lon)",
        )
    return store


def ensemble_years(store: xr.Dataset) -> list[int] | None:
    """The store's years, or ``None`` for a climatology (no year to match)."""
    if "year" not in store.coords:
        return None
    flags = (store["year"].attrs.get("climatology"), store.attrs.get("climatology"))
    if any(f in (1, True, "1") for f in flags):
        return None
    return [int(y) for y in store["year"].values]


def prepare(
    store: xr.Dataset,
    models: Mapping[str, ModelOutput],
    *,
    method: str = "conservative",
    years: tuple[int, int] | None = None,
    band: str | None = None,
) -> Comparison:
    """Regrid every model to the ensemble grid; take the ensemble's and each model's mean over
    the one comparison period (:func:`~srgpu.analysis.compare.periods.comparison_period`) and
    the ensemble's uncertainty ``s`` of ``band`` (``"spread"``, ``"predictive"`` or ``None``:
    :func:`~srgpu.analysis.compare.bands.resolve_band`)."""
    band_used, band_notes = resolve_band(store, band)
    target = target_grid(store)
    domain = store[DOMAIN].astype(bool)
    ens_years = ensemble_years(store)
    maps, means, periods, notes = {}, {}, {}, {}
    for name, model in models.items():
        data = model.data
        maps[name] = regrid_fields(
            data, target=target, land_fraction=data[LAND_FRACTION], method=method
        ).assign_coords(lat=store["lat"], lon=store["lon"])
        notes[name] = tuple(model.notes)
    model_years = {
        name: [int(y) for y in m.data["year"].values] if "year" in m.data.dims else None
        for name, m in models.items()
    }
    period = comparison_period(ensemble_years=ens_years, model_years=model_years, requested=years)
    for name, gridded in maps.items():
        periods[name] = period.first_last if model_years[name] is not None else (0, 0)
        means[name] = _time_mean(gridded, period).where(domain)
    rf_maps, rf_sd, period_notes = {}, {}, []
    for flux in OUTPUT_FLUXES:
        if flux not in store:
            continue
        rf_maps[flux], sd, note = ensemble_period_fields(store, flux, period)
        if flux_band(band_used, flux) == "predictive":
            sd, band_note = predictive_sd(store, flux, full_period=period.full)
            sd = sd.where(domain)
            if band_note:
                band_notes.append(band_note)
        if sd is not None:
            rf_sd[flux] = sd
        if note:
            period_notes.append(note)
    return Comparison(
        store=store,
        models=dict(models),
        maps=maps,
        means=means,
        periods=periods,
        method=method,
        years=years,
        notes=notes,
        period=period,
        rf_maps=rf_maps,
        rf_sd=rf_sd,
        period_notes=tuple(period_notes),
        band=band_used,
        band_notes=tuple(band_notes),
    )


def _time_mean(ds: xr.Dataset, period: Period) -> xr.Dataset:
    if "year" not in ds.dims:
        return ds
    sel = ds.sel(year=list(period.years))
    out = sel.mean("year", keep_attrs=True)
    for name in ds.data_vars:  # time-invariant variables (stocks without time) pass through
        if "year" not in ds[name].dims:
            out[name] = ds[name]
    return out


def _weights(store: xr.Dataset) -> xr.DataArray:
    return (store[CELL_AREA] * store[LAND_FRACTION]).where(store[DOMAIN].astype(bool), 0.0)


def _ens_totals(store: xr.Dataset, flux: str, period: Period) -> np.ndarray | None:
    """Per-replicate global totals (Pg C yr-1) of the ensemble, averaged over the period's
    years, or ``None``."""
    name = flux_var(flux, "replicate_total")
    if name not in store:
        return None
    da = store[name]
    if not period.full and "year" in da.dims:
        da = da.sel(year=list(period.years))
    return np.asarray(da.mean("year").values if "year" in da.dims else da.values, dtype=float)


# --------------------------------------------------------------------------------------------
# global values


def global_totals(cmp: Comparison) -> pd.DataFrame:
    """Global SR/HR/AR per source with the ensemble's uncertainty band.

    Columns: ``source, flux, total_pg`` (models: on their own grid with their own land and area,
    mean over their period; RF: mean of per-replicate totals), ``total_domain_pg`` (on the
    ensemble grid and domain), ``rf_mean, rf_sd, rf_q025, rf_q975`` (across replicates of the
    time-mean total), ``in_band`` (q025 <= total <= q975), ``diff_pct`` (100 (total/rf_mean - 1)),
    ``period``.
    """
    store = cmp.store
    weights = _weights(store)
    rows = []
    for flux in OUTPUT_FLUXES:
        reps = _ens_totals(store, flux, cmp.period)
        band = _band(reps)
        if flux in store:
            dom = float((cmp.rf_maps[flux].fillna(0.0) * weights).sum() * 1e-15)
            total = band["rf_mean"] if reps is not None else dom
            rows.append(
                {
                    "source": RF,
                    "flux": flux,
                    "total_pg": total,
                    "total_domain_pg": dom,
                    **band,
                    "period": cmp.period.ensemble_label,
                }
            )
        for name, model in cmp.models.items():
            if flux not in model.data:
                continue
            native = _native_total(model, flux, cmp.period)
            dom = float((cmp.means[name][flux] * weights).sum() * 1e-15)
            rows.append(
                {
                    "source": name,
                    "flux": flux,
                    "total_pg": native,
                    "total_domain_pg": dom,
                    **band,
                    "period": cmp.period.label if cmp.periods[name] != (0, 0) else "fixed",
                }
            )
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["in_band"] = (df["total_pg"] >= df["rf_q025"]) & (df["total_pg"] <= df["rf_q975"])
    df["diff_pct"] = 100.0 * (df["total_pg"] / df["rf_mean"] - 1.0)
    return df


def _band(reps: np.ndarray | None) -> dict[str, float]:
    if reps is None or reps.size == 0:
        return dict.fromkeys(("rf_mean", "rf_sd", "rf_q025", "rf_q975"), np.nan)
    return {
        "rf_mean": float(reps.mean()),
        "rf_sd": float(reps.std(ddof=1)) if reps.size > 1 else 0.0,
        "rf_q025": float(np.quantile(reps, 0.025)),
        "rf_q975": float(np.quantile(reps, 0.975)),
    }


def _native_total(model: ModelOutput, var: str, period: Period) -> float:
    data = model.data
    scale = 1e-12 if var.startswith("c") else 1e-15  # kg C m-2 -> Pg C; g C m-2 yr-1 -> Pg C yr-1
    total = area_total(
        data[var], area=data[CELL_AREA], land_fraction=data[LAND_FRACTION], scale=scale
    )
    if "year" in total.dims:
        total = total.sel(year=list(period.years)).mean("year")
    return float(total)


def model_globals(cmp: Comparison) -> pd.DataFrame:
    """Global values per model on its own grid (one row per model): SR, HR, AR, gpp, npp, ra
    (Pg C yr-1), cSoil, cLitter, cRoot (Pg C) and AR_SR; the RF row has SR, HR, AR, AR_SR."""
    rows = []
    store = cmp.store
    rf = {"source": RF}
    for flux in OUTPUT_FLUXES:
        reps = _ens_totals(store, flux, cmp.period)
        if reps is not None:
            rf[flux] = float(reps.mean())
        elif flux in store:
            rf[flux] = float((cmp.rf_maps[flux].fillna(0.0) * _weights(store)).sum() * 1e-15)
    rows.append(rf)
    for name, model in cmp.models.items():
        row = {"source": name}
        for var in (*OUTPUT_FLUXES, *DRIVERS):
            if var in model.data:
                row[var] = _native_total(model, var, cmp.period)
        rows.append(row)
    df = pd.DataFrame(rows).set_index("source")
    for col in (*OUTPUT_FLUXES, *DRIVERS):
        if col not in df:
            df[col] = np.nan
    df["AR_SR"] = df["AR"] / df["SR"]
    return df.reset_index()


def relationships(
    globals_table: pd.DataFrame,
    *,
    ys: Sequence[str] = OUTPUT_FLUXES,
    xs: Sequence[str] = DRIVERS,
) -> pd.DataFrame:
    """Across-model linear regressions ``y = slope x + intercept`` of global values (paper
    figures 7 and 9): columns ``y, x, n, slope, intercept, r, p`` (NaN below 3 models). The RF
    row is left out."""
    models = globals_table[globals_table["source"] != RF]
    rows = []
    for y in ys:
        for x in xs:
            pair = models[[x, y]].dropna() if {x, y} <= set(models) else pd.DataFrame()
            row = {"y": y, "x": x, "n": len(pair)}
            if len(pair) >= 3 and pair[x].nunique() > 1:
                fit = stats.linregress(pair[x].to_numpy(), pair[y].to_numpy())
                row |= {
                    "slope": fit.slope,
                    "intercept": fit.intercept,
                    "r": fit.rvalue,
                    "p": fit.pvalue,
                }
            else:
                row |= dict.fromkeys(("slope", "intercept", "r", "p"), np.nan)
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# sites


def site_scores(cmp: Comparison) -> pd.DataFrame:
    """Pearson r, RMSE and bias against the SRDB sites of the store (paper figure 4).

    Each site takes the value of its cell (``site_ilat``, ``site_ilon``): a model's value in the
    site's year when the model has that year, otherwise the model's mean over its period; the
    ensemble's ``F_mean`` of the site year (``site_iyear``), or the time-mean map ``F`` for a
    climatology. Columns: ``source, flux, n, r, rmse, bias, obs_mean, sim_mean`` (g C m-2 yr-1).
    """
    store = cmp.store
    needed = (SITE_FLUX, SITE_ILAT, SITE_ILON, SITE_VALUE)
    if not all(n in store for n in needed):
        return pd.DataFrame(
            columns=["source", "flux", "n", "r", "rmse", "bias", "obs_mean", "sim_mean"]
        )
    # the store's strings may be numpy StringDType or objects: normalise to plain str
    flux_of = np.array([str(v) for v in np.asarray(store[SITE_FLUX].values)])
    ilat = np.asarray(store[SITE_ILAT].values, dtype=int)
    ilon = np.asarray(store[SITE_ILON].values, dtype=int)
    obs = np.asarray(store[SITE_VALUE].values, dtype=float)
    year = np.asarray(store[SITE_YEAR].values, dtype=float) if SITE_YEAR in store else None
    iyear = np.asarray(store[SITE_IYEAR].values, dtype=int) if SITE_IYEAR in store else None
    rows = []
    for flux in ("SR", "HR"):
        sel = flux_of == flux
        if not sel.any():
            continue
        if flux in store:
            rf = _rf_at_sites(
                store, flux, ilat[sel], ilon[sel], None if iyear is None else iyear[sel]
            )
            rows.append({"source": RF, "flux": flux, **_pair_stats(rf, obs[sel])})
        for name, gridded in cmp.maps.items():
            if flux not in gridded:
                continue
            sim = _model_at_sites(
                gridded[flux],
                cmp.means[name][flux],
                ilat[sel],
                ilon[sel],
                None if year is None else year[sel],
            )
            rows.append({"source": name, "flux": flux, **_pair_stats(sim, obs[sel])})
    return pd.DataFrame(rows)


def _rf_at_sites(store, flux, ilat, ilon, iyear) -> np.ndarray:
    mean_map = np.asarray(store[flux].values, dtype=float)
    out = mean_map[ilat, ilon]
    cube_name = flux_var(flux, "mean")
    if iyear is not None and cube_name in store and ensemble_years(store) is not None:
        cube = np.asarray(store[cube_name].values, dtype=float)
        ok = (iyear >= 0) & (iyear < cube.shape[0])
        out = np.where(ok, cube[np.clip(iyear, 0, cube.shape[0] - 1), ilat, ilon], out)
    return out


def _model_at_sites(cube: xr.DataArray, mean: xr.DataArray, ilat, ilon, year) -> np.ndarray:
    out = np.asarray(mean.values, dtype=float)[ilat, ilon]
    if year is None or "year" not in cube.dims:
        return out
    years = np.asarray(cube["year"].values, dtype=float)
    values = np.asarray(cube.transpose("year", "lat", "lon").values, dtype=float)
    pos = np.searchsorted(years, year)
    hit = (pos < years.size) & (years[np.clip(pos, 0, years.size - 1)] == year)
    at_year = values[np.clip(pos, 0, years.size - 1), ilat, ilon]
    # a site in the model's years but outside the domain mask keeps its yearly value
    return np.where(hit & np.isfinite(at_year), at_year, out)


def _pair_stats(sim: np.ndarray, obs: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(sim) & np.isfinite(obs)
    n = int(ok.sum())
    if n == 0:
        return {
            "n": 0,
            "r": np.nan,
            "rmse": np.nan,
            "bias": np.nan,
            "obs_mean": np.nan,
            "sim_mean": np.nan,
        }
    s, o = sim[ok], obs[ok]
    r = float(np.corrcoef(s, o)[0, 1]) if n > 1 and s.std() > 0 and o.std() > 0 else np.nan
    return {
        "n": n,
        "r": r,
        "rmse": float(np.sqrt(np.mean((s - o) ** 2))),
        "bias": float(np.mean(s - o)),
        "obs_mean": float(o.mean()),
        "sim_mean": float(s.mean()),
    }


# --------------------------------------------------------------------------------------------
# maps


def _sources(cmp: Comparison, flux: str) -> dict[str, xr.DataArray]:
    out = {}
    if flux in cmp.rf_maps:
        out[RF] = cmp.rf_maps[flux]
    for name, mean in cmp.means.items():
        if flux in mean:
            out[name] = mean[flux]
    return out


def latitudinal_profiles(cmp: Comparison, *, band_deg: float | None = None) -> pd.DataFrame:
    """Zonal profiles (paper figure 6): per latitude band (the grid rows, or bands of
    ``band_deg`` degrees), the area-weighted mean (g C m-2 yr-1) and total (Tg C yr-1) over the
    domain. RF rows also carry ``rf_q025, rf_q975`` of the zonal total across replicates (from
    ``F_replicate_map``). Columns: ``lat, source, flux, zonal_mean, zonal_total_tg, rf_q025,
    rf_q975``."""
    store = cmp.store
    weights = _weights(store)
    lat = store["lat"].values
    bands = lat if band_deg is None else (np.floor((lat + 90.0) / band_deg) + 0.5) * band_deg - 90
    band_da = xr.DataArray(bands, dims="lat", coords={"lat": store["lat"]}, name="band")
    frames = []
    for flux in OUTPUT_FLUXES:
        for source, field_ in _sources(cmp, flux).items():
            w = weights.where(field_.notnull(), 0.0)
            total = ((field_.fillna(0.0) * w).groupby(band_da).sum(("lat", "lon"))).compute()
            wsum = w.groupby(band_da).sum(("lat", "lon")).compute()
            with np.errstate(divide="ignore", invalid="ignore"):
                mean = total / wsum.where(wsum > 0)
            total = total * 1e-12
            df = pd.DataFrame(
                {
                    "lat": total["band"].values,
                    "source": source,
                    "flux": flux,
                    "zonal_mean": mean.values,
                    "zonal_total_tg": total.values,
                }
            )
            if source == RF and cmp.period.full:  # replicate maps are all-year means
                df = df.join(_rf_zonal_band(store, flux, weights, bands), on="lat")
            frames.append(df)
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for col in ("rf_q025", "rf_q975"):
        if col not in out:
            out[col] = np.nan
    return out


def _rf_zonal_band(store, flux, weights, bands) -> pd.DataFrame:
    """2.5 and 97.5 % quantiles across replicates of the zonal totals (Tg C yr-1), reduced
    lazily over ``cell`` so that a (2000 x 60 000) replicate map is never held in float64."""
    name = flux_var(flux, "replicate_map")
    if name not in store or CELL_ILAT not in store:
        return pd.DataFrame(columns=["rf_q025", "rf_q975"], index=pd.Index([], name="lat"))
    ilat = np.asarray(store[CELL_ILAT].values, dtype=int)
    ilon = np.asarray(store[CELL_ILON].values, dtype=int)
    w = xr.DataArray(np.asarray(weights.values, dtype=float)[ilat, ilon], dims="cell")
    band = xr.DataArray(np.asarray(bands)[ilat], dims="cell", name="band")
    totals = (store[name].fillna(0.0) * w).groupby(band).sum("cell").compute() * 1e-12
    q = totals.quantile([0.025, 0.975], dim="replicate").transpose("band", "quantile")
    return pd.DataFrame(
        q.values, columns=["rf_q025", "rf_q975"], index=pd.Index(q["band"].values, name="lat")
    )


def biome_totals(cmp: Comparison) -> pd.DataFrame:
    """Totals per vegetation bin (Pg C yr-1) of SR, HR, AR and AR/SR per source over the domain
    (paper tables S2-S5). Columns: ``bin, bin_name, source, flux, value``."""
    store = cmp.store
    if VEG_BIN not in store:
        return pd.DataFrame(columns=["bin", "bin_name", "source", "flux", "value"])
    weights = _weights(store)
    veg = store[VEG_BIN]
    rows = []
    per: dict[tuple[int, str], dict[str, float]] = {}
    for flux in OUTPUT_FLUXES:
        for source, field_ in _sources(cmp, flux).items():
            for b in VEG_BINS:
                w = weights.where(veg == b, 0.0)
                value = float((field_.fillna(0.0) * w).sum() * 1e-15)
                per.setdefault((b, source), {})[flux] = value
                rows.append(
                    {
                        "bin": b,
                        "bin_name": VEG_BINS[b],
                        "source": source,
                        "flux": flux,
                        "value": value,
                    }
                )
    for (b, source), vals in per.items():
        if vals.get("SR") and "AR" in vals:
            rows.append(
                {
                    "bin": b,
                    "bin_name": VEG_BINS[b],
                    "source": source,
                    "flux": "AR/SR",
                    "value": vals["AR"] / vals["SR"],
                }
            )
    return pd.DataFrame(rows)


def biome_cv(biomes: pd.DataFrame) -> pd.DataFrame:
    """Across-model spread per bin and flux (RF excluded): ``bin, bin_name, flux, n_models,
    mean, sd, cv_pct`` (sd with ddof=1, cv = 100 sd / mean)."""
    models = biomes[biomes["source"] != RF]
    if models.empty:
        return pd.DataFrame(columns=["bin", "bin_name", "flux", "n_models", "mean", "sd", "cv_pct"])
    g = models.groupby(["bin", "bin_name", "flux"], sort=True)["value"]
    out = g.agg(n_models="count", mean="mean", sd=lambda v: v.std(ddof=1)).reset_index()
    out["cv_pct"] = 100.0 * out["sd"] / out["mean"]
    return out


def _wstats(model: np.ndarray, ref: np.ndarray, w: np.ndarray) -> dict[str, float]:
    ok = np.isfinite(model) & np.isfinite(ref) & (w > 0)
    m, r, w = model[ok], ref[ok], w[ok]
    if m.size < 2:
        return dict.fromkeys(
            ("sd_ref", "sd_model", "sd_norm", "r", "crmsd", "crmsd_norm", "bias", "bias_pct"),
            np.nan,
        ) | {"n_cells": int(m.size)}
    w = w / w.sum()
    mu_m, mu_r = float(w @ m), float(w @ r)
    dm, dr = m - mu_m, r - mu_r
    sd_m, sd_r = float(np.sqrt(w @ dm**2)), float(np.sqrt(w @ dr**2))
    corr = float((w @ (dm * dr)) / (sd_m * sd_r)) if sd_m > 0 and sd_r > 0 else np.nan
    crmsd = float(np.sqrt(w @ (dm - dr) ** 2))
    return {
        "n_cells": int(m.size),
        "sd_ref": sd_r,
        "sd_model": sd_m,
        "sd_norm": sd_m / sd_r if sd_r > 0 else np.nan,
        "r": corr,
        "crmsd": crmsd,
        "crmsd_norm": crmsd / sd_r if sd_r > 0 else np.nan,
        "bias": mu_m - mu_r,
        "bias_pct": 100.0 * (mu_m / mu_r - 1.0) if mu_r else np.nan,
    }


def taylor_statistics(cmp: Comparison) -> pd.DataFrame:
    """Area-weighted spatial statistics of each model's time-mean map against the ensemble's
    time-mean map over the same period (``cmp.rf_maps``): ``source, flux, n_cells, sd_ref,
    sd_model, sd_norm, r, crmsd, crmsd_norm, bias, bias_pct``
    (RF row: the reference point, sd_norm 1, r 1, crmsd 0)."""
    store = cmp.store
    w = np.asarray(_weights(store).values, dtype=float)
    rows = []
    for flux in OUTPUT_FLUXES:
        if flux not in cmp.rf_maps:
            continue
        ref = np.asarray(cmp.rf_maps[flux].values, dtype=float)
        for source, field_ in _sources(cmp, flux).items():
            stats_ = _wstats(np.asarray(field_.values, dtype=float), ref, w)
            rows.append({"source": source, "flux": flux, **stats_})
    return pd.DataFrame(rows)


def uncertainty_scores(cmp: Comparison) -> pd.DataFrame:
    """The model-ensemble difference weighted by the ensemble's own per-cell uncertainty
    ``cmp.rf_sd`` of the band ``cmp.band`` (column ``band``): the SD across replicates
    (``F_sd_map``, or over a sub-period the mean of the yearly SDs ``F_sd``) or the predictive
    SD (``F_pred_sd``; AR always the spread), :mod:`srgpu.analysis.compare.bands`.

    With ``d = |model - F|`` and ``s`` that SD in each domain cell (area weights
    ``w``): ``mean_abs_z = sum w d/s / sum w``; ``z_score = exp(-mean_abs_z)``; ``within_2sd``
    the area fraction with ``d <= 2 s``; ``ilamb_bias_score = sum w exp(-max(d - s, 0) / |F|) /
    sum w`` (ILAMB's Collier et al. 2018 bias score with ``s`` as the reference uncertainty).
    """
    store = cmp.store
    w_all = np.asarray(_weights(store).values, dtype=float)
    rows = []
    for flux in OUTPUT_FLUXES:
        if flux not in cmp.rf_maps or flux not in cmp.rf_sd:
            continue
        ref = np.asarray(cmp.rf_maps[flux].values, dtype=float)
        sd = np.asarray(cmp.rf_sd[flux].values, dtype=float)
        for name, mean in cmp.means.items():
            if flux not in mean:
                continue
            model = np.asarray(mean[flux].values, dtype=float)
            ok = np.isfinite(model) & np.isfinite(ref) & np.isfinite(sd) & (sd > 0) & (w_all > 0)
            if not ok.any():
                continue
            w = w_all[ok] / w_all[ok].sum()
            d, s, r = np.abs(model[ok] - ref[ok]), sd[ok], ref[ok]
            maz = float(w @ (d / s))
            with np.errstate(divide="ignore", invalid="ignore"):
                cell_score = np.exp(-np.clip(d - s, 0.0, None) / np.abs(r))
            cell_score = np.where(np.isfinite(cell_score), cell_score, 0.0)
            rows.append(
                {
                    "source": name,
                    "flux": flux,
                    "band": flux_band(cmp.band, flux),
                    "n_cells": int(ok.sum()),
                    "mean_abs_z": maz,
                    "z_score": float(np.exp(-maz)),
                    "within_2sd": float(w @ (d <= 2 * s)),
                    "ilamb_bias_score": float(w @ cell_score),
                }
            )
    return pd.DataFrame(rows)


def comparison_maps(cmp: Comparison) -> xr.Dataset:
    """Time-mean SR, HR, AR and AR/SR maps of every source on the ensemble grid, stacked along
    ``source`` (RF first), for figures."""
    store = cmp.store
    sources = [RF, *cmp.means]
    out = xr.Dataset(coords={"source": sources, "lat": store["lat"], "lon": store["lon"]})
    for flux in OUTPUT_FLUXES:
        layers = []
        for s in sources:
            layer = _sources(cmp, flux).get(s)
            if layer is None:
                layer = xr.full_like(store[CELL_AREA], np.nan, dtype=float)
            layers.append(layer.drop_vars([c for c in layer.coords if c not in ("lat", "lon")]))
        out[flux] = xr.concat(layers, dim="source").assign_coords(source=sources)
        out[flux].attrs = {"units": "g C m-2 yr-1"}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["AR_SR"] = (out["AR"] / out["SR"]).assign_attrs(units="1", long_name="AR/SR")
    return out


def run_all(cmp: Comparison, *, band_deg: float | None = None) -> dict[str, pd.DataFrame]:
    """Every score table, keyed by the name used for the output files."""
    globals_ = model_globals(cmp)
    biomes = biome_totals(cmp)
    return {
        "global_totals": global_totals(cmp),
        "model_globals": globals_,
        "relationships": relationships(globals_),
        "site_scores": site_scores(cmp),
        "latitudinal_profiles": latitudinal_profiles(cmp, band_deg=band_deg),
        "biome_totals": biomes,
        "biome_cv": biome_cv(biomes),
        "taylor": taylor_statistics(cmp),
        "uncertainty_scores": uncertainty_scores(cmp),
    }
