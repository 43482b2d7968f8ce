"""Site table: own cell, neighbour cell, too far, year clamping, climatology."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from srgpu.data.sites import site_table
from srgpu.errors import InputError

LAT = np.array([0.25, 0.75])
LON = np.array([10.25, 10.75, 11.25])
YEARS = np.array([2001, 2002, 2003])
KM_PER_DEG = 6371.0 * np.pi / 180.0


def make_predictors(*, climatology: bool = False) -> xr.Dataset:
    years = YEARS[:1] if climatology else YEARS
    mat = 100.0 * years[:, None, None] / 1000 + np.arange(6.0).reshape(1, 2, 3)
    mat[:, 1, 1] = np.nan  # cell (0.75, 10.75) has no data
    dims = ("year", "lat", "lon")
    return xr.Dataset(
        {
            "MAT": (dims, mat),
            "Prec": (dims, mat * 10),
            "gs_months": (dims, np.full(mat.shape, 12, dtype=np.int8)),
            "veg_bin": (("lat", "lon"), np.array([[1, 2, 3], [4, 0, 5]], dtype=np.int8)),
        },
        coords={"year": years, "lat": LAT, "lon": LON},
        attrs={"climatology": int(climatology)},
    )


def make_obs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": [1, 2, 3, 4, 5, 6],
            "study": ["a", "b", "c", "d", "e", "f"],
            "lat": [0.30, 0.76, 0.76, 0.10, 30.0, 0.60],
            "lon": [10.30, 10.98, 10.74, 11.40, 10.5, 10.30 - 360.0],
            "year": [2002, 2002, 2002, 1990, 2002, 2010],
            "flux": ["SR"] * 6,
            "value": [500.0, 600.0, 700.0, 800.0, 900.0, 1000.0],
            "veg_bin": [0, 0, 0, 2, 0, 3],
            "extra": list("uvwxyz"),
        }
    )


def test_site_table_rules():
    table, counts = site_table(make_obs(), make_predictors())
    assert counts == {
        "rows_in": 6,
        "own_cell": 3,
        "neighbour_cell": 1,
        "dropped_no_cell": 2,
        "dropped_no_year": 0,
        "years_clamped": 2,
    }
    assert table["record_id"].tolist() == [1, 2, 4, 6]
    assert table["extra"].tolist() == ["u", "v", "x", "z"]
    # record 1: own cell (0, 0) in 2002
    r = table.iloc[0]
    assert (r.ilat, r.ilon, r.iyear, r.distance_km) == (0, 0, 1, 0.0)
    assert r.MAT == pytest.approx(200.2 + 0.0)
    assert r.veg_bin == 1  # filled from the map
    # record 2: its cell (1, 1) is NaN -> neighbour (1, 2) at 0.27 deg of longitude
    r = table.iloc[1]
    assert (r.ilat, r.ilon, r.cell_lat, r.cell_lon) == (1, 2, 0.75, 11.25)
    expect = KM_PER_DEG * np.rad2deg(
        np.arccos(
            np.sin(np.deg2rad(0.76)) * np.sin(np.deg2rad(0.75))
            + np.cos(np.deg2rad(0.76)) * np.cos(np.deg2rad(0.75)) * np.cos(np.deg2rad(0.27))
        )
    )
    assert r.distance_km == pytest.approx(expect, rel=1e-6)
    assert r.Prec == pytest.approx(10 * (200.2 + 5.0))
    assert r.veg_bin == 5
    # record 4: year 1990 clamped to 2001, SRDB bin kept
    r = table.iloc[2]
    assert (r.ilat, r.ilon, r.iyear, r.year_used, r.veg_bin) == (0, 2, 0, 2001, 2)
    # record 6: lon -349.7 = 10.3, year 2010 clamped to 2003
    r = table.iloc[3]
    assert (r.ilat, r.ilon, r.iyear, r.year_used, r.veg_bin) == (1, 0, 2, 2003, 3)
    assert "gs_months" not in table.columns and "MAT" in table.columns


def test_larger_radius_reaches_far_site():
    table, counts = site_table(make_obs(), make_predictors(), max_distance_km=60.0)
    assert counts["neighbour_cell"] == 2 and counts["dropped_no_cell"] == 1
    r = table.set_index("record_id").loc[3]
    assert (r.ilat, r.ilon) == (1, 0)  # 0.49 deg west beats 0.51 deg east / south
    assert r.distance_km == pytest.approx(0.49 * KM_PER_DEG * np.cos(np.deg2rad(0.755)), rel=2e-3)


def test_climatology_joins_every_year():
    obs = make_obs()
    obs.loc[0, "year"] = np.nan
    table, counts = site_table(obs, make_predictors(climatology=True))
    assert counts["years_clamped"] == 0 and counts["dropped_no_year"] == 0
    assert set(table["iyear"]) == {0}
    assert len(table) == 4


def test_missing_year_in_time_series_is_dropped():
    obs = make_obs()
    obs.loc[0, "year"] = np.nan
    table, counts = site_table(obs, make_predictors())
    assert counts["dropped_no_year"] == 1 and 1 not in table["record_id"].tolist()


def test_missing_columns():
    with pytest.raises(InputError, match="lacks columns"):
        site_table(make_obs().drop(columns="year"), make_predictors())
