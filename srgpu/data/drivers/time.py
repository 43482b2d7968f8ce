"""Monthly layout of a driver: ``(year, month, lat, lon)``; a CF climatology becomes one year."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
import xarray as xr

from srgpu.data.drivers.roles import Found
from srgpu.errors import InputError


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
