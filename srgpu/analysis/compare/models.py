"""Reading terrestrial ecosystem model output (TRENDY / CMIP CMOR-style NetCDF).

A model is a NetCDF file or a directory of them (``<model>_<var>.nc`` or one file with several
variables). Each recognised variable is checked (dims, units, calendar), converted and reduced to
annual values on the model's own grid:

* fluxes (``rh``, ``ra``, ``raRoot``, ``gpp``, ``npp``) -> g C m-2 yr-1, the total of each
  calendar year: monthly means are weighted by the days of each month *in the file's calendar*
  (``noleap``, ``360_day``, ``proleptic_gregorian`` ... through cftime); annual means by the days of
  that year. Years with fewer than 12 monthly steps are dropped.
* stocks (``cSoil``, ``cLitter``, ``cRoot``) -> kg C m-2, the day-weighted mean of each year (or
  the single field when the file has no time axis).

Soil fluxes follow :func:`soil_fluxes`: HR = ``rh``; root AR = ``raRoot`` (CMIP6 Emon name; aliases
``rroot``, ``rRoot``); SR = HR + root AR. When a model gives only total ``ra`` the root part is
unknown: by default AR and SR are **not computed** for that model (documented in the output's
``notes``); ``root_fraction=f`` opts in to AR = f x ra (e.g. 0.55 = 35.2 / 64, the ratio of
belowground AR to total plant respiration in Lu et al. 2021, table 1).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import xarray as xr

from srgpu.errors import InputError, UnitError
from srgpu.run.stats import bounds_from_centres, cell_area_m2

FLUX_VARIABLES: dict[str, tuple[str, ...]] = {
    "rh": ("rh",),
    "ra": ("ra",),
    "raRoot": ("raRoot", "rroot", "rRoot", "raroot"),
    "gpp": ("gpp",),
    "npp": ("npp",),
}
"""Canonical flux names -> accepted variable names in files (first match wins)."""

STOCK_VARIABLES: dict[str, tuple[str, ...]] = {
    "cSoil": ("cSoil", "csoil"),
    "cLitter": ("cLitter", "clitter"),
    "cRoot": ("cRoot", "croot"),
}
"""Canonical stock names -> accepted variable names in files."""

FIXED_VARIABLES: dict[str, tuple[str, ...]] = {
    "areacella": ("areacella",),
    "sftlf": ("sftlf", "landfrac", "land_fraction"),
}
"""Grid-cell area (m2) and land fraction (%, or 1) on the model grid, optional."""

LAT_NAMES = ("lat", "latitude")  # rectilinear grids only: curvilinear (nav_lat, y) is refused
LON_NAMES = ("lon", "longitude")
TIME_NAMES = ("time", "t")
EARTH_RADIUS_M = 6371007.2
"""Authalic Earth radius (m), as in srgpu's store and ILAMB."""

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")


@dataclass(frozen=True)
class ModelOutput:
    """One model's annual fields on its own grid.

    ``data`` has dims ``(year, lat, lon)`` (stocks may lack ``year``) with variables named by
    :data:`FLUX_VARIABLES` / :data:`STOCK_VARIABLES` keys plus ``HR``, ``AR``, ``SR`` (g C m-2
    yr-1) where computable, ``cell_area`` (m2) and ``land_fraction`` (1). ``sources`` maps each
    variable to its file; ``notes`` records the rules applied (e.g. why SR is missing).
    """

    name: str
    data: xr.Dataset
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# units


def _unit_tokens(units: str) -> list[tuple[str, int]]:
    """Split a unit string into (symbol, exponent) pairs; denominators get negative exponents."""
    text = units.strip().replace("**", "^").replace("·", " ").replace("*", " ")
    out: list[tuple[str, int]] = []
    for i, part in enumerate(text.split("/")):
        for tok in part.replace(".", " ").split():
            m = re.match(r"^([A-Za-z]+)\^?(-?\d+)?$", tok)
            if m is None:
                raise ValueError(tok)
            exp = int(m.group(2) or 1)
            out.append((m.group(1), -exp if i > 0 else exp))
    return out


