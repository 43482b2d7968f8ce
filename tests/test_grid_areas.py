"""Cell areas from bounds or centres given in other dtypes than float64 (issue 21, deliver 4).

The area of a band between latitudes phi1 and phi2, dlon wide, is R^2 dlon (sin phi2 - sin phi1)
on the sphere; srgpu computes it in float64 whatever the dtype of the bounds.
"""

from __future__ import annotations

import math

import numpy as np

from srgpu.constants import EARTH_RADIUS_M
from srgpu.grid import bounds_from_centres, cell_area_m2


def test_float32_and_integer_bounds_give_float64_areas():
    # bands [0, 30] and [30, 90] degrees, 90 degrees wide: R^2 (pi/2) (1/2) each
    want = EARTH_RADIUS_M**2 * (math.pi / 2) * 0.5
    for dtype in (np.float32, np.int64):
        lat = np.array([[0, 30], [30, 90]], dtype=dtype)
        lon = np.array([[0, 90]], dtype=dtype)
        area = cell_area_m2(lat, lon)
        assert area.dtype == np.float64
        # sin(30 degrees) in float32 would be off by ~1e-8 relative
        np.testing.assert_allclose(area[:, 0], [want, want], rtol=1e-15)


def test_integer_centres_give_midway_float_bounds():
    b = bounds_from_centres(np.array([0, 1, 3]), lower=-90.0, upper=90.0)
    assert b.dtype == np.float64
    np.testing.assert_array_equal(b, [[-0.5, 0.5], [0.5, 2.0], [2.0, 4.0]])
