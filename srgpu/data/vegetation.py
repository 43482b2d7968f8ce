"""Vegetation bins (the paper's five strata) and their area shares on the sphere."""

from __future__ import annotations

import numpy as np
import xarray as xr

from srgpu.errors import InputError

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

WATER_CODES = (0, 17)
"""Land-cover codes that mean water (MODIS MCD12C1 uses 0, the IGBP legend 17)."""


def bin_lookup() -> np.ndarray:
    """Lookup table: ``lut[code]`` (int8, 256 entries) = bin of IGBP ``code`` (0 if none)."""
    lut = np.zeros(256, dtype=np.int8)
    for code, b in IGBP_TO_BIN.items():
        lut[code] = b
    return lut


def bins_from_classes(classes: xr.DataArray, *, land: bool = False) -> xr.DataArray:
    """Vegetation bin (int8 0..5) of each IGBP class code; NaN or out-of-range codes give 0.

    With ``land=True`` return instead a bool map of land cells (a valid code that is not water).
    """
    codes = np.asarray(classes.values, dtype=np.float64)
    ok = np.isfinite(codes) & (codes >= 0) & (codes <= 255)
    icodes = np.where(ok, codes, 0).astype(np.int64)
    if land:
        values = ok & ~np.isin(icodes, WATER_CODES)
    else:
        values = np.where(ok, bin_lookup()[icodes], 0).astype(np.int8)
    return xr.DataArray(values, dims=classes.dims, coords=classes.coords)


def land_class_mask(class_codes: xr.DataArray) -> xr.DataArray:
    """True for the class codes that are land (not water)."""
    return ~class_codes.isin(WATER_CODES)


def bin_fractions_from_classes(fractions: xr.DataArray) -> xr.DataArray:
    """Per-bin shares ``(bin, ...)`` from per-class shares ``(class, ...)`` (codes on ``class``).

    Bin ``b`` gets the sum of the shares of the classes mapped to it; non-vegetated classes
    (wetland, urban, snow/ice, barren, water) go to no bin.
    """
    codes = np.asarray(fractions["class"].values, dtype=np.int64)
    bins = np.array(sorted(VEG_BINS), dtype=np.int64)
    lut = bin_lookup()
    onehot = (lut[np.clip(codes, 0, 255)][:, None] == bins[None, :]).astype(np.float64)
    weights = xr.DataArray(onehot, dims=("class", "bin"), coords={"class": codes, "bin": bins})
    return xr.dot(fractions.fillna(0.0), weights, dim="class").transpose("bin", ...)


def bin_area_shares(predictors: xr.Dataset, *, domain_only: bool = False) -> xr.DataArray:
    """Share of the vegetated land area in each bin, on the sphere; dims ``(bin,)``, sums to 1.

    Area of bin ``b`` = sum over cells of ``cell_area * bin_fraction[b]`` (``bin_fraction`` is a
    share of the whole cell, so the land fraction is already in it). ``domain_only`` restricts
    the sum to the prediction domain.
    """
    for name in ("cell_area", "bin_fraction"):
        if name not in predictors:
            raise InputError(
                f"predictors lack {name!r}", field=name, expected="a Dataset from build_predictors"
            )
    frac = predictors["bin_fraction"]
    if domain_only:
        frac = frac.where(predictors["domain"], 0.0)
    area = (predictors["cell_area"] * frac.fillna(0.0)).sum(("lat", "lon"))
    total = float(area.sum())
    if not total > 0:
        raise InputError(
            "no vegetated land area: the vegetation map is missing or has no class in bins 1-5",
            field="bin_fraction",
            expected="a land-cover map (land_cover or land_cover_fraction)",
        )
    shares = (area / total).astype(np.float64)
    shares.name = "bin_area_share"
    shares.attrs = {"units": "1", "long_name": "share of vegetated land area per vegetation bin"}
    return shares