_MASS_TO_G = {"pg": 1e15, "tg": 1e12, "gg": 1e9, "kg": 1e3, "g": 1.0}
_TIME_TO_S = {"s": 1.0, "sec": 1.0, "second": 1.0, "h": 3600.0, "hr": 3600.0, "hour": 3600.0}
_TIME_TO_S |= {"d": 86400.0, "day": 86400.0, "yr": 365 * 86400.0, "year": 365 * 86400.0}
_TIME_TO_S |= {"a": 365 * 86400.0}


def conversion_factor(
    units: Any, *, kind: str, file: Any = None, field: str | None = None
) -> float:
    """Factor from ``units`` to g C m-2 s-1 (``kind="flux"``) or kg C m-2 (``kind="stock"``).

    Understands a mass (``kg``, ``g``, ``Mg``, ``Pg``..., with or without ``C``), an area ``m-2``
    (``m^-2``, ``m**-2``, ``/m2``) and, for fluxes, a time (``s-1``, ``d-1``, ``yr-1``; a year is
    365 days, the real calendar length is applied when annualising). Per-month rates, moles and
    anything else raise :class:`UnitError` naming ``file`` and ``field``.
    """
    expected = (
        "a carbon flux such as 'kg m-2 s-1', 'kg C m-2 s-1' or 'g C m-2 yr-1'"
        if kind == "flux"
        else "a carbon stock such as 'kg m-2' or 'kg C m-2'"
    )

    def fail(msg: str) -> UnitError:
        return UnitError(msg, file=file, field=field, value=units, expected=expected)

    if units is None or not str(units).strip():
        raise UnitError("no units attribute", file=file, field=field, expected=expected)
    try:
        tokens = _unit_tokens(str(units))
    except ValueError:
        raise fail("unreadable units") from None
    grams = None
    area_exp = time_exp = 0
    seconds = 1.0
    for sym, exp in tokens:
        low = sym.lower()
        if sym in ("C", "c") and exp == 1:
            continue  # "kg C m-2": carbon
        if sym in ("Mg", "MgC"):
            mass = 1e6
        else:
            base = low[:-1] if low.endswith("c") and low[:-1] in _MASS_TO_G else low
            mass = _MASS_TO_G.get(base)
        if mass is not None:
            if grams is not None or exp != 1:
                raise fail("unexpected mass term")
            grams = mass
        elif low == "m":
            area_exp += exp
        elif low in _TIME_TO_S:
            time_exp += exp
            seconds = _TIME_TO_S[low]
        elif low in ("mon", "month"):
            raise fail("per-month rates have no fixed length")
        else:
            raise fail(f"unknown unit symbol {sym!r}")
    if grams is None or area_exp != -2 or time_exp != (-1 if kind == "flux" else 0):
        raise fail(f"units are not those of a carbon {kind}")
    return grams / seconds if kind == "flux" else grams / 1e3


# --------------------------------------------------------------------------------------------
# time


def _calendar(time: xr.DataArray) -> str:
    values = time.values
    if values.size and isinstance(values.flat[0], cftime.datetime):
        return values.flat[0].calendar
    return "proleptic_gregorian"


def days_in_year(year: int, *, calendar: str) -> int:
    """Days in ``year`` of a CF ``calendar`` (365, 366 or 360...)."""
    start = cftime.datetime(year, 1, 1, calendar=calendar)
    end = cftime.datetime(year + 1, 1, 1, calendar=calendar)
    return int((end - start).days)


def annualise(
    da: xr.DataArray, *, kind: str, file: Any = None, field: str | None = None
) -> xr.DataArray:
    """Monthly or annual values on ``time`` -> one value per calendar year on ``year``.

    ``kind="flux"``: ``da`` is a rate per second; the result is the year's total (rate x seconds
    of each step, months from the calendar). ``kind="stock"``: the day-weighted mean. Monthly
    years with fewer than 12 steps are dropped; other frequencies raise :class:`InputError`.
    """
    time = da["time"]
    calendar = _calendar(time)
    years = time.dt.year
    counts = years.groupby(years).count()
    if int(counts.max()) == 1:
        days = xr.DataArray(
            [days_in_year(int(y), calendar=calendar) for y in years.values],
            dims="time",
            coords={"time": time},
        )
        complete = counts.year.values
    elif int(counts.max()) <= 12 and _is_monthly(time):
        days = time.dt.days_in_month
        complete = counts.year.values[counts.values == 12]
    else:
        raise InputError(
            "time axis is neither monthly nor annual",
            file=file,
            field=f"{field}:time" if field else "time",
            value=f"{int(counts.max())} steps in one year",
            expected="monthly means (12 a year) or annual values",
        )
    if complete.size == 0:
        raise InputError(
            "no complete year of monthly data",
            file=file,
            field=field,
            expected="12 monthly steps in at least one year",
        )
    if kind == "flux":
        weighted = (da * (days * 86400.0)).groupby(years.rename("year")).sum("time", min_count=1)
    else:
        num = (da * days).groupby(years.rename("year")).sum("time", min_count=1)
        weighted = num / days.groupby(years.rename("year")).sum("time")
    return weighted.sel(year=complete)


