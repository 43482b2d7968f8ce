"""Constants of the demo world: predictor sets and units, IGBP classes, secondary land classes."""

from __future__ import annotations

DEMO_PAR_FRACTION = 0.48
"""PAR = 0.48 x rsds (the default ``par_fraction`` of :class:`srgpu.config.EnsembleConfig`)."""

FLUX_PREDICTORS: dict[str, tuple[str, ...]] = {
    "SR": ("MAT", "Prec", "RH", "RH_GS", "LAI_GS"),
    "HR": ("MAT", "Prec", "RH", "RH_GS", "LAI_GS", "PAR"),
}
"""The predictors each true response reads (subsets of the paper's sets)."""

PREDICTOR_UNITS: dict[str, str] = {
    "MAT": "degC",
    "Prec": "mm yr-1",
    "RH": "%",
    "LAI": "m2 m-2",
    "PAR": "MJ m-2 yr-1",
    "SOC": "kg m-2",
    "Prec_GS": "mm",
    "RH_GS": "%",
    "LAI_GS": "m2 m-2",
    "PAR_GS": "MJ m-2",
}
"""Units of the annual predictors in :attr:`DemoTruth.predictors`."""

FLUX_UNITS = "g C m-2 yr-1"
TOTAL_UNITS = "Pg C yr-1"

IGBP_NAMES: tuple[str, ...] = tuple(
    "water evergreen_needleleaf_forests evergreen_broadleaf_forests deciduous_needleleaf_forests"
    " deciduous_broadleaf_forests mixed_forests closed_shrublands open_shrublands woody_savannas"
    " savannas grasslands permanent_wetlands croplands urban_and_built_up_lands"
    " cropland_natural_vegetation_mosaics permanent_snow_and_ice barren".split()
)
"""IGBP class names by code (0 = water, as in MODIS MCD12C1)."""

SECONDARY_CLASS: dict[int, int] = {
    1: 5, 2: 8, 3: 1, 4: 5, 5: 4, 6: 7, 7: 6, 8: 9, 9: 10, 10: 9, 12: 14, 14: 12,
}  # fmt: skip
"""Secondary IGBP class of a cell, by primary class: always of the same vegetated status, so that
the vegetated area is the same by majority class and by per-class fractions. Classes absent here
(wetland, ice, barren) fill their cells' land alone."""

SECONDARY_SHARE = 0.25
"""Share of a cell's land held by its secondary class."""
