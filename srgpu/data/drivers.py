"""Finding and reading gridded driver variables: sources, variable discovery, grid and CF units.

A *source* is a NetCDF file, a Zarr store or an in-memory :class:`xarray.Dataset`; a driver
argument may also be a directory (every ``*.nc``, ``*.nc4``, ``*.zarr`` in it) or a glob. Each
driver *role* (``tas``, ``pr``, ``hurs``, ``lai``, ``rsds``, ``par``, ``soc``, ``sftlf``,
``land_cover``, ``land_cover_fraction``) is found by an explicit override, else by CF
``standard_name``, else by a CMIP-style short name (:data:`ROLES`). Grids are checked
(regular, monotonic, identical across sources) and brought to ascending latitude and longitude
in [-180, 180). Units come from the CF ``units`` attribute and are converted to the internal
units of :data:`INTERNAL_UNITS`; a missing or unknown unit is a :class:`~srgpu.errors.UnitError`.

Monthly variables are laid out as ``(year, month, lat, lon)`` by :func:`monthly_layout`; a CF
climatology (12 calendar months) becomes one ``year``.
"""

from __future__ import annotations

import datetime as _dt
import glob
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from srgpu.errors import ConfigError, GridMismatch, InputError, UnitError


@dataclass(frozen=True)
class Role:
    """A driver role: how to find the variable and whether it has a monthly time axis."""

    name: str
    description: str
    standard_names: tuple[str, ...]
    short_names: tuple[str, ...]
    monthly: bool


ROLES: tuple[Role, ...] = (
    Role(
        "tas",
        "near-surface air temperature",
        ("air_temperature",),
        ("tas", "t2m", "tmp", "tair"),
        True,
    ),
    Role(
        "pr",
        "precipitation",
        (
            "precipitation_flux",
            "precipitation_amount",
            "lwe_precipitation_rate",
            "lwe_thickness_of_precipitation_amount",
        ),
        ("pr", "tp", "pre", "precip", "prec"),
        True,
    ),
    Role("hurs", "relative humidity", ("relative_humidity",), ("hurs", "rh", "relhum"), True),
    Role("lai", "leaf area index", ("leaf_area_index",), ("lai",), True),
    Role(
        "par",
        "photosynthetically active radiation",
        ("surface_downwelling_photosynthetic_radiative_flux_in_air",),
        ("par",),
        True,
    ),
    Role(
        "rsds",
        "surface downwelling shortwave radiation",
        ("surface_downwelling_shortwave_flux_in_air",),
        ("rsds", "ssrd", "swdown", "srad"),
        True,
    ),
    Role(
        "soc",
        "soil organic carbon (0-30 cm)",
        ("soil_mass_content_of_carbon", "soil_carbon_content"),
        ("soc", "csoil", "orgc"),
        False,
    ),
    Role("sftlf", "land area fraction", ("land_area_fraction",), ("sftlf", "landfrac"), False),
    Role("land_cover", "IGBP land-cover class", (), ("land_cover_on_land", "land_cover"), False),
    Role(
        "land_cover_fraction",
        "IGBP land-cover class fractions",
        (),
        ("land_cover_fraction",),
        False,
    ),
)
"""Every role with its CF standard names and short names (matched case-insensitively)."""

INTERNAL_UNITS: dict[str, str] = {
    "tas": "degC",
    "pr": "mm month-1",
    "hurs": "%",
    "lai": "m2 m-2",
    "par": "MJ m-2 month-1",
    "rsds": "MJ m-2 month-1",
    "soc": "kg m-2",
    "sftlf": "1",
    "land_cover_fraction": "1",
}
"""Units after :func:`convert_units` (radiation and precipitation are monthly amounts)."""

PREDICTOR_ROLE_ALIASES: dict[str, str] = {
    "MAT": "tas",
    "Prec": "pr",
    "Prec_GS": "pr",
    "RH": "hurs",
    "RH_GS": "hurs",
    "LAI": "lai",
    "LAI_GS": "lai",
    "PAR": "rsds",
    "PAR_GS": "rsds",
    "SOC": "soc",
}
"""Predictor names accepted as override keys, and the role they name (``PAR`` names ``par`` when
the variable's ``standard_name`` is the PAR one, else shortwave ``rsds``)."""

