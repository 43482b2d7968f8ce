"""The embedded synthetic demo world: drivers, land cover and an SRDB-like table with a known truth.

srgpu runs on this world when no data is given, and the tests use it to check that the ensemble
recovers a known answer. :func:`make_demo_world` returns exactly what a user would bring (CF
``xarray.Dataset`` drivers and land cover, an SRDB-format ``pandas.DataFrame``) plus the truth:
the annual predictors, the noise-free SR and HR fields and the global totals.

The world in four steps:

1. **Geography** (fixed, whatever the seed): a regular global grid at ``resolution`` degrees,
   crude continents built from rotated ellipses (about 29 % land), "mountain" blobs that cool
   Greenland, Antarctica, Tibet, the Rockies and the Andes, and a continentality index (the land
   share smoothed over about 12 degrees).
2. **Climate**: a zonal monthly climatology (warm tropics, cold poles, a seasonal cycle of the
   right sign per hemisphere that grows with latitude and continentality; wet tropics, dry
   subtropics, drier interiors), plus seeded year-to-year anomalies (smooth fields drawn on a
   fixed 10 degree grid, so the same seed gives the same anomalies at any resolution). Humidity,
   leaf area, shortwave radiation and soil carbon follow from temperature and precipitation.
3. **Land cover** (fixed): an IGBP class per land cell from the climatology, a secondary class
   that shares the primary's vegetated status, per-class fractions and ``sftlf``.
4. **Sites** (seeded): SRDB-like clusters (many records in temperate North America, Europe and
   East Asia, few in the tropics and shrublands), fluxes from :func:`true_flux` at the site's
   cell and year(s) times lognormal noise, and the rows that exercise the selection (treated
   plots, Rh >= Rs, missing coordinates, missing years, missing fluxes).

Everything is numpy inside; xarray and pandas at the edges. One module per step:
:mod:`~srgpu.data.demo.geography`, :mod:`~srgpu.data.demo.climate`,
:mod:`~srgpu.data.demo.cover`, :mod:`~srgpu.data.demo.srdb`; :mod:`~srgpu.data.demo.annual`
derives the annual predictors, :mod:`~srgpu.data.demo.datasets` writes the CF datasets,
:mod:`~srgpu.data.demo.truth` sums the truth and :mod:`~srgpu.data.demo.world` wires them.
"""

from __future__ import annotations

from srgpu.constants import EARTH_RADIUS_M
from srgpu.data.demo.constants import DEMO_PAR_FRACTION, FLUX_PREDICTORS
from srgpu.data.demo.truth import DemoTruth
from srgpu.data.demo.world import DemoWorld, make_demo_world, true_flux

__all__ = [
    "DEMO_PAR_FRACTION",
    "EARTH_RADIUS_M",
    "FLUX_PREDICTORS",
    "DemoTruth",
    "DemoWorld",
    "make_demo_world",
    "true_flux",
]
