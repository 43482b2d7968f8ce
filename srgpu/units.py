"""The one units module: driver units (:func:`convert_driver_units`) and carbon flux/stock units
of ecosystem-model output (:func:`conversion_factor`).

Units come from the CF ``units`` attribute. Drivers are converted to the internal units of
:data:`INTERNAL_UNITS` (monthly amounts for precipitation and radiation); model output to
g C m-2 s-1 (fluxes) or kg C m-2 (stocks). A missing or unknown unit is a
:class:`~srgpu.errors.UnitError` naming the file, the variable and the unit. Kernels take bare
arrays in these units; only the readers (:mod:`srgpu.data.drivers`,
:mod:`srgpu.analysis.compare.models`) call this module.
"""

from __future__ import annotations

import re
from typing import Any

import xarray as xr

from srgpu.errors import UnitError

__all__ = ["INTERNAL_UNITS", "UMOL_PER_J_PAR", "conversion_factor", "convert_driver_units"]

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

UMOL_PER_J_PAR = 4.57
"""Photon flux per unit energy of PAR (µmol J⁻¹, McCree 1972), for PAR given in µmol m⁻² s⁻¹."""


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
    "degrees celsius",
    "degree celsius",
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
_J_DAY = {"j m-2 d-1", "j m-2 day-1", "j/m2/day", "j/m2/d"}
_BARE_M = {"m", "metre", "meter", "metres", "meters"}
_BARE_J = {"j m-2", "j/m2", "j m-2 "}

ERA5_HINTS: dict[str, str] = {
    "pr": (
        "units 'm' are ambiguous: ERA5 monthly means of total precipitation ('tp') are metres "
        "per day, mm month-1 = value x 1000 x days in the month; if that is this file, set the "
        "variable's units attribute to 'm day-1' (e.g. ncatted -a units,tp,o,c,'m day-1' FILE) "
        "and srgpu converts it"
    ),
    "rsds": (
        "units 'J m-2' are ambiguous: ERA5 monthly means of surface solar radiation downwards "
        "('ssrd') are joules per m2 per day, MJ m-2 month-1 = value x days in the month / 1e6; "
        "if that is this file, set the variable's units attribute to 'J m-2 day-1' and srgpu "
        "converts it"
    ),
}
"""Why a bare accumulated unit (ERA5's monthly means) is refused, and the conversion to apply."""
_UMOL = {"umol m-2 s-1", "umol/m2/s", "micromol m-2 s-1"}
_SOC_KG = {"kg m-2", "kg/m2", "kg c m-2", "kgc m-2"}
_SOC_G = {"g m-2", "g/m2", "g c m-2", "gc m-2"}
_SOC_T = {"t ha-1", "mg ha-1", "t/ha", "mg/ha", "tc ha-1", "mg c ha-1"}


def convert_driver_units(
    da: xr.DataArray,
    *,
    role: str,
    units: str | None,
    description: str,
    file: Any = None,
    field: str | None = None,
    days: xr.DataArray | float | None = None,
) -> xr.DataArray:
    """Convert ``da`` (a driver of ``role``, e.g. ``"pr"``) from ``units`` to INTERNAL_UNITS.

    ``days`` is the length of each month in days (broadcastable to ``da``), needed for rates of
    precipitation and radiation. Raises :class:`UnitError` naming the file, the variable and the
    unit when the unit is missing or not one this role accepts.
    """
    r = role
    raw = units
    if raw is None:
        raise UnitError(
            f"variable has no 'units' attribute ({description})",
            file=file,
            field=field,
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
        elif u in _BARE_M:
            raise UnitError(
                ERA5_HINTS["pr"], file=file, field=field, value=raw, expected="'m day-1'"
            )
    elif r == "hurs":
        out = da if u in _PERCENT else da * 100.0 if u in _FRACTION else None
    elif r == "lai":
        out = da if u in _LAI else None
    elif r in ("rsds", "par"):
        if u in _WATT and seconds is not None:
            out = da * seconds / 1e6
        elif u in _MJ_DAY and days is not None:
            out = da * days
        elif u in _J_DAY and days is not None:
            out = da * days / 1e6
        elif u in _BARE_J:
            raise UnitError(
                ERA5_HINTS["rsds"], file=file, field=field, value=raw, expected="'J m-2 day-1'"
            )
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
            f"unknown or unsupported units for {description}",
            file=file,
            field=field,
            value=raw,
            expected=f"units convertible to {INTERNAL_UNITS.get(r, '?')} (see docs/predictors.md)",
        )
    out.attrs = {"units": INTERNAL_UNITS[r], "source_units": str(raw)}
    return out


# ----------------------------------------------------------- ecosystem-model carbon units
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