def _is_monthly(time: xr.DataArray) -> bool:
    if time.size < 2:
        return True
    values = time.values
    steps = np.array([(b - a).days for a, b in zip(values[:-1], values[1:], strict=True)])
    return bool(np.all((steps >= 27) & (steps <= 32)))


# --------------------------------------------------------------------------------------------
# grid


def spherical_cell_area(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Areas (m2) of the cells of a regular lat/lon grid given its centres (degrees)."""
    return cell_area_m2(
        bounds_from_centres(np.asarray(lat, dtype=float), lower=-90.0, upper=90.0),
        bounds_from_centres(np.asarray(lon, dtype=float)),
        radius_m=EARTH_RADIUS_M,
    )


def _find(names: tuple[str, ...], available: Any) -> str | None:
    for name in names:
        if name in available:
            return name
    return None


def _standardise_grid(da: xr.DataArray, *, file: Any, field: str) -> xr.DataArray:
    """Rename lat/lon/time dims, check 1-D monotonic coordinates, sort latitude ascending."""
    lat = _find(LAT_NAMES, da.dims)
    lon = _find(LON_NAMES, da.dims)
    time = _find(TIME_NAMES, da.dims)
    if lat is None or lon is None:
        raise InputError(
            "no latitude/longitude dimensions",
            file=file,
            field=field,
            value=da.dims,
            expected="dims (time, lat, lon) or (lat, lon)",
        )
    extra = [d for d in da.dims if d not in (lat, lon, time)]
    if extra:
        raise InputError(
            f"unexpected dimensions {extra}",
            file=file,
            field=field,
            value=da.dims,
            expected="dims (time, lat, lon) or (lat, lon); sum PFTs/levels before comparing",
        )
    rename = {lat: "lat", lon: "lon"}
    if time is not None:
        rename[time] = "time"
    da = da.rename(rename)
    for dim in ("lat", "lon"):
        if dim not in da.coords:
            raise InputError(
                "no coordinate values", file=file, field=f"{field}:{dim}", expected="1-D degrees"
            )
    lat_values = da["lat"].values
    if np.any(np.abs(lat_values) > 90):
        raise InputError(
            "latitude outside [-90, 90]",
            file=file,
            field=f"{field}:lat",
            value=float(lat_values.max()),
        )
    if da.sizes["lat"] > 1 and not (
        np.all(np.diff(lat_values) > 0) or np.all(np.diff(lat_values) < 0)
    ):
        raise InputError("latitude not monotonic", file=file, field=f"{field}:lat")
    da = da.sortby("lat")
    if "time" in da.dims:
        if not np.issubdtype(da["time"].dtype, np.datetime64) and not isinstance(
            da["time"].values.flat[0], cftime.datetime
        ):
            raise InputError(
                "time is not a decodable CF time",
                file=file,
                field=f"{field}:time",
                expected="CF units 'days since ...' and a CF calendar",
            )
    return da.drop_vars([c for c in da.coords if c not in ("lat", "lon", "time")])


# --------------------------------------------------------------------------------------------
# files


def _open(path: Path) -> xr.Dataset:
    """Open one NetCDF file with cftime decoding; bad files -> :class:`InputError`."""
    try:
        raw = xr.open_dataset(path, decode_times=False)
    except Exception as exc:  # netCDF4/h5netcdf raise OSError, ValueError, KeyError...
        raise InputError(
            f"cannot be read ({type(exc).__name__})", file=path, expected="a readable NetCDF file"
        ) from None
    try:
        return xr.decode_cf(raw, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    except Exception as exc:
        time = raw.get("time")
        attrs = {} if time is None else time.attrs
        raise InputError(
            f"time cannot be decoded ({exc})".splitlines()[0][:160],
            file=path,
            field="time",
            value=f"units={attrs.get('units')!r}, calendar={attrs.get('calendar')!r}",
            expected="CF time units and a CF calendar (standard, noleap, 360_day, ...)",
        ) from None


def model_files(path: str | Path) -> list[Path]:
    """The NetCDF files of one model: ``path`` itself or the NetCDF files in directory ``path``."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in NETCDF_SUFFIXES)
        if not files:
            raise InputError("directory holds no NetCDF files", file=path, expected="*.nc files")
        return files
    if not path.exists():
        raise InputError("no such file or directory", file=path)
    return [path]


def _checked_values(da: xr.DataArray, *, file: Path, field: str) -> xr.DataArray:
    """Load ``da``; a read failure, no finite value or an infinite value is an
    :class:`InputError` naming the file and the variable."""
    try:
        da = da.load()
    except Exception as exc:  # noqa: BLE001 - truncated file, corrupt chunk, ...
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the data: {text}", file=file, field=field) from None
    values = np.asarray(da.values)
    if not np.isfinite(values).any():
        raise InputError(
            "no finite value", file=file, field=field, expected="data on part of the grid"
        )
    if np.isinf(values).any():
        raise InputError(
            "infinite value",
            file=file,
            field=field,
            value=float(values[np.isinf(values)][0]),
            expected="finite values or missing values (_FillValue)",
        )
    return da


def read_model(
    path: str | Path, *, name: str | None = None, root_fraction: float | None = None
) -> ModelOutput:
    """Read a model (file or directory), convert units, annualise, and derive HR/AR/SR."""
    files = model_files(path)
    name = name or Path(path).stem
    found: dict[str, tuple[xr.DataArray, Path]] = {}
    for file in files:
        ds = _open(file)
        for table in (FLUX_VARIABLES, STOCK_VARIABLES, FIXED_VARIABLES):
            for canon, aliases in table.items():
                var = _find(aliases, ds.data_vars)
                if var is None:
                    continue
                if canon in found:
                    raise InputError(
                        f"variable also given in {found[canon][1]}",
                        file=file,
                        field=var,
                        expected="each variable in one file",
                    )
                found[canon] = (ds[var], file)
    science = [k for k in found if k not in FIXED_VARIABLES]
    if not science:
        raise InputError(
            "no model variable found",
            file=path,
            expected="one of " + ", ".join([*FLUX_VARIABLES, *STOCK_VARIABLES]),
        )
    fields: dict[str, xr.DataArray] = {}
    for canon in science:
        da, file = found[canon]
        kind = "flux" if canon in FLUX_VARIABLES else "stock"
        factor = conversion_factor(da.attrs.get("units"), kind=kind, file=file, field=str(da.name))
        da = _standardise_grid(da, file=file, field=str(da.name)).astype("float64") * factor
        if "time" in da.dims:
            da = annualise(da, kind=kind, file=file, field=str(da.name))
        elif kind == "flux":
            da = da * 365.0 * 86400.0  # a time-invariant rate: a 365-day year
        units = "g C m-2 yr-1" if kind == "flux" else "kg C m-2"
        da = _checked_values(da, file=file, field=str(found[canon][0].name))
        fields[canon] = da.assign_attrs(units=units, source_file=file.name)
    fields = _align_grids(fields, files=files)
    ref = next(iter(fields.values()))
    data = xr.Dataset(fields)
    data["cell_area"], data["land_fraction"] = _area_and_land(found, ref, fields)
    ds, notes = soil_fluxes(data, root_fraction=root_fraction)
    sources = {k: str(v[1]) for k, v in found.items()}
    return ModelOutput(name=name, data=ds.load(), sources=sources, notes=tuple(notes))


def _align_grids(fields: dict[str, xr.DataArray], *, files: list[Path]) -> dict[str, xr.DataArray]:
    ref_name, ref = next(iter(fields.items()))
    for key, da in fields.items():
        if da.sizes["lat"] != ref.sizes["lat"] or da.sizes["lon"] != ref.sizes["lon"]:
            from srgpu.errors import GridMismatch

            raise GridMismatch(
                f"grid differs from that of {ref_name}",
                file=da.attrs.get("source_file"),
                field=key,
                value=(da.sizes["lat"], da.sizes["lon"]),
                expected=str((ref.sizes["lat"], ref.sizes["lon"])),
            )
        fields[key] = da.assign_coords(lat=ref["lat"], lon=ref["lon"])
    return fields


def _area_and_land(
    found: dict[str, tuple[xr.DataArray, Path]],
    ref: xr.DataArray,
    fields: dict[str, xr.DataArray],
) -> tuple[xr.DataArray, xr.DataArray]:
    grid = ref.isel({d: 0 for d in ref.dims if d not in ("lat", "lon")}, drop=True)
    if "areacella" in found:
        da, file = found["areacella"]
        area = _standardise_grid(da, file=file, field="areacella").astype("float64")
        area = area.assign_coords(lat=grid["lat"], lon=grid["lon"])
    else:
        area = xr.DataArray(
            spherical_cell_area(grid["lat"].values, grid["lon"].values),
            dims=("lat", "lon"),
            coords={"lat": grid["lat"], "lon": grid["lon"]},
        )
    if "sftlf" in found:
        da, file = found["sftlf"]
        land = _standardise_grid(da, file=file, field=str(da.name)).astype("float64")
        units = str(da.attrs.get("units", "%")).strip()
        if units in ("%", "percent"):
            land = land / 100.0
        elif units not in ("1", "", "fraction"):
            raise UnitError(
                "land fraction units",
                file=file,
                field=str(da.name),
                value=units,
                expected="'%' or '1'",
            )
        land = land.fillna(0.0).assign_coords(lat=grid["lat"], lon=grid["lon"])
    else:
        # no sftlf: a cell is land where any flux/stock is finite (TRENDY masks the ocean)
        finite = xr.zeros_like(grid, dtype=bool)
        for da in fields.values():
            finite = finite | da.notnull().any([d for d in da.dims if d not in ("lat", "lon")])
        land = finite.astype("float64")
    return (
        area.assign_attrs(units="m2", standard_name="cell_area"),
        land.assign_attrs(units="1", standard_name="land_area_fraction"),
    )


def soil_fluxes(
    data: xr.Dataset, *, root_fraction: float | None = None
) -> tuple[xr.Dataset, list[str]]:
    """Add ``HR``, ``AR`` (root autotrophic) and ``SR = HR + AR`` (g C m-2 yr-1) where possible.

    HR = ``rh``. AR = ``raRoot`` when the model gives it; otherwise, if ``root_fraction`` is set,
    AR = ``root_fraction`` x ``ra``; otherwise AR and SR are left out and a note says why.
    """
    notes: list[str] = []
    out = data.copy()
    if root_fraction is not None and not 0.0 < root_fraction <= 1.0:
        raise InputError(
            "root fraction out of range",
            field="root_fraction",
            value=root_fraction,
            expected="0 < f <= 1",
        )
    attrs = {"units": "g C m-2 yr-1"}
    if "rh" in data:
        out["HR"] = data["rh"].assign_attrs(attrs, long_name="heterotrophic respiration (rh)")
    else:
        notes.append("HR not computed: no rh")
    if "raRoot" in data:
        out["AR"] = data["raRoot"].assign_attrs(attrs, long_name="root autotrophic respiration")
        notes.append("AR = raRoot")
    elif "ra" in data and root_fraction is not None:
        out["AR"] = (root_fraction * data["ra"]).assign_attrs(
            attrs, long_name=f"root autotrophic respiration = {root_fraction} x ra"
        )
        notes.append(f"AR = {root_fraction} x ra (no root respiration in the output)")
    elif "ra" in data:
        notes.append("AR, SR not computed: only total ra is given (set root_fraction to estimate)")
    else:
        notes.append("AR, SR not computed: no raRoot or ra")
    if "HR" in out and "AR" in out:
        out["SR"] = (out["HR"] + out["AR"]).assign_attrs(attrs, long_name="soil respiration")
    return out, notes
