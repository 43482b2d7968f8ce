"""A finished run as one CF-1.8 NetCDF file (``srgpu export OUT --netcdf FILE``).

The Zarr store holds everything a run needs to resume and to be compared; the export holds the
gridded results for other tools (CF checkers, ILAMB, Panoply, CDO):

* coordinates ``lat``, ``lon`` (with ``lat_bnds``, ``lon_bnds``), ``time`` (one step per driver
  year: mid-year, ``time_bnds`` spanning the year, standard calendar; a climatology store gets a
  CF ``climatology`` attribute and ``climatology_bnds`` instead) and ``replicate`` (standard
  name ``realization``);
* per flux ``F``: ``F_mean`` and ``F_sd`` (time, lat, lon), the time-mean maps ``F``,
  ``F_sd_map``, ``F_median``, ``F_mad``, ``F_q025``, ``F_q975``, ``F_cv`` (lat, lon), and
  ``F_replicate_total`` (replicate, time);
* context ``cell_area``, ``land_fraction``, ``veg_bin``, ``domain`` and ``AR_SR_ratio``.

The per-replicate maps (``replicate x cell``), the site table and the validation table stay in
the store. Coordinates and bounds carry no ``_FillValue`` (CF 2.5.1). The remaining warnings of
the CF checker are listed in ``docs/store.md``.
"""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import xarray as xr

from srgpu.errors import InputError, StoreError
from srgpu.schema import (
    AR_SR_RATIO,
    CELL_AREA,
    COORD_ATTRS,
    DOMAIN,
    LAND_FRACTION,
    OUTPUT_FLUXES,
    PREDICTIVE_FLUXES,
    PREDICTIVE_ORDER_KINDS,
    VEG_BIN,
    flux_var,
)

FLUX_NAMES = OUTPUT_FLUXES
PER_FLUX = ("time_mean", "sd_map", "median", "mad", "q025", "q975", "cv", "mean", "sd")
"""The kinds (:data:`srgpu.schema.FLUX_KINDS`) of every flux exported, with the predictive
distribution's ``pred_mean`` and ``pred_sd`` where the run has them (and its median, MADs and
quantiles, :data:`srgpu.schema.PREDICTIVE_ORDER_KINDS`, after ``predictive = "quantiles"``)."""
CONTEXT = (CELL_AREA, LAND_FRACTION, VEG_BIN, DOMAIN, AR_SR_RATIO)
TIME_UNITS = "days since 1850-01-01 00:00:00"
CALENDAR = "standard"


def _time_axis(years: np.ndarray, *, climatology: bool) -> xr.Dataset:
    starts = [cftime.datetime(int(y), 1, 1, calendar=CALENDAR) for y in years]
    ends = [cftime.datetime(int(y) + 1, 1, 1, calendar=CALENDAR) for y in years]
    lo = cftime.date2num(starts, TIME_UNITS, calendar=CALENDAR)
    hi = cftime.date2num(ends, TIME_UNITS, calendar=CALENDAR)
    bname = "climatology_bnds" if climatology else "time_bnds"
    attrs = {
        "units": TIME_UNITS,
        "calendar": CALENDAR,
        "standard_name": "time",
        "long_name": "time (middle of each driver year)",
        "axis": "T",
        ("climatology" if climatology else "bounds"): bname,
    }
    ds = xr.Dataset(coords={"time": ("time", (np.asarray(lo) + np.asarray(hi)) / 2.0, attrs)})
    ds[bname] = (("time", "bnds"), np.stack([lo, hi], axis=1).astype(np.float64))
    # the time-mean maps: a scalar coordinate spanning every year ("period: mean")
    ds["period"] = (
        (),
        (float(lo[0]) + float(hi[-1])) / 2.0,
        {
            "units": TIME_UNITS,
            "calendar": CALENDAR,
            "standard_name": "time",
            "long_name": "averaging period of the time-mean maps",
            "bounds": "period_bnds",
        },
    )
    ds["period_bnds"] = (("bnds",), np.array([lo[0], hi[-1]], dtype=np.float64))
    return ds


