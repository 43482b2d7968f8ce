"""The demo world as CF ``xarray.Dataset`` files: drivers and land cover."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from srgpu.data.demo.climate import _Monthly
from srgpu.data.demo.constants import IGBP_NAMES
from srgpu.data.demo.cover import _Cover
from srgpu.data.demo.geography import _Grid


def _cf(standard_name: str | None, long_name: str, units: str, **extra: Any) -> dict[str, Any]:
    attrs = {"standard_name": standard_name, "long_name": long_name, "units": units, **extra}
    return {k: v for k, v in attrs.items() if v is not None}


def _grid_coords(grid: _Grid) -> tuple[dict[str, Any], dict[str, Any]]:
    """CF lat/lon coordinates (ascending cell centres) and their bounds variables."""
    coords = {
        "lat": (
            "lat",
            grid.lat,
            _cf("latitude", "latitude", "degrees_north", axis="Y", bounds="lat_bnds"),
        ),
        "lon": (
            "lon",
            grid.lon,
            _cf("longitude", "longitude", "degrees_east", axis="X", bounds="lon_bnds"),
        ),
    }
    bounds = {
        "lat_bnds": (("lat", "bnds"), grid.lat_bnds, {"units": "degrees_north"}),
        "lon_bnds": (("lon", "bnds"), grid.lon_bnds, {"units": "degrees_east"}),
    }
    return coords, bounds


def _global_attrs(title: str) -> dict[str, str]:
    return {
        "Conventions": "CF-1.8",
        "title": title,
        "source": "srgpu.data.demo: synthetic demo world (no real data)",
        "comment": "synthetic: crude continents and a smooth analytic climate; see docs/demo.md",
    }


def _drivers_dataset(grid: _Grid, m: _Monthly) -> xr.Dataset:
    """Monthly CF drivers: tas, pr, hurs, lai, rsds on (time, lat, lon); static soc."""
    coords, bounds = _grid_coords(grid)
    mid = m.time_start + (m.time_end - m.time_start) / 2
    since = f"days since {str(m.time_start[0])[:10]}"
    encoding = {"units": since, "calendar": "standard", "dtype": "float64"}
    time = xr.Variable(
        "time",
        mid.astype("datetime64[ns]"),
        _cf("time", "time", None, axis="T", bounds="time_bnds"),  # type: ignore[arg-type]
        encoding=encoding,
    )
    bnds = np.stack([m.time_start, m.time_end], axis=1).astype("datetime64[ns]")
    tll = ("time", "lat", "lon")
    cm = {"cell_methods": "area: mean time: mean"}
    data_vars = {
        **bounds,
        "time_bnds": xr.Variable(("time", "bnds"), bnds, encoding=dict(encoding)),
        "tas": (tll, m.tas, _cf("air_temperature", "Near-surface air temperature", "K", **cm)),
        "pr": (tll, m.pr, _cf("precipitation_flux", "Precipitation", "kg m-2 s-1", **cm)),
        "hurs": (
            tll,
            m.hurs,
            _cf("relative_humidity", "Near-surface relative humidity", "%", **cm),
        ),
        "lai": (tll, m.lai, _cf("leaf_area_index", "Leaf area index", "1", **cm)),
        "rsds": (
            tll,
            m.rsds,
            _cf(
                "surface_downwelling_shortwave_flux_in_air",
                "Surface downwelling shortwave radiation",
                "W m-2",
                **cm,
            ),
        ),
        "soc": (
            ("lat", "lon"),
            m.soc,
            _cf(
                "soil_mass_content_of_carbon",
                "Soil organic carbon content, 0-30 cm",
                "kg m-2",
                cell_methods="area: mean",
                comment="static; organic carbon in the top 0.3 m of soil",
            ),
        ),
    }
    attrs = _global_attrs("srgpu demo world: monthly drivers")
    return xr.Dataset(data_vars, coords={**coords, "time": time}, attrs=attrs)


def _vegetation_dataset(grid: _Grid, land: np.ndarray, cover: _Cover) -> xr.Dataset:
    """Land cover laid out like the MODIS MCD12C1 file: majority codes, fractions, sftlf."""
    coords, bounds = _grid_coords(grid)
    codes = np.arange(17, dtype=np.int16)
    flags = {"flag_values": codes, "flag_meanings": " ".join(IGBP_NAMES)}
    coords["class"] = (
        "class",
        codes[1:],
        _cf(None, "IGBP land cover class code", "1", flag_values=codes[1:],
            flag_meanings=" ".join(IGBP_NAMES[1:])),
    )  # fmt: skip
    ll = ("lat", "lon")
    data_vars = {
        **bounds,
        "land_cover": (
            ll,
            cover.majority,
            _cf(
                None, "IGBP class with the largest share of the cell (water included)", "1", **flags
            ),
        ),
        "land_cover_on_land": (
            ll,
            cover.primary,
            _cf(
                None,
                "IGBP class with the largest share of the cell's land (0: no land)",
                "1",
                **flags,
            ),
        ),
        "land_cover_fraction": (
            ("class", "lat", "lon"),
            cover.fraction.astype(np.float32),
            _cf(
                "area_fraction",
                "share of the cell's area in each IGBP land class",
                "1",
                cell_methods="area: sum",
                comment="water share = 1 - sum over classes = 1 - sftlf / 100",
            ),
        ),
        "sftlf": (
            ll,
            (100.0 * land).astype(np.float32),
            _cf("land_area_fraction", "land area fraction", "%"),
        ),
    }
    attrs = _global_attrs("srgpu demo world: IGBP land cover")
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)