PAR_STANDARD_NAME = "surface_downwelling_photosynthetic_radiative_flux_in_air"
UMOL_PER_J_PAR = 4.57
"""Photon flux per unit energy of PAR (µmol J⁻¹, McCree 1972), for PAR given in µmol m⁻² s⁻¹."""


def role(name: str) -> Role:
    """The :class:`Role` called ``name``."""
    for r in ROLES:
        if r.name == name:
            return r
    raise KeyError(name)


@dataclass(frozen=True)
class Source:
    """An opened source: ``label`` names it in errors (file path or ``<dataset N>``)."""

    label: str
    ds: xr.Dataset


@dataclass(frozen=True)
class Found:
    """A variable found for a role: the source label, the variable name and its data."""

    role: str
    label: str
    name: str
    da: xr.DataArray


# --------------------------------------------------------------------------- sources
def expand_sources(
    sources: Sequence[str | Path | xr.Dataset] | str | Path | xr.Dataset,
) -> list[str | Path | xr.Dataset]:
    """Expand directories (``*.nc``, ``*.nc4``, ``*.zarr`` in them) and globs, in sorted order."""
    if isinstance(sources, (str, Path, xr.Dataset)):
        sources = [sources]
    out: list[str | Path | xr.Dataset] = []
    for src in sources:
        if isinstance(src, xr.Dataset):
            out.append(src)
            continue
        text = str(src)
        path = Path(text)
        if any(c in text for c in "*?[") and not path.exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError("no file matches this pattern", file=text)
            out.extend(Path(m) for m in matches)
        elif (
            path.is_dir()
            and path.suffix != ".zarr"
            and not (path / "zarr.json").exists()
            and not (path / ".zgroup").exists()
        ):
            matches = sorted(
                p
                for p in path.iterdir()
                if p.suffix in (".nc", ".nc4", ".zarr") and not p.name.startswith(".")
            )
            if not matches:
                raise InputError("directory holds no .nc/.nc4/.zarr file", file=text)
            out.extend(matches)
        else:
            out.append(path)
    return out


