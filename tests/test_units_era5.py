"""ERA5's monthly means: precipitation in ``m`` and radiation in ``J m-2`` are per-day
accumulations. srgpu refuses the bare units with the conversion named, and converts them once
the file says ``m day-1`` / ``J m-2 day-1`` (issue 18, deliver 3)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.errors import UnitError
from srgpu.units import convert_driver_units


def _convert(role, units, value, days=31.0):
    da = xr.DataArray(np.array([value]))
    return convert_driver_units(
        da, role=role, units=units, description=role, file="era5.nc", field="tp", days=days
    )


@pytest.mark.parametrize(("role", "units"), [("pr", "m"), ("rsds", "J m-2"), ("par", "J m**-2")])
def test_bare_era5_units_are_refused_with_the_conversion(role, units):
    with pytest.raises(UnitError) as err:
        _convert(role, units, 0.003)
    text = str(err.value)
    assert "era5.nc" in text and "days in the month" in text
    assert ("'m day-1'" in text) if role == "pr" else ("'J m-2 day-1'" in text)
    assert err.value.value == units


def test_era5_per_day_units_are_converted():
    # 3 mm a day in a 31-day month
    np.testing.assert_allclose(_convert("pr", "m day-1", 0.003).values, [93.0])
    np.testing.assert_allclose(_convert("pr", "m d-1", 0.003, days=30.0).values, [90.0])
    # 20 MJ m-2 a day in a 30-day month
    np.testing.assert_allclose(_convert("rsds", "J m-2 day-1", 2e7, days=30.0).values, [600.0])


def test_cru_temperature_units_are_understood():
    np.testing.assert_allclose(_convert("tas", "degrees Celsius", 12.5).values, [12.5])
