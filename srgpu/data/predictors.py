"""Monthly drivers -> the ten annual and growing-season predictors of Lu et al. 2021.

:func:`build_predictors` finds the driver variables the requested predictors need (see
:mod:`srgpu.data.drivers`), converts their units, lays them out as ``(year, month, lat, lon)`` and
computes, per cell and year:

=========  ===============  ==========================================================
name       units            definition
=========  ===============  ==========================================================
MAT        degC             day-weighted mean of the 12 monthly air temperatures
Prec       mm yr-1          sum of the 12 monthly precipitation amounts
RH         %                day-weighted mean relative humidity
LAI        m2 m-2           day-weighted mean leaf area index
PAR        MJ m-2 yr-1      sum of monthly PAR (``par_fraction`` x shortwave if no PAR)
SOC        kg m-2           static soil organic carbon 0-30 cm, repeated every year
Prec_GS    mm               precipitation summed over growing-season months
RH_GS      %                day-weighted mean RH over growing-season months
LAI_GS     m2 m-2           day-weighted mean LAI over growing-season months
PAR_GS     MJ m-2           PAR summed over growing-season months
=========  ===============  ==========================================================

Growing season (GS): the months whose mean air temperature is > 0 degC. Missing data: an
annual predictor needs all 12 months finite, else NaN; a GS predictor is NaN when a temperature
month is NaN or the variable is NaN in a GS month. A cell-year with no GS month gets 0 for the GS
sums (Prec_GS, PAR_GS) and the annual mean for the GS means (RH_GS, LAI_GS).

The returned Dataset also carries the static fields ``cell_area``, ``land_fraction``,
``veg_bin``, ``bin_fraction`` and ``domain`` (see :func:`build_predictors`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from srgpu.config import PREDICTOR_NAMES
from srgpu.data.drivers import (
    Found,
    Monthly,
    Source,
    check_same_grid,
    convert_units,
    describe_role,
    find_variable,
    monthly_layout,
    open_sources,
    resolve_overrides,
)
from srgpu.data.vegetation import (
    VEG_BINS,
    bin_fractions_from_classes,
    bins_from_classes,
    land_class_mask,
)
from srgpu.errors import ConfigError, InputError
from srgpu.run.stats import bounds_from_centres, cell_area_m2

EARTH_RADIUS_M = 6_371_000.0

PREDICTOR_ATTRS: dict[str, tuple[str, str]] = {
    "MAT": ("degC", "mean annual air temperature"),
    "Prec": ("mm yr-1", "annual precipitation"),
    "RH": ("%", "mean annual relative humidity"),
    "LAI": ("m2 m-2", "mean annual leaf area index"),
    "PAR": ("MJ m-2 yr-1", "annual photosynthetically active radiation"),
    "SOC": ("kg m-2", "soil organic carbon 0-30 cm"),
    "Prec_GS": (
        "mm",
        "precipitation in the growing season (months with mean air temperature > 0 degC)",
    ),
    "RH_GS": ("%", "mean relative humidity in the growing season"),
    "LAI_GS": ("m2 m-2", "mean leaf area index in the growing season"),
    "PAR_GS": ("MJ m-2", "photosynthetically active radiation in the growing season"),
}
"""Units and long names of the ten predictors."""

_BASE_ROLE = {
    "MAT": "tas",
    "Prec": "pr",
    "RH": "hurs",
    "LAI": "lai",
    "PAR": "rad",
    "SOC": "soc",
    "Prec_GS": "pr",
    "RH_GS": "hurs",
    "LAI_GS": "lai",
    "PAR_GS": "rad",
}


def roles_needed(names: Iterable[str]) -> list[str]:
    """Driver roles the predictors ``names`` need, in a fixed order (``rad`` = PAR or rsds)."""
    need: set[str] = set()
    for n in names:
        need.add(_BASE_ROLE[n])
        if n.endswith("_GS"):
            need.add("tas")
    return [r for r in ("tas", "pr", "hurs", "lai", "rad", "soc") if r in need]


# --------------------------------------------------------------------------- kernels
def annual_mean(x: xr.DataArray, days: xr.DataArray) -> xr.DataArray:
    """Day-weighted mean over ``month``; NaN if any month is NaN."""
    return (x * days).sum("month", skipna=False) / days.sum("month")


def annual_sum(x: xr.DataArray) -> xr.DataArray:
    """Sum over ``month`` of monthly amounts; NaN if any month is NaN."""
    return x.sum("month", skipna=False)


def growing_season(tas_c: xr.DataArray) -> tuple[xr.DataArray, xr.DataArray]:
    """``(gs, valid)``: GS months (``tas > 0 degC``); cell-years with 12 finite temperatures."""
    return tas_c > 0.0, tas_c.notnull().all("month")


def gs_sum(x: xr.DataArray, gs: xr.DataArray, valid: xr.DataArray) -> xr.DataArray:
    """Sum over GS months (0 without a GS month); NaN if the GS is undefined or x is NaN in it."""
    return x.where(gs, 0.0).sum("month", skipna=False).where(valid)


def gs_mean(
    x: xr.DataArray, days: xr.DataArray, gs: xr.DataArray, valid: xr.DataArray
) -> xr.DataArray:
    """Day-weighted mean over GS months; the annual mean where a cell-year has no GS month."""
    num = (x * days).where(gs, 0.0).sum("month", skipna=False)
    den = days.where(gs, 0.0).sum("month")
    mean = xr.where(den > 0, num / den.where(den > 0), annual_mean(x, days))
    return mean.where(valid)


# --------------------------------------------------------------------------- helpers
def _missing(predictor: str, role_name: str, labels: list[str]) -> InputError:
    what = (
        describe_role("par") + "; or " + describe_role("rsds")
        if role_name == "rad"
        else describe_role(role_name)
    )
    return InputError(
        f"predictor {predictor} needs {what.split(':')[0]}, but no source provides it",
        file=", ".join(labels),
        field=predictor,
        expected=f"{what}; or map one with --var {predictor}=NAME, "
        f"or leave {predictor} out of the predictor set",
    )


def _source_ds(sources: Sequence[Source], label: str) -> xr.Dataset | None:
    for s in sources:
        if s.label == label:
            return s.ds
    return None


def cell_area(lat: np.ndarray, lon: np.ndarray, *, radius_m: float = EARTH_RADIUS_M) -> np.ndarray:
    """Areas (m2) of a regular lat/lon grid's cells on a sphere, edges midway between centres
    (clipped to +-90 degrees latitude); shape ``(nlat, nlon)``."""
    return cell_area_m2(
        bounds_from_centres(np.asarray(lat), lower=-90.0, upper=90.0),
        bounds_from_centres(np.asarray(lon)),
        radius_m=radius_m,
    )


def _align_years(m: Monthly, conv: xr.DataArray, ref: Monthly, years: np.ndarray) -> xr.DataArray:
    if m.static:
        return conv
    if m.climatology:
        conv = conv.isel(year=0, drop=True)
        return conv if ref.climatology is False else conv.expand_dims(year=years)
    if ref.climatology:
        raise InputError(
            f"cannot combine the time series {m.found.name!r} ({m.period}) with the climatology "
            f"{ref.found.name!r} of {ref.found.label}",
            file=m.found.label,
            field=m.found.name,
            expected="all monthly drivers as climatologies, or a time series for temperature",
        )
    return conv.sel(year=years)


# --------------------------------------------------------------------------- main
def build_predictors(
    *,
    drivers: Sequence[str | Path | xr.Dataset],
    vegetation: str | Path | xr.Dataset | None,
    names: Iterable[str],
    variables: Mapping[str, str] | None = None,
    par_fraction: float = 0.48,
) -> xr.Dataset:
    """Build the requested predictors and the static fields on the drivers' grid.

    Parameters
    ----------
    drivers:
        Files, directories, globs or Datasets holding the monthly drivers (and static SOC).
    vegetation:
        Land-cover source (``land_cover_on_land``/``land_cover``, ``land_cover_fraction``,
        ``sftlf``); ``None`` searches the drivers for them.
    names:
        Predictor names (from :data:`srgpu.config.PREDICTOR_NAMES`); only these are computed and
        only the inputs they need are required.
    variables:
        Overrides ``{ROLE_OR_PREDICTOR: variable_name}``; keys are roles (``tas``, ``pr``,
        ``hurs``, ``lai``, ``par``, ``rsds``, ``soc``, ``sftlf``, ``land_cover``,
        ``land_cover_fraction``) or predictor names (``MAT`` = ``tas``, ``Prec``/``Prec_GS`` =
        ``pr``, ``PAR``/``PAR_GS`` = PAR or shortwave by ``standard_name``, ...).
    par_fraction:
        PAR = ``par_fraction`` x shortwave when no PAR variable is given.

    Returns
    -------
    Dataset with dims ``(year, lat, lon)`` (+ ``bin``): one float32 variable per requested
    predictor; ``gs_months`` (int8, months with tas > 0 degC) when temperature was read;
    ``cell_area`` (m2), ``land_fraction`` (0-1), ``veg_bin`` (int8 0..5), ``bin_fraction``
    (bin 1..5: share of the cell area) and ``domain`` (bool) on ``(lat, lon)``. Attributes
    ``climatology`` (1/0) and ``period``.
    """
    names = list(dict.fromkeys(names))
    if not names:
        raise ConfigError("build_predictors: no predictor requested")
    bad = [n for n in names if n not in PREDICTOR_NAMES]
    if bad:
        raise ConfigError(f"unknown predictor(s) {bad}; expected names from {PREDICTOR_NAMES}")
    if not 0.0 < par_fraction <= 1.0:
        raise ConfigError(f"par_fraction must be in (0, 1], got {par_fraction}")
    overrides = resolve_overrides(variables)
    if isinstance(drivers, (str, Path, xr.Dataset)):
        drivers = [drivers]
    drv = open_sources(list(drivers))
    veg = open_sources([vegetation], start=len(drv)) if vegetation is not None else []
    labels = [s.label for s in drv]

    # -- find the variables -----------------------------------------------------------
    found: dict[str, Found] = {}
    for r in roles_needed(names):
        candidates = ("par", "rsds") if r == "rad" else (r,)
        hit = None
        for c in candidates:
            hit = find_variable(drv + veg, c, overrides=overrides)
            if hit is not None:
                break
        if hit is None:
            first = next(
                n for n in names if _BASE_ROLE[n] == r or (r == "tas" and n.endswith("_GS"))
            )
            raise _missing(first, r, labels)
        found[r] = hit
    vfound: dict[str, Found] = {}
    for r in ("land_cover", "land_cover_fraction", "sftlf"):
        hit = find_variable(veg + drv, r, overrides=overrides)
        if hit is not None:
            vfound[r] = hit

    ref_found = next(iter(found.values()))
    for f in list(found.values()) + list(vfound.values()):
        if f is not ref_found:
            check_same_grid(ref_found, f)
    lat = ref_found.da["lat"]
    lon = ref_found.da["lon"]

    def on_grid(f: Found) -> Found:
        return Found(f.role, f.label, f.name, f.da.assign_coords(lat=lat, lon=lon))

    all_sources = drv + veg
    monthly = {
        r: monthly_layout(on_grid(f), source_ds=_source_ds(all_sources, f.label))
        for r, f in found.items()
    }

    # -- the common period --------------------------------------------------------------
    timed = [m for m in monthly.values() if not m.static]
    if timed:
        ref = monthly.get("tas") if "tas" in monthly else timed[0]
        if ref.climatology:
            years = ref.data["year"].values.astype(int)
        else:
            years = ref.data["year"].values.astype(int)
            for m in timed:
                if not m.climatology:
                    years = np.intersect1d(years, m.data["year"].values.astype(int))
            if years.size == 0:
                raise InputError(
                    "the monthly drivers share no complete year",
                    value={m.found.name: m.period for m in timed},
                    expected="overlapping periods",
                )
        days = ref.days.sel(year=years) if not ref.climatology else ref.days
        days = days.assign_coords(year=years)
        climatology, period = ref.climatology, ref.period
    else:  # only static predictors
        ref = None
        years = np.array([0])
        days = None
        climatology, period = True, "static"

    conv: dict[str, xr.DataArray] = {}
    for r, m in monthly.items():
        c = convert_units(m.data, found=m.found, days=m.days if m.days is not None else days)
        c = _align_years(m, c, ref, years) if ref is not None else c
        if "year" in c.dims:
            c = c.assign_coords(year=years)
        conv[r] = c
    if "rad" in found and found["rad"].role == "rsds":
        conv["rad"] = conv["rad"] * par_fraction

    # -- predictors -------------------------------------------------------------------
    out: dict[str, xr.DataArray] = {}
    gs = valid = None
    if "tas" in conv and days is not None:
        gs, valid = growing_season(conv["tas"])
    for n in names:
        r = _BASE_ROLE[n]
        x = conv[r]
        if n == "SOC":
            val = x
        elif n in ("MAT", "RH", "LAI"):
            val = annual_mean(x, days) if "month" in x.dims or days is not None else x
        elif n in ("Prec", "PAR"):
            val = annual_sum(x)
        elif n in ("Prec_GS", "PAR_GS"):
            val = gs_sum(x, gs, valid)
        else:
            val = gs_mean(x, days, gs, valid)
        val = val.broadcast_like(xr.DataArray(years, dims="year", coords={"year": years}))
        val = val.transpose("year", "lat", "lon").astype(np.float32)
        units, long_name = PREDICTOR_ATTRS[n]
        f = found[_BASE_ROLE[n]]
        val.attrs = {
            "units": units,
            "long_name": long_name,
            "source": f"{f.label}:{f.name}",
            "source_units": str(f.da.attrs.get("units")),
            "period": monthly[_BASE_ROLE[n]].period,
        }
        if n.startswith("PAR") and f.role == "rsds":
            val.attrs["comment"] = f"PAR = {par_fraction} x surface downwelling shortwave"
        if monthly[_BASE_ROLE[n]].static and n != "SOC":
            val.attrs["comment"] = "static input (no time axis) repeated for every month and year"
        out[n] = val
    if gs is not None:
        gsm = gs.sum("month").where(valid).fillna(-1).astype(np.int8)
        gsm.attrs = {
            "units": "1",
            "long_name": "growing-season months (tas > 0 degC); -1 = undefined",
        }
        out["gs_months"] = gsm.transpose("year", "lat", "lon")

    lat = lat.reset_coords(drop=True)
    lon = lon.reset_coords(drop=True)
    out = {k: v.reset_coords(drop=True) for k, v in out.items()}
    ds = xr.Dataset(out, coords={"year": ("year", years.astype(np.int64)), "lat": lat, "lon": lon})
    ds = _compute(ds, list(found.values()))
    for n in names:
        check_predictor(ds[n], found=found[_BASE_ROLE[n]])

    # -- static fields ----------------------------------------------------------------
    finite = np.ones((lat.size, lon.size), dtype=bool)
    for n in names:
        finite &= np.isfinite(ds[n].values).all(axis=0)
    static = static_fields(vfound, lat=lat.values, lon=lon.values, finite=finite)
    ds = ds.assign(static)
    ds["year"].attrs = {"long_name": "year (first year of the climatology when climatology = 1)"}
    ds.attrs = {
        "climatology": int(bool(climatology)),
        "period": period,
        "par_fraction": float(par_fraction),
        "predictors": " ".join(names),
        "sources": " ".join(labels + [s.label for s in veg]),
    }
    return ds


PLAUSIBLE: dict[str, tuple[float, float]] = {
    "MAT": (-70.0, 50.0),
    "Prec": (0.0, 30_000.0),
    "RH": (0.0, 105.0),
    "LAI": (0.0, 20.0),
    "PAR": (0.0, 15_000.0),
    "SOC": (0.0, 2_000.0),
    "Prec_GS": (0.0, 30_000.0),
    "RH_GS": (0.0, 105.0),
    "LAI_GS": (0.0, 20.0),
    "PAR_GS": (0.0, 15_000.0),
}
"""Plausible range of each predictor (its units in :data:`PREDICTOR_ATTRS`). A value outside
is an :class:`InputError` naming the driver file, the variable and its units: most often a
unit label that does not match the data (kelvin labelled ``degC``, a rate labelled as an
amount). Earth's extremes are well inside (annual mean temperature -57..35 degC, precipitation
up to ~12 000 mm yr-1, annual PAR up to ~4 000 MJ m-2 yr-1)."""


def _compute(ds: xr.Dataset, found: Sequence[Found]) -> xr.Dataset:
    """Load ``ds``; a failure to read a source (truncated file, corrupt chunk) becomes an
    :class:`InputError` naming the source file and variable that cannot be read."""
    from srgpu.data.drivers import one_line

    try:
        return ds.compute()
    except Exception as exc:  # noqa: BLE001 - any backend failure is an input problem
        for f in found:  # find the culprit (reads each variable once more; error path only)
            try:
                f.da.compute()
            except Exception as inner:  # noqa: BLE001
                raise InputError(
                    f"cannot read the data: {one_line(inner)}", file=f.label, field=f.name
                ) from None
        raise InputError(
            f"cannot read the driver data: {one_line(exc)}",
            value=sorted({f.label for f in found}),
        ) from None


def check_predictor(da: xr.DataArray, *, found: Found) -> None:
    """Raise :class:`InputError` naming ``found``'s file and variable when the predictor ``da``
    has no finite value, an infinite value or a value outside :data:`PLAUSIBLE`."""
    name = str(da.name)
    values = np.asarray(da.values)
    units = da.attrs.get("units", "")
    src_units = found.da.attrs.get("units")

    def where(mask: np.ndarray) -> str:
        iy, ila, ilo = (int(i[0]) for i in np.nonzero(mask))
        return (
            f"year {int(da['year'].values[iy])}, lat {float(da['lat'].values[ila]):g}, "
            f"lon {float(da['lon'].values[ilo]):g}"
        )

    if not np.isfinite(values).any():
        raise InputError(
            f"no finite value: predictor {name} is missing everywhere",
            file=found.label,
            field=found.name,
            expected="data on at least part of the grid (a deleted or empty chunk, or a "
            "variable of missing values?)",
        )
    infinite = np.isinf(values)
    if infinite.any():
        raise InputError(
            f"infinite value gives predictor {name} = {values[infinite][0]} at {where(infinite)}",
            file=found.label,
            field=found.name,
            value=float(values[infinite][0]),
            expected="finite values or missing values (NaN / _FillValue)",
        )
    lo, hi = PLAUSIBLE[name]
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(values) & ((values < lo) | (values > hi))
    if outside.any():
        v = float(values[outside][0])
        raise InputError(
            f"implausible predictor {name} = {v:.6g} {units} at {where(outside)}; check the "
            "units attribute against the data",
            file=found.label,
            field=found.name,
            value=src_units,
            expected=f"{name} within [{lo:g}, {hi:g}] {units}",
        )


IGBP_CODES = frozenset(range(18)) | {254, 255}
"""Land-cover codes accepted in a majority-class map: IGBP 0..17 and the MODIS fill values."""


def _check_classes(classes: xr.DataArray, *, found: Found) -> None:
    codes = np.asarray(classes.values, dtype=np.float64)
    finite = np.isfinite(codes)
    bad = finite & ~np.isin(np.where(finite, codes, 0), sorted(IGBP_CODES))
    if bad.any():
        raise InputError(
            "unknown land-cover class code",
            file=found.label,
            field=found.name,
            value=float(codes[bad][0]),
            expected="IGBP codes 0..17 (254/255 = fill)",
        )


def _check_fractions(fractions: xr.DataArray, *, found: Found) -> None:
    values = np.asarray(fractions.values, dtype=np.float64)
    bad = (values < -1e-6) | (values > 1.0 + 1e-3) | np.isinf(values)
    if bad.any():
        raise InputError(
            "class fraction outside [0, 1]",
            file=found.label,
            field=found.name,
            value=float(values[bad][0]),
            expected=f"fractions in [0, 1] (units {found.da.attrs.get('units')!r})",
        )


def static_fields(
    vfound: Mapping[str, Found], *, lat: np.ndarray, lon: np.ndarray, finite: np.ndarray
) -> dict[str, xr.DataArray]:
    """``cell_area``, ``land_fraction``, ``veg_bin``, ``bin_fraction`` and ``domain``.

    ``finite`` (lat, lon) marks cells whose requested predictors are finite in every year.
    Domain: land (``land_fraction > 0``), vegetated (with class fractions: the vegetated bins
    hold >= 50 % of the cell's land; else the majority land class is in bins 1-5; without any
    land-cover map: every cell), and ``finite``.
    """
    dims = ("lat", "lon")
    coords = {"lat": lat, "lon": lon}
    bins = np.array(sorted(VEG_BINS), dtype=np.int64)
    fractions = None
    if "land_cover_fraction" in vfound:
        f = vfound["land_cover_fraction"]
        da = convert_units(f.da, found=f)
        cls_dim = [d for d in da.dims if d not in dims]
        if len(cls_dim) != 1:
            raise InputError(
                "class fractions need exactly one class dimension",
                file=f.label,
                field=f.name,
                value=list(da.dims),
                expected="(class, lat, lon)",
            )
        fractions = da.rename({cls_dim[0]: "class"}).transpose("class", *dims).fillna(0.0).compute()
        _check_fractions(fractions, found=f)
        if "class" not in fractions.coords:
            fractions = fractions.assign_coords(
                {"class": np.arange(1, fractions.sizes["class"] + 1)}
            )
    classes = None
    if "land_cover" in vfound:
        f = vfound["land_cover"]
        classes = f.da.transpose(*dims).compute()
        _check_classes(classes, found=f)

    # land fraction
    if "sftlf" in vfound:
        f = vfound["sftlf"]
        land = convert_units(f.da, found=f).transpose(*dims).fillna(0.0).clip(0.0, 1.0).values
    elif fractions is not None:
        land = (
            fractions.where(land_class_mask(fractions["class"]), 0.0)
            .sum("class")
            .clip(0.0, 1.0)
            .values
        )
    elif classes is not None:
        land = bins_from_classes(classes, land=True).values.astype(float)
    else:
        land = finite.astype(float)
    land = np.asarray(land, dtype=np.float64)

    # bins
    if fractions is not None:
        bfrac = bin_fractions_from_classes(fractions).values
    else:
        bfrac = None
    if classes is not None:
        vbin = bins_from_classes(classes).values.astype(np.int8)
    elif bfrac is not None:
        nonveg = np.clip(land - bfrac.sum(axis=0), 0.0, None)
        vbin = np.argmax(np.concatenate([nonveg[None], bfrac]), axis=0).astype(np.int8)
        vbin[land <= 0] = 0
    else:
        vbin = np.zeros(land.shape, dtype=np.int8)
    if bfrac is None:
        bfrac = np.stack([np.where(vbin == b, land, 0.0) for b in bins])

    # domain
    is_land = land > 0
    if fractions is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            vegetated = bfrac.sum(axis=0) / np.where(is_land, land, np.nan) >= 0.5 - 1e-9
        fix = vegetated & (vbin == 0) & is_land
        vbin = np.where(fix, np.argmax(bfrac, axis=0) + 1, vbin).astype(np.int8)
    elif classes is not None:
        vegetated = vbin > 0
    else:
        vegetated = np.ones(land.shape, dtype=bool)
    domain = is_land & vegetated & finite

    area = cell_area(lat, lon)
    return {
        "cell_area": xr.DataArray(
            area,
            dims=dims,
            coords=coords,
            attrs={"units": "m2", "long_name": "cell area (sphere R = 6371 km)"},
        ),
        "land_fraction": xr.DataArray(
            land.astype(np.float32),
            dims=dims,
            coords=coords,
            attrs={
                "units": "1",
                "standard_name": "land_area_fraction",
                "long_name": "land fraction",
            },
        ),
        "veg_bin": xr.DataArray(
            vbin.astype(np.int8),
            dims=dims,
            coords=coords,
            attrs={
                "long_name": "majority vegetation bin (0 = not vegetated)",
                "flag_values": np.arange(6, dtype=np.int8),
                "flag_meanings": "none " + " ".join(VEG_BINS[b] for b in bins),
            },
        ),
        "bin_fraction": xr.DataArray(
            bfrac.astype(np.float32),
            dims=("bin", *dims),
            coords={"bin": bins, **coords},
            attrs={"units": "1", "long_name": "share of the cell area in each vegetation bin"},
        ),
        "domain": xr.DataArray(
            domain,
            dims=dims,
            coords=coords,
            attrs={"long_name": "prediction domain: vegetated land, predictors finite every year"},
        ),
    }
