"""Physical and reference constants, each written once.

Every module that needs one imports it from here: the Earth radius of every cell area (the
ensemble's grid, the model-output reader, the site join), grams per petagram, the paper's
headline figures, the default seed and the scale of R's ``mad()``.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SEED",
    "EARTH_RADIUS_KM",
    "EARTH_RADIUS_M",
    "G_PER_PG",
    "NORMAL_MAD_SCALE",
    "PAPER_TOTALS_PG",
    "PAPER_UNCERTAINTY_PG",
]

EARTH_RADIUS_M = 6_371_000.0
"""Radius of the spherical Earth of every cell area in srgpu (the mean radius, m)."""

EARTH_RADIUS_KM = EARTH_RADIUS_M / 1000.0

G_PER_PG = 1e15
"""Grams per petagram: g C m-2 yr-1 x m2 -> Pg C yr-1."""

NORMAL_MAD_SCALE = 1.482602218505602
"""1 / Phi^-1(3/4): R's ``mad()`` default constant; scaled MAD = SD for a normal."""

PAPER_TOTALS_PG: dict[str, float] = {"SR": 85.5, "HR": 50.3, "AR": 35.2}
"""Lu et al. 2021 global totals, Pg C/yr (SR, HR: abstract; AR = SR - HR: table 1)."""

PAPER_UNCERTAINTY_PG: dict[str, dict[str, float]] = {
    "SR": {"sd": 40.4, "mad": 27.3},
    "HR": {"sd": 25.0, "mad": 16.9},
}
"""Lu et al. 2021 "global uncertainty" (SD and MAD), Pg C/yr."""

DEFAULT_SEED = 20210505
"""The default seed of an ensemble run."""
