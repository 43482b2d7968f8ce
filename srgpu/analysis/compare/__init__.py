"""Benchmarking terrestrial ecosystem models against the ensemble (Lu et al. 2021, section 3.2).

``models`` reads CMOR/TRENDY-style NetCDF (units, calendars, SR from rh and root respiration),
``regrid`` puts model fields on the ensemble grid with xarray-regrid, ``scores`` compares them with
the SRDB sites and the ensemble, ``reference`` holds the values the paper reports. :func:`compare`
wires the three stages; ``srgpu compare`` is its command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from srgpu.analysis.compare.models import ModelOutput, read_model
from srgpu.analysis.compare.scores import (
    Comparison,
    comparison_maps,
    open_ensemble,
    prepare,
    run_all,
)

__all__ = [
    "Comparison",
    "ModelOutput",
    "compare",
    "comparison_maps",
    "ilamb_reference",
    "read_model",
]


def compare(
    store: str | Path,
    models: Mapping[str, str | Path],
    *,
    method: str = "conservative",
    root_fraction: float | None = None,
    years: tuple[int, int] | None = None,
    band_deg: float | None = None,
) -> tuple[Comparison, dict[str, pd.DataFrame]]:
    """Read ``models`` (name -> file or directory), compare them with the ensemble ``store``.

    Returns the prepared :class:`Comparison` (regridded fields, for maps and figures) and the
    score tables of :func:`srgpu.analysis.compare.scores.run_all`.
    """
    ensemble = open_ensemble(store)
    outputs = {
        name: read_model(path, name=name, root_fraction=root_fraction)
        for name, path in models.items()
    }
    cmp = prepare(ensemble, outputs, method=method, years=years)
    return cmp, run_all(cmp, band_deg=band_deg)


ILAMB_NAMES: dict[str, tuple[str, str | None]] = {
    "HR": (
        "rh",
        "surface_upward_mass_flux_of_carbon_dioxide_expressed_as_carbon_due_to_heterotrophic_respiration",
    ),
    "AR": ("raRoot", None),
    "SR": ("sr", None),
}
"""Ensemble flux -> (CMOR-style variable name, CF standard name where one exists)."""

SECONDS_PER_MEAN_YEAR = 365.25 * 86400.0


def ilamb_reference(store, *, flux: str = "HR"):
    """One ensemble flux as an ILAMB/ilamb3 reference data set (``xr.Dataset``).

    The time-mean map becomes ``(time=1, lat, lon)`` in kg m-2 s-1 (a year of 365.25 days),
    with ``time_bnds`` spanning the ensemble period and ``cell_methods = "time: mean"``; its
    ``ancillary_variables`` names exactly one variable, ``<name>_sd`` (the SD across replicates,
    same dims): ilamb3's ``get_scalar_uncertainty`` accepts one ancillary variable of the same
    dims (or two forming an interval) and refuses more.
    """
    import numpy as np
    import xarray as xr

    from srgpu.analysis.compare.scores import ensemble_years

    name, standard_name = ILAMB_NAMES[flux]
    years = ensemble_years(store) or [2000]
    start, end = min(years), max(years)
    time = xr.date_range(f"{start}-01-01", periods=1, freq="YS", use_cftime=True)
    bnds = [
        xr.date_range(f"{start}-01-01", periods=1, use_cftime=True)[0],
        xr.date_range(f"{end + 1}-01-01", periods=1, use_cftime=True)[0],
    ]
    factor = 1e-3 / SECONDS_PER_MEAN_YEAR
    attrs = {
        "units": "kg m-2 s-1",
        "cell_methods": "time: mean",
        "long_name": f"{flux} of the srgpu random-forest ensemble",
    }
    if standard_name:
        attrs["standard_name"] = standard_name
    mean = (store[flux] * factor).expand_dims(time=time)
    sd = (store[f"{flux}_sd_map"] * factor).expand_dims(time=time)
    ds = xr.Dataset(
        {
            name: mean.assign_attrs(attrs, ancillary_variables=f"{name}_sd"),
            f"{name}_sd": sd.assign_attrs(
                units="kg m-2 s-1",
                long_name=f"SD across replicates of {flux}",
                standard_name=f"{standard_name} standard_error" if standard_name else None,
            ),
            "time_bnds": (("time", "nv"), np.array([bnds], dtype=object)),
        }
    )
    if ds[f"{name}_sd"].attrs.get("standard_name") is None:
        ds[f"{name}_sd"].attrs.pop("standard_name")
    ds["time"].attrs["bounds"] = "time_bnds"
    for var in ("time", "time_bnds"):  # one units encoding for both, as CF requires
        ds[var].encoding.update(units="days since 1850-01-01", calendar="standard")
    ds["lat"].attrs.update(units="degrees_north", standard_name="latitude")
    ds["lon"].attrs.update(units="degrees_east", standard_name="longitude")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "source": "srgpu ensemble store",
        "config_hash": str(store.attrs.get("config_hash", "")),
    }
    return ds