def open_source(src: str | Path | xr.Dataset, *, index: int = 0) -> Source:
    """Open one source lazily (dask-backed for files) and normalise its grid."""
    if isinstance(src, xr.Dataset):
        label = f"<dataset {index}>"
        ds = src
    else:
        path = Path(src)
        label = str(path)
        if not path.exists():
            raise InputError("file not found", file=label)
        try:
            if path.is_dir():
                with warnings.catch_warnings():
                    # a store without consolidated metadata is fine (read it key by key)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    ds = xr.open_zarr(path, chunks={})
            else:
                ds = xr.open_dataset(path, chunks={})
                if "time" in ds.dims and ds.sizes["time"] > 12:  # read a year at a time
                    ds.close()
                    ds = xr.open_dataset(path, chunks={"time": 12})
        except Exception as exc:  # noqa: BLE001 - any backend failure is an input problem
            raise InputError(
                f"cannot read as NetCDF or Zarr: {one_line(exc)}", file=label
            ) from None
    return Source(label, normalise_grid(ds, label=label))


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (library messages can span several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def open_sources(sources: Sequence[str | Path | xr.Dataset], *, start: int = 0) -> list[Source]:
    """Expand and open every source (see :func:`expand_sources`)."""
    return [open_source(s, index=start + i) for i, s in enumerate(expand_sources(sources))]


# --------------------------------------------------------------------------- grid
def _axis_name(ds: xr.Dataset, *, axis: str) -> str | None:
    names = ("lat", "latitude", "y") if axis == "Y" else ("lon", "longitude", "x")
    std = "latitude" if axis == "Y" else "longitude"
    for name in ds.coords:
        attrs = ds[name].attrs
        if ds[name].ndim == 1 and (attrs.get("standard_name") == std or attrs.get("axis") == axis):
            return str(name)
    for name in names:
        if name in ds.coords or name in ds.dims:
            return name
    return None


def _regular_spacing(values: np.ndarray, *, label: str, field: str) -> float:
    if values.size < 2:
        raise GridMismatch(
            "a grid axis needs at least 2 points", file=label, field=field, value=values.size
        )
    d = np.diff(values)
    if not (np.all(d > 0) or np.all(d < 0)):
        raise GridMismatch(
            "coordinate is not monotonic",
            file=label,
            field=field,
            expected="strictly monotonic values",
        )
    step = float(np.median(np.abs(d)))
    if not np.allclose(np.abs(d), step, rtol=0.0, atol=1e-6 * max(step, 1e-9) + 1e-9):
        raise GridMismatch(
            "coordinate is irregular",
            file=label,
            field=field,
            value=(float(np.abs(d).min()), float(np.abs(d).max())),
            expected="a regular lat/lon grid (regrid it first, e.g. with xarray-regrid)",
        )
    return step


def normalise_grid(ds: xr.Dataset, *, label: str) -> xr.Dataset:
    """Rename the horizontal axes ``lat``/``lon``, sort latitude ascending and longitude into
    ascending [-180, 180) (unless that breaks a regional grid crossing the antimeridian); check
    that both axes are regular and monotonic."""
    ylat = _axis_name(ds, axis="Y")
    xlon = _axis_name(ds, axis="X")
    if ylat is None or xlon is None:
        return ds  # no horizontal grid (nothing to find in it); variables are checked on use
    ds = ds.rename({k: v for k, v in ((ylat, "lat"), (xlon, "lon")) if k != v})
    lat_values = np.asarray(ds["lat"].values, dtype=float)
    outside = ~((lat_values >= -90.0) & (lat_values <= 90.0))
    if outside.any():
        raise GridMismatch(
            "latitude outside [-90, 90]",
            file=label,
            field="lat",
            value=float(lat_values[outside][0]),
            expected="latitudes in degrees north",
        )
    _regular_spacing(lat_values, label=label, field="lat")
    _regular_spacing(np.asarray(ds["lon"].values, dtype=float), label=label, field="lon")
    lon = np.asarray(ds["lon"].values, dtype=float)
    wrapped = ((lon + 180.0) % 360.0) - 180.0
    if not np.array_equal(wrapped, lon) and _stays_regular(wrapped):
        ds = ds.assign_coords(lon=("lon", wrapped, ds["lon"].attrs))
    if not _is_ascending(ds["lon"].values):
        ds = ds.sortby("lon")
    if not _is_ascending(ds["lat"].values):
        ds = ds.sortby("lat")
    return ds


def _stays_regular(lon: np.ndarray) -> bool:
    """True when the longitudes, sorted, are still evenly spaced (a regional grid that crosses
    the antimeridian is not, and keeps its original longitudes)."""
    d = np.diff(np.sort(lon))
    return bool(d.size and np.allclose(d, d[0], rtol=0.0, atol=1e-6 * abs(d[0]) + 1e-9))


def _is_ascending(v: np.ndarray) -> bool:
    return bool(np.all(np.diff(np.asarray(v, dtype=float)) > 0))


def check_same_grid(reference: Found, other: Found) -> xr.DataArray:
    """Return ``other.da`` on the reference coordinates, or raise :class:`GridMismatch`."""
    a, b = reference.da, other.da
    for axis in ("lat", "lon"):
        va = np.asarray(a[axis].values, dtype=float)
        vb = np.asarray(b[axis].values, dtype=float)
        step = float(np.abs(np.diff(va)).min())
        if va.shape != vb.shape or not np.allclose(va, vb, rtol=0.0, atol=1e-3 * step):
            raise GridMismatch(
                f"grid of {other.name!r} differs from that of {reference.name!r} in "
                f"{reference.label} along {axis}",
                file=other.label,
                field=axis,
                value=f"{vb.size} points {vb.min()}..{vb.max()}" if vb.size else "no points",
                expected=f"{va.size} points {va.min()}..{va.max()} (regrid first)",
            )
    return b.assign_coords(lat=a["lat"], lon=a["lon"])


# --------------------------------------------------------------------------- discovery
def resolve_overrides(variables: Mapping[str, str] | None) -> dict[str, str]:
    """Map override keys (roles or predictor names) to roles; ``PAR``/``PAR_GS`` keep their key
    (``"PAR"``) so that :func:`find_variable` can decide between PAR and shortwave."""
    out: dict[str, str] = {}
    role_names = {r.name for r in ROLES}
    for key, name in (variables or {}).items():
        if key in role_names:
            target = key
        elif key in PREDICTOR_ROLE_ALIASES:
            target = "PAR" if key in ("PAR", "PAR_GS") else PREDICTOR_ROLE_ALIASES[key]
        else:
            raise ConfigError(
                f"variables: unknown key {key!r}; expected a role {sorted(role_names)} "
                f"or a predictor name {sorted(PREDICTOR_ROLE_ALIASES)}"
            )
        if target in out and out[target] != name:
            raise ConfigError(
                f"variables: {key!r} maps {target} to {name!r} but it is already {out[target]!r}"
            )
        out[target] = str(name)
    return out


def _data_vars(ds: xr.Dataset) -> Iterable[str]:
    return (str(v) for v in ds.data_vars if {"lat", "lon"} <= set(ds[v].dims))


def _match(sources: Sequence[Source], test) -> Found | None:
    for src in sources:
        for name in _data_vars(src.ds):
            if test(name, src.ds[name]):
                return Found("", src.label, name, src.ds[name])
    return None


def find_variable(
    sources: Sequence[Source], role_name: str, *, overrides: Mapping[str, str] | None = None
) -> Found | None:
    """Find the variable of ``role_name`` in ``sources`` (first match in source order).

    Order: an override naming the role; then a CF ``standard_name`` of the role; then a short
    name (case-insensitive). For ``par``/``rsds`` an override ``PAR=NAME`` is tried: it is PAR
    when the variable's ``standard_name`` is the PAR one, else shortwave.
    """
    overrides = overrides or {}
    spec = role(role_name)
    wanted = overrides.get(role_name)
    if wanted is None and role_name in ("par", "rsds") and "PAR" in overrides:
        found = _match(sources, lambda n, da: n == overrides["PAR"])
        if found is None:
            raise InputError(
                f"variable {overrides['PAR']!r} (given for PAR) is in no source",
                field=overrides["PAR"],
                expected=f"one of the sources {[s.label for s in sources]}",
            )
        is_par = found.da.attrs.get("standard_name") == PAR_STANDARD_NAME
        return (
            Found(role_name, found.label, found.name, found.da)
            if is_par == (role_name == "par")
            else None
        )
    if wanted is not None:
        found = _match(sources, lambda n, da: n == wanted)
        if found is None:
            raise InputError(
                f"variable {wanted!r} (given for {role_name}) is in no source",
                field=wanted,
                expected=f"one of the sources {[s.label for s in sources]}",
            )
        return Found(role_name, found.label, found.name, found.da)
    if spec.standard_names:
        found = _match(sources, lambda n, da: da.attrs.get("standard_name") in spec.standard_names)
        if found is not None:
            return Found(role_name, found.label, found.name, found.da)
    for short in spec.short_names:
        found = _match(sources, lambda n, da, s=short: n.lower() == s)
        if found is not None:
            return Found(role_name, found.label, found.name, found.da)
    return None


def describe_role(role_name: str) -> str:
    """Human text of how a role is found (for error messages)."""
    spec = role(role_name)
    parts = []
    if spec.standard_names:
        parts.append("standard_name " + " or ".join(repr(s) for s in spec.standard_names))
    parts.append("a variable named " + " or ".join(repr(s) for s in spec.short_names))
    return f"{spec.description}: " + ", or ".join(parts)


# --------------------------------------------------------------------------- units
def _norm_units(text: str) -> str:
    t = str(text).strip().lower().replace("**", "").replace("^", "").replace("µ", "u")
    t = t.replace("·", " ").replace(".", " ")
    return re.sub(r"\s+", " ", t)


_TAS_K = {"k", "kelvin", "degk", "deg_k", "degrees_k", "degree_kelvin", "degrees_kelvin"}
_TAS_C = {
    "degc",
    "deg_c",
    "°c",
    "celsius",
    "degree_celsius",
    "degrees_celsius",
    "c",
    "deg c",
    "degrees c",
}
_PER_S = {"kg m-2 s-1", "kg/m2/s", "kg m-2s-1", "mm s-1", "mm/s", "kg/m2 s"}
_M_PER_S = {"m s-1", "m/s"}
_PER_DAY = {"mm d-1", "mm day-1", "mm/day", "mm/d", "kg m-2 d-1", "kg m-2 day-1", "mm day"}
_M_PER_DAY = {"m d-1", "m day-1", "m/day"}
_PER_MONTH = {"mm month-1", "mm/month", "mm mon-1", "kg m-2 month-1", "mm", "kg m-2", "kg/m2"}
_PERCENT = {"%", "percent", "pct"}
_FRACTION = {"1", "fraction", "0-1"}
_LAI = {"1", "m2 m-2", "m2/m2", "m2m-2"}
_WATT = {"w m-2", "w/m2", "j m-2 s-1", "w m-2 "}
_MJ_DAY = {"mj m-2 d-1", "mj m-2 day-1", "mj/m2/day", "mj/m2/d"}
_UMOL = {"umol m-2 s-1", "umol/m2/s", "micromol m-2 s-1"}
_SOC_KG = {"kg m-2", "kg/m2", "kg c m-2", "kgc m-2"}
_SOC_G = {"g m-2", "g/m2", "g c m-2", "gc m-2"}
_SOC_T = {"t ha-1", "mg ha-1", "t/ha", "mg/ha", "tc ha-1", "mg c ha-1"}


def convert_units(
    da: xr.DataArray, *, found: Found, days: xr.DataArray | float | None = None
) -> xr.DataArray:
    """Convert ``da`` (the data of ``found``) from its CF ``units`` to :data:`INTERNAL_UNITS`.

    ``days`` is the length of each month in days (broadcastable to ``da``), needed for rates of
    precipitation and radiation. Raises :class:`UnitError` naming the file, the variable and the
    unit when the unit is missing or not one this role accepts.
    """
    r = found.role
    raw = found.da.attrs.get("units")
    if raw is None:
        raise UnitError(
            f"variable has no 'units' attribute ({role(r).description})",
            file=found.label,
            field=found.name,
            expected=f"CF units convertible to {INTERNAL_UNITS.get(r, 'a known unit')}",
        )
    u = _norm_units(raw)
    seconds = None if days is None else days * 86400.0
    out: xr.DataArray | None = None
    if r == "tas":
        out = da - 273.15 if u in _TAS_K else da if u in _TAS_C else None
    elif r == "pr":
        if u in _PER_S and seconds is not None:
            out = da * seconds
        elif u in _M_PER_S and seconds is not None:
            out = da * 1000.0 * seconds
        elif u in _PER_DAY and days is not None:
            out = da * days
        elif u in _M_PER_DAY and days is not None:
            out = da * 1000.0 * days
        elif u in _PER_MONTH:
            out = da
    elif r == "hurs":
        out = da if u in _PERCENT else da * 100.0 if u in _FRACTION else None
    elif r == "lai":
        out = da if u in _LAI else None
    elif r in ("rsds", "par"):
        if u in _WATT and seconds is not None:
            out = da * seconds / 1e6
        elif u in _MJ_DAY and days is not None:
            out = da * days
        elif r == "par" and u in _UMOL and seconds is not None:
            out = da / UMOL_PER_J_PAR * seconds / 1e6
    elif r == "soc":
        out = (
            da
            if u in _SOC_KG
            else da / 1000.0
            if u in _SOC_G
            else da / 10.0
            if u in _SOC_T
            else None
        )
    elif r in ("sftlf", "land_cover_fraction"):
        out = da / 100.0 if u in _PERCENT else da if u in _FRACTION else None
    if out is None:
        raise UnitError(
            f"unknown or unsupported units for {role(r).description}",
            file=found.label,
            field=found.name,
            value=raw,
            expected=f"units convertible to {INTERNAL_UNITS.get(r, '?')} (see docs/predictors.md)",
        )
    out.attrs = {"units": INTERNAL_UNITS[r], "source_units": str(raw)}
    return out


# --------------------------------------------------------------------------- time
@dataclass(frozen=True)
class Monthly:
    """A variable laid out for the predictor maths.

    ``data``: ``(year, month, lat, lon)`` (``(lat, lon)`` when ``static``); ``days``: month
    lengths ``(year, month)``; ``climatology``: one climatological year; ``period``: text such as
    ``"2000-2025"``.
    """

    found: Found
    data: xr.DataArray
    days: xr.DataArray | None
    static: bool
    climatology: bool
    period: str


_NOLEAP = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
_LEAP = np.array([31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)


def _climatology_days(calendar: str) -> np.ndarray:
    """Month lengths of a climatological year: the calendar's common (non-leap) year."""
    cal = calendar.lower()
    if cal == "360_day":
        return np.full(12, 30.0)
    if cal in ("all_leap", "366_day"):
        return _LEAP.copy()
    return _NOLEAP.copy()


def _time_dim(da: xr.DataArray) -> str | None:
    for d in da.dims:
        if d in ("time", "month") or (d in da.coords and da[d].attrs.get("axis") == "T"):
            return str(d)
    return None


def _is_climatology(time: xr.DataArray, da: xr.DataArray) -> bool:
    """CF ``climatology`` attribute on the time axis; or 12 steps, one per calendar month, with
    ``cell_methods`` saying "within years"/"over years" (a flagged 12-month climatology)."""
    if "climatology" in time.attrs or "climatology" in time.encoding:
        return True
    methods = str(da.attrs.get("cell_methods", ""))
    flagged = "within years" in methods or "over years" in methods
    months = np.asarray(time.dt.month.values)
    return flagged and months.size == 12 and sorted(months.tolist()) == list(range(1, 13))


def _climatology_years(ds_source: xr.Dataset | None, time: xr.DataArray) -> tuple[int, int]:
    years = time.dt.year.values
    first, last = int(years.min()), int(years.max())
    bname = time.attrs.get("climatology") or time.encoding.get("climatology")
    if ds_source is not None and bname and bname in ds_source.variables:
        b = ds_source[bname]
        try:
            lo = b.isel({b.dims[-1]: 0})
            hi = b.isel({b.dims[-1]: 1})
            first = int(lo.dt.year.min())
            hi_minus = hi - (
                np.timedelta64(1, "s")
                if np.issubdtype(hi.dtype, np.datetime64)
                else _dt.timedelta(seconds=1)
            )
            last = int(hi_minus.dt.year.max())
        except (TypeError, AttributeError, ValueError, IndexError):
            pass
    return first, last


def monthly_layout(found: Found, *, source_ds: xr.Dataset | None = None) -> Monthly:
    """Lay ``found.da`` out as ``(year, month, lat, lon)`` with month lengths, or as static.

    * no time axis: static;
    * a ``month`` dimension of 12 (values 1..12): a climatology with the calendar's common year;
    * a ``time`` axis carrying the CF ``climatology`` attribute (or ``cell_methods`` with
      "within years"/"over years"): 12 steps, one per calendar month, one climatological year
      dated by the first year of the climatology bounds;
    * otherwise a monthly series: one step per (year, month); years that lack a month are
      dropped; month lengths come from the calendar.
    """
    da = found.da
    label, name = found.label, found.name
    tdim = _time_dim(da)
    other = [d for d in da.dims if d not in ("lat", "lon", tdim)]
    if other:
        raise InputError(
            f"unexpected dimension(s) {other}",
            file=label,
            field=name,
            expected="(time, lat, lon), (month, lat, lon) or (lat, lon)",
        )
    if tdim is None:
        return Monthly(found, da.transpose("lat", "lon"), None, True, False, "static")
    if tdim == "month" and "time" not in da.dims:
        months = (
            np.asarray(da["month"].values)
            if "month" in da.coords
            else np.arange(1, da.sizes["month"] + 1)
        )
        if da.sizes["month"] != 12 or sorted(months.tolist()) != list(range(1, 13)):
            raise InputError(
                "a month axis must hold the 12 calendar months",
                file=label,
                field=name,
                value=months.tolist(),
                expected="months 1..12",
            )
        data = da.sortby("month") if "month" in da.coords else da
        data = data.drop_vars("month", errors="ignore")
        data = data.expand_dims(year=[0]).transpose("year", "month", "lat", "lon")
        days = xr.DataArray(_NOLEAP[None, :], dims=("year", "month"))
        return Monthly(found, data, days, False, True, "climatology")
    time = da[tdim]
    if not (np.issubdtype(time.dtype, np.datetime64) or time.dtype == object):
        raise InputError(
            "time axis is not decoded to dates",
            file=label,
            field=tdim,
            value=str(time.dtype),
            expected="CF time units such as 'days since 2000-01-01'",
        )
    try:
        years = time.dt.year.values
        months = time.dt.month.values
        calendar = str(time.dt.calendar)
    except (AttributeError, TypeError):
        raise InputError("time axis does not hold dates", file=label, field=tdim) from None
    if _is_climatology(time, da):
        if da.sizes[tdim] != 12 or sorted(months.tolist()) != list(range(1, 13)):
            raise InputError(
                "a climatology must hold one step per calendar month",
                file=label,
                field=tdim,
                value=months.tolist(),
                expected="12 steps, months 1..12",
            )
        first, last = _climatology_years(source_ds, time)
        order = np.argsort(months, kind="stable")
        data = da.isel({tdim: order}).drop_vars([c for c in da.coords if tdim in da[c].dims])
        data = (
            data.rename({tdim: "month"})
            .expand_dims(year=[first])
            .transpose("year", "month", "lat", "lon")
        )
        days = xr.DataArray(_climatology_days(calendar)[None, :], dims=("year", "month"))
        period = f"{first}-{last}" if last != first else f"{first}"
        return Monthly(found, data, days, False, True, period)
    key = years.astype(np.int64) * 12 + (months.astype(np.int64) - 1)
    if np.unique(key).size != key.size:
        raise InputError(
            "time axis has more than one step in a month",
            file=label,
            field=tdim,
            expected="monthly means (one step per month) or a 12-month climatology",
        )
    order = np.argsort(key, kind="stable")
    key = key[order]
    yrs = key // 12
    uniq, counts = np.unique(yrs, return_counts=True)
    complete = uniq[counts == 12]
    if complete.size == 0:
        raise InputError(
            "no complete calendar year (12 monthly steps) in the time axis",
            file=label,
            field=tdim,
            value=f"{key.size} steps",
            expected="whole years of monthly means, or a 12-month climatology",
        )
    keep = order[np.isin(yrs, complete)]
    sub = da.isel({tdim: keep})
    days_in = sub[tdim].dt.days_in_month.values.astype(float).reshape(complete.size, 12)
    data = sub.drop_vars([c for c in sub.coords if tdim in sub[c].dims])
    data = data.coarsen({tdim: 12}).construct({tdim: ("year", "month")})
    data = data.assign_coords(year=complete.astype(int)).transpose("year", "month", "lat", "lon")
    days = xr.DataArray(days_in, dims=("year", "month"), coords={"year": complete.astype(int)})
    period = (
        f"{int(complete[0])}-{int(complete[-1])}" if complete.size > 1 else f"{int(complete[0])}"
    )
    if data.chunks is not None:  # dask-backed (files): one chunk per year keeps memory bounded
        data = data.chunk({"year": 1, "month": 12, "lat": -1, "lon": -1})
    return Monthly(found, data, days, False, False, period)
