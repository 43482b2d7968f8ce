"""The SRDB observation filters of a run (``[observations]`` in the config, ``--years`` and
friends on the command line).

All off by default: the paper's stated criteria
(:func:`srgpu.data.observations.select_observations`) apply whatever this says. The options are
that function's stricter, documented ones:

* ``years = [FIRST, LAST]``: keep records with ``FIRST <= Study_midyear < LAST + 1`` (the
  paper's driver period is 1982-2012; records outside it would otherwise join the nearest driver
  year, "clamped");
* ``exclude_quality_flags = ["Q10", ...]``: drop records carrying any of these codes;
* ``exclude_duplicates = true``: drop records with ``Duplicate_record`` set;
* ``ecosystem_states = ["Natural", "Unmanaged"]``: keep only these ``Ecosystem_state`` values.

A config without filters serialises without an ``[observations]`` table, so the hash of runs made
before these options existed does not change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from srgpu.errors import ConfigError

__all__ = ["ObservationFilter", "parse_years"]

_YEARS = re.compile(r"^\s*(\d{4})\s*(?:[-–:]|\.\.)\s*(\d{4})\s*$|^\s*(\d{4})\s*$")


def parse_years(text: str, *, flag: str = "--years") -> tuple[int, int]:
    """``"1982-2012"`` -> ``(1982, 2012)``; also ``1982:2012``, ``1982..2012`` or one year."""
    m = _YEARS.match(str(text))
    if m is None:
        raise ConfigError(f"{flag} {text!r}: expected FIRST-LAST, e.g. {flag} 1982-2012")
    first, last = (int(m.group(3)), int(m.group(3))) if m.group(3) else (int(m[1]), int(m[2]))
    if first > last:
        raise ConfigError(f"{flag} {text!r}: the first year is after the last; e.g. 1982-2012")
    return first, last


@dataclass(frozen=True)
class ObservationFilter:
    """Stricter SRDB selection options (see the module docstring)."""

    years: tuple[int, int] | None = None
    exclude_quality_flags: tuple[str, ...] = ()
    exclude_duplicates: bool = False
    ecosystem_states: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.years is not None:
            years = tuple(int(y) for y in self.years)
            if len(years) != 2 or years[0] > years[1]:
                raise ConfigError(
                    f"observations.years must be [FIRST, LAST] with FIRST <= LAST, got "
                    f"{list(self.years)}"
                )
            object.__setattr__(self, "years", years)
        object.__setattr__(
            self, "exclude_quality_flags", tuple(str(c) for c in self.exclude_quality_flags)
        )
        if self.ecosystem_states is not None:
            object.__setattr__(
                self, "ecosystem_states", tuple(str(s) for s in self.ecosystem_states)
            )

    @property
    def is_empty(self) -> bool:
        return self == ObservationFilter()

    def selection_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`srgpu.data.observations.load_observations`."""
        out: dict[str, Any] = {}
        if self.years is not None:
            out["years"] = self.years
        if self.exclude_quality_flags:
            out["exclude_quality_flags"] = self.exclude_quality_flags
        if self.exclude_duplicates:
            out["exclude_duplicates"] = True
        if self.ecosystem_states is not None:
            out["ecosystem_states"] = self.ecosystem_states
        return out

    def to_dict(self) -> dict[str, Any]:
        """The set options only (TOML/JSON form)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.selection_options().items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "config") -> ObservationFilter:
        known = {"years", "exclude_quality_flags", "exclude_duplicates", "ecosystem_states"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown observations key(s) {unknown}; expected some of {sorted(known)}"
            )
        kw = dict(data)
        if isinstance(kw.get("years"), str):
            kw["years"] = parse_years(kw["years"], flag="observations.years")
        for key in ("exclude_quality_flags", "ecosystem_states"):
            if isinstance(kw.get(key), str):
                kw[key] = (kw[key],)
        try:
            return cls(**kw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: observations: {exc}") from None
