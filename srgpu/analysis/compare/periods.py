"""The one comparison period shared by the ensemble and every model (issue 16, item 1).

The ensemble's totals, band and maps and every model's means must cover the same years, or a
model can look biased merely because it averages other years. :func:`comparison_period` takes
the overlap of the ensemble's years and each model's years (optionally cut to ``--years``);
:func:`ensemble_period_fields` gives the ensemble's time-mean maps over those years from the
per cell-year means ``<F>_mean`` (year, lat, lon) of the store.

A climatology ensemble has no year to match: the period is then the overlap of the models'
years and the ensemble keeps its climatology map (labelled ``climatology``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from srgpu.errors import InputError
from srgpu.schema import DOMAIN, flux_var


@dataclass(frozen=True)
class Period:
    """The comparison period.

    ``years``: the years compared (sorted; ``()`` when nothing has a year axis);
    ``ensemble_years``: all years of the ensemble (``None`` for a climatology);
    ``full``: the period covers every ensemble year (the store's time-mean maps apply as they
    are); ``requested``: the ``--years`` range, if any.
    """

    years: tuple[int, ...]
    ensemble_years: tuple[int, ...] | None
    requested: tuple[int, int] | None = None

    @property
    def first_last(self) -> tuple[int, int] | None:
        """``(first, last)`` year, or ``None`` when there is no year."""
        return (self.years[0], self.years[-1]) if self.years else None

    @property
    def full(self) -> bool:
        """Every ensemble year is compared (or the ensemble is a climatology)."""
        return self.ensemble_years is None or set(self.ensemble_years) <= set(self.years)

    @property
    def label(self) -> str:
        """``"2001-2003"`` (``"2001"`` for one year, ``"climatology"`` with no year)."""
        if not self.years:
            return "climatology"
        first, last = self.years[0], self.years[-1]
        return str(first) if first == last else f"{first}-{last}"

    @property
    def ensemble_label(self) -> str:
        """The ensemble's side of the period: :attr:`label`, or ``"climatology"``."""
        return "climatology" if self.ensemble_years is None else self.label


def _span(years: Sequence[int]) -> str:
    return f"{min(years)}-{max(years)}" if years else "none"


def comparison_period(
    *,
    ensemble_years: Sequence[int] | None,
    model_years: Mapping[str, Sequence[int] | None],
    requested: tuple[int, int] | None = None,
) -> Period:
    """The years compared: ensemble years ∩ each model's years ∩ ``requested``.

    ``model_years[name]`` is ``None`` for a model without a year axis (time-invariant fields),
    which does not restrict the period. No shared year is an :class:`InputError` that lists
    every source's years.
    """
    chosen: set[int] | None = None if ensemble_years is None else {int(y) for y in ensemble_years}
    for years in model_years.values():
        if years is None:
            continue
        have = {int(y) for y in years}
        chosen = have if chosen is None else chosen & have
    if chosen is None:  # climatology ensemble and no model with years
        if requested is not None:
            raise InputError(
                "--years given but neither the ensemble nor any model has a year axis",
                field="years",
                value=requested,
            )
        return Period(years=(), ensemble_years=None, requested=None)
    if requested is not None:
        chosen = {y for y in chosen if requested[0] <= y <= requested[1]}
    if not chosen:
        sources = [] if ensemble_years is None else [f"ensemble {_span(list(ensemble_years))}"]
        sources += [f"{n} {_span(list(y))}" for n, y in model_years.items() if y is not None]
        raise InputError(
            "no year shared by the ensemble and every model" + (" in --years" if requested else ""),
            field="years",
            value=requested if requested is not None else "; ".join(sources),
            expected="overlapping years (" + "; ".join(sources) + "): compare models that "
            "cover the ensemble's years, one call per group of models sharing years",
        )
    return Period(
        years=tuple(sorted(chosen)),
        ensemble_years=None if ensemble_years is None else tuple(int(y) for y in ensemble_years),
        requested=requested,
    )


def ensemble_period_fields(
    store: xr.Dataset, flux: str, period: Period
) -> tuple[xr.DataArray, xr.DataArray | None, str]:
    """The ensemble's time-mean map of ``flux`` over ``period``, its SD map and a note.

    Full period (or a climatology): the store's ``F`` and ``F_sd_map`` (SD across replicates of
    the time mean). A sub-period: the mean over the period's years of ``F_mean`` and of the
    per cell-year SD ``F_sd``. The mean of yearly SDs bounds the SD of the period mean from
    above (the SD of a sum is at most the sum of the SDs), so uncertainty-weighted scores are
    conservative there; the returned note says so. Both maps are masked to the domain.
    """
    domain = store[DOMAIN].astype(bool)
    sd_name = flux_var(flux, "sd_map")
    if period.full or flux_var(flux, "mean") not in store:
        mean = store[flux]
        sd = store[sd_name] if sd_name in store else None
        note = ""
        if not period.full:
            note = f"{flux}: the store has no {flux}_mean; the ensemble map is all years"
    else:
        years = list(period.years)
        mean = store[flux_var(flux, "mean")].sel(year=years).mean("year")
        sd = (
            store[flux_var(flux, "sd")].sel(year=years).mean("year")
            if flux_var(flux, "sd") in store
            else None
        )
        note = (
            f"{flux}: ensemble map = mean of {flux}_mean over {period.label}; its SD = the mean "
            f"of the yearly SDs (an upper bound of the SD of the {period.label} mean)"
        )
    mean = mean.where(domain).assign_attrs(store[flux].attrs)
    if sd is not None:
        sd = sd.where(domain)
    return mean, sd, note


def year_index(store: xr.Dataset, period: Period) -> np.ndarray | None:
    """Positions of the period's years on the store's ``year`` axis (``None``: all years)."""
    if period.full or "year" not in store.coords:
        return None
    have = [int(y) for y in store["year"].values]
    return np.array([have.index(y) for y in period.years if y in have], dtype=int)