def export_dataset(store: xr.Dataset) -> xr.Dataset:
    """The CF-1.8 export of an opened, finished ensemble store (lazy where the store is)."""
    climatology = str(store.attrs.get("climatology", 0)) in ("1", "True", "true")
    names = [flux_var(f, kind) for f in FLUX_NAMES for kind in PER_FLUX]
    pred_kinds = ("pred_mean", "pred_sd", *PREDICTIVE_ORDER_KINDS)
    names += [flux_var(f, k) for f in PREDICTIVE_FLUXES for k in pred_kinds]
    names += [flux_var(f, "replicate_total") for f in FLUX_NAMES]
    names += list(CONTEXT)
    keep = [n for n in names if n in store.data_vars]
    if not any(f in store for f in FLUX_NAMES):
        raise InputError(
            "the store has no time-mean flux map (run not finalised?)",
            field="SR",
            expected="a finished run (srgpu ensemble ... ran to the end)",
        )
    ds = store[keep]
    ds = ds.drop_vars([c for c in ds.coords if c not in ("lat", "lon", "year", "replicate")])
    time = _time_axis(np.asarray(store["year"].values), climatology=climatology)
    ds = ds.rename({"year": "time"}).assign_coords(time=time["time"])
    ds = ds.merge(time.drop_vars("time").assign_coords(time=time["time"]))
    for axis in ("lat", "lon"):
        ds[f"{axis}_bnds"] = (
            (axis, "bnds"),
            np.asarray(store[f"{axis}_bnds"].values, dtype=np.float64),
        )
        ds[axis].attrs = dict(COORD_ATTRS[axis])
    n_rep = store.sizes.get("replicate", 0)
    ds = ds.assign_coords(replicate=("replicate", np.arange(n_rep, dtype=np.int32)))
    ds["replicate"].attrs = {**COORD_ATTRS["replicate"], "units": "1"}
    for name in ds.data_vars:
        attrs = dict(store[name].attrs) if name in store else dict(ds[name].attrs)
        if name.endswith("_replicate_total"):
            attrs["cell_methods"] = "area: sum where land time: mean"
            attrs["coordinates"] = "replicate"
        if "time" in ds[name].dims and "time: " not in attrs.get("cell_methods", "time: "):
            # per cell-year values: the annual mean rate of each year
            attrs["cell_methods"] = attrs["cell_methods"].replace(
                "area: mean where land", "area: mean where land time: mean"
            )
        if "time" not in ds[name].dims and "time: " in attrs.get("cell_methods", ""):
            attrs["cell_methods"] = attrs["cell_methods"].replace("time: ", "period: ")
            attrs["coordinates"] = "period"
        if "flag_values" in attrs:  # JSON attributes come back as int64
            attrs["flag_values"] = np.asarray(attrs["flag_values"]).astype(ds[name].dtype)
        ds[name].attrs = {k: v for k, v in attrs.items() if not k.startswith("_")}
    ds.attrs = {
        k: v
        for k, v in store.attrs.items()
        if k in ("Conventions", "title", "source", "config", "config_hash", "srgpu_version")
    }
    ds.attrs["Conventions"] = "CF-1.8"
    for var in ds.variables.values():  # Zarr chunking and codecs do not apply to NetCDF
        var.encoding = {}
    ds.attrs["history"] = "exported from the srgpu ensemble store by srgpu export"
    ds.attrs["references"] = (
        "Lu H et al. 2021, Environ. Res. Lett. 16 054048 (method); docs/store.md (layout)"
    )
    return ds


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    enc: dict[str, dict] = {}
    for name in ds.variables:
        var = ds[name]
        if name in ds.coords or name.endswith("_bnds"):
            enc[name] = {"_FillValue": None}
        elif np.issubdtype(var.dtype, np.floating):
            enc[name] = {"_FillValue": np.float32(np.nan) if var.dtype == np.float32 else np.nan}
            enc[name] |= {"zlib": True, "complevel": 4}
        else:
            enc[name] = {"_FillValue": None, "zlib": True, "complevel": 4}
        if name in ("time", "time_bnds", "climatology_bnds"):
            enc[name]["dtype"] = "float64"
    return enc


def export_netcdf(out: str | Path, path: str | Path) -> Path:
    """Write the finished run ``out`` (``OUT`` or ``OUT/ensemble.zarr``) as CF-1.8 NetCDF-4 to
    ``path``; returns ``path``. An unfinished run is an :class:`InputError` (through
    :func:`srgpu.results.open_run`)."""
    from srgpu.results import open_run

    store = open_run(out, required=("lat", "lon", "year", CELL_AREA)).dataset
    ds = export_dataset(store)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ds.to_netcdf(tmp, format="NETCDF4", encoding=_encoding(ds))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"{path}: cannot write the NetCDF export: {exc}") from None
    return path
