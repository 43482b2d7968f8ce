"""Land cover of the demo world (fixed): IGBP classes, secondary classes and fractions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from srgpu.data.demo.climate import _NOLEAP_DAYS, _Climatology
from srgpu.data.demo.constants import SECONDARY_CLASS, SECONDARY_SHARE
from srgpu.data.demo.geography import _CROP_BELTS, _WETLANDS, _Geography, _in_blobs
from srgpu.data.vegetation import IGBP_TO_BIN


@dataclass(frozen=True)
class _Cover:
    primary: np.ndarray  # IGBP code of the majority land class, 0 over ocean (lat, lon)
    secondary: np.ndarray  # IGBP code of the secondary class (== primary where none)
    fraction: np.ndarray  # (16, lat, lon): share of the whole cell per class 1..16
    majority: np.ndarray  # majority class with water counted (0 = water)


def _land_cover(geo: _Geography, clim: _Climatology) -> _Cover:
    lon, lat = geo.lonlat()
    mat, prec = clim.mat, clim.prec
    warmest = clim.tas_c.max(axis=0)
    dry_months = (clim.pr_mm_day * _NOLEAP_DAYS[:, None, None] < 60.0).sum(axis=0)
    crops = _in_blobs(lon, lat, _CROP_BELTS)
    wet = _in_blobs(lon, lat, _WETLANDS)

    # warm: MAT >= 18 degC
    warm = np.where(prec >= 600.0, np.where(crops, 12, 9), 10)
    warm = np.where(prec >= 1000.0, 8, warm)
    warm = np.where((prec >= 1700.0) & (dry_months <= 3), 2, warm)
    # temperate: 3 <= MAT < 18
    temp = np.where(prec >= 500.0, np.where(crops, 12, 14), 10)
    temp = np.where(prec >= 650.0, np.where(crops, 12, np.where(mat < 8.0, 5, 4)), temp)
    # boreal: MAT < 3 with a warmest month >= 10 degC (the tree line); tundra shrubs beyond
    boreal = np.where((lon > 100.0) & (lat > 50.0), 3, 1)
    boreal = np.where((mat > 0.0) & (prec > 600.0), 5, boreal)
    boreal = np.where(prec < 450.0, 10, boreal)
    boreal = np.where(warmest < 10.0, 7, boreal)
    cls = np.where(mat >= 18.0, warm, np.where(mat >= 3.0, temp, boreal))
    # dry land: shrubs, then barren; wetland lowlands; ice where no month is warm enough
    cls = np.where(prec < 300.0, np.where((mat >= 15.0) & (prec >= 220.0), 6, 7), cls)
    cls = np.where(prec < 130.0, 16, cls)
    cls = np.where(wet & (mat < 5.0) & (prec >= 300.0), 11, cls)
    cls = np.where((lat < -60.0) | (warmest <= 5.0), 15, cls)
    cls = np.where(geo.is_land, cls, 0).astype(np.int16)

    lut = np.arange(17, dtype=np.int16)
    for code, second in SECONDARY_CLASS.items():
        lut[code] = second
    secondary = lut[cls]
    has_second = geo.is_land & (secondary != cls)
    frac = np.zeros((16, *cls.shape))
    iy, ix = np.nonzero(geo.is_land)
    main_share = np.where(has_second[iy, ix], 1.0 - SECONDARY_SHARE, 1.0)
    frac[cls[iy, ix] - 1, iy, ix] += main_share * geo.land[iy, ix]
    sy, sx = np.nonzero(has_second)
    frac[secondary[sy, sx] - 1, sy, sx] += SECONDARY_SHARE * geo.land[sy, sx]
    main = frac.max(axis=0)
    majority = np.where(geo.is_land & (main > 1.0 - geo.land), cls, 0).astype(np.int16)
    return _Cover(primary=cls, secondary=secondary, fraction=frac, majority=majority)


def _bin_of(codes: np.ndarray) -> np.ndarray:
    lut = np.zeros(256, dtype=np.int16)
    for code, b in IGBP_TO_BIN.items():
        lut[code] = b
    return lut[np.asarray(codes, dtype=np.int64)]
