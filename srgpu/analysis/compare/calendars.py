"""A model file whose time axis has no ``calendar`` attribute (issue 16, item 2).

CF reads a missing calendar as ``standard``; a ``360_day`` file written without the attribute is
then weighted with the wrong month lengths (+1.39 % on an annual total). :func:`infer_calendar`
tries each candidate calendar and keeps those under which the time axis is regular:

* consecutive months (or years): each step falls in the month (year) after the previous one;
* the same position in each month (year): the offsets of the time values from the start of
  their month (year) spread over at most :data:`OFFSET_TOLERANCE_DAYS`;
* where the file has time bounds, each bound interval lasts exactly that month (year) in the
  candidate calendar.

When every surviving candidate labels every step with the same year, month and month length,
the choice does not change any result and the inference is unambiguous (``standard`` is taken
if it survives, as CF's default). Otherwise, or when no calendar fits, the file is refused with
an :class:`~srgpu.errors.InputError` that asks for the attribute.
"""

from __future__ import annotations

from typing import Any

import cftime
import numpy as np
import xarray as xr

from srgpu.errors import InputError

CANDIDATES = ("standard", "noleap", "all_leap", "360_day")
"""Calendars tried, CF's default first (julian / proleptic_gregorian equal ``standard`` after
1582 for monthly and annual steps)."""

OFFSET_TOLERANCE_DAYS = 2.0
"""Largest spread of the time values' offsets within their month (year) for a regular axis:
mid-month values written as day 15 of every month spread by 1.5 days in the right calendar, a
360-day axis read as ``standard`` drifts by 5 days within its first year."""


def _steps(values: np.ndarray, units: str, calendar: str, bounds: np.ndarray | None):
    """``[(year, month, days_in_period)]`` of every step if the axis is regular monthly or
    annual in ``calendar``, else ``None``."""
    try:
        dates = cftime.num2date(values, units, calendar=calendar)
    except Exception:  # noqa: BLE001 - e.g. "months since" outside 360_day
        return None
    dates = np.atleast_1d(dates)
    ym = np.array([d.year * 12 + d.month - 1 for d in dates])
    years = np.array([d.year for d in dates])
    monthly = dates.size > 1 and np.all(np.diff(ym) == 1)
    annual = dates.size > 1 and np.all(np.diff(years) == 1)
    if not (monthly or annual):
        return None
    out, offsets = [], []
    for d in dates:
        if monthly:
            start = cftime.datetime(d.year, d.month, 1, calendar=calendar)
            nxt = (d.year + (d.month == 12), d.month % 12 + 1)
            end = cftime.datetime(*nxt, 1, calendar=calendar)
        else:
            start = cftime.datetime(d.year, 1, 1, calendar=calendar)
            end = cftime.datetime(d.year + 1, 1, 1, calendar=calendar)
        offsets.append((d - start).total_seconds() / 86400.0)
        out.append((d.year, d.month if monthly else 0, (end - start).days))
    if max(offsets) - min(offsets) > OFFSET_TOLERANCE_DAYS:
        return None
    if bounds is not None:  # "<unit> since" differences are lengths in every calendar
        width = (bounds[:, 1] - bounds[:, 0]) * _unit_days(units)
        if not np.allclose(width, [n for *_, n in out], atol=1e-6):
            return None
    return out


def _unit_days(units: str) -> float:
    word = units.split("since")[0].strip().lower()
    return {"days": 1.0, "day": 1.0, "d": 1.0, "hours": 1 / 24, "hour": 1 / 24, "h": 1 / 24}.get(
        word, {"minutes": 1 / 1440, "seconds": 1 / 86400, "s": 1 / 86400}.get(word, np.nan)
    )


def infer_calendar(raw: xr.Dataset, *, file: Any) -> str | None:
    """The calendar of ``raw``'s (undecoded) ``time`` when it has no ``calendar`` attribute.

    Returns ``None`` when there is nothing to infer (no time variable, a calendar attribute, no
    ``since`` units). Raises :class:`InputError` when the time axis fits no candidate or fits
    several that would weight the months differently.
    """
    if "time" not in raw.variables:
        return None
    time = raw["time"]
    units = str(time.attrs.get("units", ""))
    if "calendar" in time.attrs or "since" not in units:
        return None
    values = np.asarray(time.values, dtype=float).ravel()
    bounds_name = time.attrs.get("bounds")
    bounds = None
    if bounds_name in raw.variables:
        bounds = np.asarray(raw[bounds_name].values, dtype=float).reshape(-1, 2)
    fits = {}
    for cal in CANDIDATES:
        steps = _steps(values, units, cal, bounds)
        if steps is not None:
            fits[cal] = steps
    expected = "a 'calendar' attribute on time (standard, noleap, 360_day, ...)"
    if not fits:
        raise InputError(
            "time has no calendar attribute and its values are not regular monthly or annual "
            "steps in any calendar: the calendar cannot be inferred",
            file=file,
            field="time",
            value=f"units={units!r}, {values.size} steps",
            expected=expected,
        )
    distinct = {tuple(v) for v in fits.values()}
    if len(distinct) > 1:
        raise InputError(
            "time has no calendar attribute and its steps fit several calendars that weight "
            "the months differently: the calendar cannot be inferred",
            file=file,
            field="time",
            value=", ".join(fits),
            expected=expected,
        )
    return "standard" if "standard" in fits else next(iter(fits))
