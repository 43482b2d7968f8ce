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

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cftime
import numpy as np
import xarray as xr

from srgpu.analysis.compare.plausibility import check_variable
from srgpu.errors import InputError, UnitError
from srgpu.grid import cell_area_from_centres
from srgpu.schema import CELL_AREA, LAND_FRACTION
from srgpu.units import conversion_factor

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
    "sftlf": ("sftlf", "landfrac", LAND_FRACTION),
}
"""Grid-cell area (m2) and land fraction (%, or 1) on the model grid, optional."""

LAT_NAMES = ("lat", "latitude")  # rectilinear grids only: curvilinear (nav_lat, y) is refused
LON_NAMES = ("lon", "longitude")
TIME_NAMES = ("time", "t")
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
    return cell_area_from_centres(lat, lon)


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
    from srgpu.analysis.compare.calendars import infer_calendar

    inferred = infer_calendar(raw, file=path)  # only when time has no calendar attribute
    if inferred is not None:
        raw["time"].attrs["calendar"] = inferred
        bounds = raw["time"].attrs.get("bounds")
        if bounds in raw.variables:
            raw[bounds].attrs["calendar"] = inferred
        raw.attrs["srgpu_inferred_calendar"] = inferred
    try:
        return xr.decode_cf(raw, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    except Exception as exc:
        time = raw.get("time")
        attrs = {} if time is None else time.attrs
        # the first whole sentence of the reason (xarray's advice after it does not apply)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = reason.split(". ")[0].rstrip(".")
        raise InputError(
            f"time cannot be decoded: {reason}",
            file=path,
            field="time",
            value=f"units={attrs.get('units')!r}, calendar={attrs.get('calendar')!r}",
            expected="CF time units and a CF calendar (standard, noleap, 360_day, ...)",
        ) from None


GLOB_CHARS = ("*", "?", "[")


def model_files(path: str | Path) -> list[Path]:
    """The NetCDF files of one model: ``path`` itself, the NetCDF files in directory ``path``,
    or those matching ``path`` as a glob pattern (``trendy/CLM5.0_*.nc``)."""
    text = str(path)
    path = Path(path)
    if not path.exists() and any(c in text for c in GLOB_CHARS):
        import glob

        matches = sorted(Path(p) for p in glob.glob(text))
        files = [p for p in matches if p.is_file() and p.suffix.lower() in NETCDF_SUFFIXES]
        if not files:
            raise InputError(
                "the pattern matches no NetCDF file",
                file=text,
                value=f"{len(matches)} match(es)",
                expected="a glob such as 'dir/MODEL_*.nc'",
            )
        return files
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
    path: str | Path,
    *,
    name: str | None = None,
    root_fraction: float | None = None,
    skip_checks: Collection[str] = (),
) -> ModelOutput:
    """Read a model (file or directory), convert units, annualise, check plausibility
    (:mod:`srgpu.analysis.compare.plausibility`; ``skip_checks``: variable names or ``"all"``,
    the explicit per-model override) and derive HR/AR/SR."""
    files = model_files(path)
    name = name or Path(path).stem
    found: dict[str, tuple[xr.DataArray, Path]] = {}
    calendar_notes: list[str] = []
    for file in files:
        ds = _open(file)
        if "srgpu_inferred_calendar" in ds.attrs:
            calendar_notes.append(
                f"{file.name}: no calendar attribute; inferred "
                f"{ds.attrs['srgpu_inferred_calendar']!r} from the time axis"
            )
        for table in (FLUX_VARIABLES, STOCK_VARIABLES, FIXED_VARIABLES):
            for canon, aliases in table.items():
                var = _find(aliases, ds.data_vars)
                if var is None:
                    continue
                if canon in found:
                    raise _duplicate_error(path, var, found[canon][1], file)
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
    data[CELL_AREA], data[LAND_FRACTION] = _area_and_land(found, ref, fields)
    check_notes: list[str] = []
    for canon in science:
        raw, file = found[canon]
        check_notes += check_variable(
            canon,
            data[canon],
            area=data[CELL_AREA],
            land_fraction=data[LAND_FRACTION],
            file=file,
            field=str(raw.name),
            units=raw.attrs.get("units"),
            skip=skip_checks,
        )
    ds, notes = soil_fluxes(data, root_fraction=root_fraction)
    sources = {k: str(v[1]) for k, v in found.items()}
    notes = [*calendar_notes, *sorted(set(check_notes)), *notes]
    return ModelOutput(name=name, data=ds.load(), sources=sources, notes=tuple(notes))


def _duplicate_error(path: str | Path, var: str, first: Path, second: Path) -> InputError:
    """A variable found in two files of one model. From a folder or a pattern this usually
    means several models' files together: the message says how to split them."""
    message = f"variable also given in {first}"
    expected = "each variable in one file"
    if len({first, second}) == 2 and (Path(path).is_dir() or not Path(path).exists()):
        names, patterns = [], []
        for f in (first, second):
            stem = f.stem.replace(var, "*", 1) if var in f.stem else f"{f.stem}*"
            patterns.append(str(f.with_name(stem + f.suffix)))
            names.append(stem.replace("*", "").strip("_-. ") or f.stem)
        message += ": the folder seems to hold several models' files"
        expected = (
            "one --model per model, e.g. "
            + " ".join(f"--model {n}='{p}'" for n, p in zip(names, patterns, strict=True))
            + " (NAME=PATH takes a file, a folder or a quoted glob)"
        )
    return InputError(message, file=second, field=var, expected=expected)


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
        area.assign_attrs(units="m2", standard_name=CELL_AREA),
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
