"""Vegetation bins (the paper's five strata) and their area shares on the sphere."""

from __future__ import annotations

VEG_BINS: dict[int, str] = {
    1: "evergreen_broadleaf_forest",
    2: "other_forests",
    3: "shrublands",
    4: "savannas_grasslands",
    5: "croplands_mosaic",
}
"""The five vegetation bins. Evergreen broadleaf forests and shrublands are bins of their own:
the paper (section 2.2, figure S1) stresses both as under-sampled in SRDB. Bin 0 means
"no vegetation bin" (water, wetland, urban, snow/ice, barren, or unknown)."""

IGBP_TO_BIN: dict[int, int] = {
    1: 2,  # evergreen needleleaf forests
    2: 1,  # evergreen broadleaf forests
    3: 2,  # deciduous needleleaf forests
    4: 2,  # deciduous broadleaf forests
    5: 2,  # mixed forests
    6: 3,  # closed shrublands
    7: 3,  # open shrublands
    8: 4,  # woody savannas
    9: 4,  # savannas
    10: 4,  # grasslands
    11: 0,  # permanent wetlands
    12: 5,  # croplands
    13: 0,  # urban and built-up
    14: 5,  # cropland / natural vegetation mosaics
    15: 0,  # permanent snow and ice
    16: 0,  # barren
    17: 0,  # water bodies (IGBP 17; MODIS MCD12C1 codes water as 0)
}
"""IGBP class code -> vegetation bin (0 = not vegetated)."""
