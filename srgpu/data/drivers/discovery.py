"""Finding each driver role in the sources: explicit override, CF standard name, short name; and
the conversion of a found variable to internal units (:mod:`srgpu.units`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import xarray as xr

from srgpu.data.drivers.roles import (
    PAR_STANDARD_NAME,
    PREDICTOR_ROLE_ALIASES,
    ROLES,
    Found,
    Source,
    role,
)
from srgpu.errors import ConfigError, InputError
from srgpu.units import convert_driver_units


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


def convert_units(
    da: xr.DataArray, *, found: Found, days: xr.DataArray | float | None = None
) -> xr.DataArray:
    """Convert ``da`` (the data of ``found``) from its CF ``units`` to :data:`INTERNAL_UNITS`
    (:func:`srgpu.units.convert_driver_units`; ``days``: month lengths, for rates)."""
    return convert_driver_units(
        da,
        role=found.role,
        units=found.da.attrs.get("units"),
        description=role(found.role).description,
        file=found.label,
        field=found.name,
        days=days,
    )
