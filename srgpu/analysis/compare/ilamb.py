"""An ensemble flux as an ILAMB / ilamb3 reference data set, in the form ilamb3 reads.

Read from ilamb3's source (the release pinned in ``pyproject.toml``; ``docs/compare.md`` says
what follows from it):

* **Area.** ilamb3 opens a reference file as it is (no CMIP ``areacella``/``sftlf`` handling,
  which it applies to models only) and integrates with a data variable named
  ``cell_measures`` when one exists, else with the full spherical cell area. Without it a
  land-only flux is integrated over whole coastal cells (+26.6 % on srgpu's HR). So the file
  holds ``cell_measures`` = cell area x land fraction (m2, domain cells; NaN elsewhere) and the
  flux names it: ``cell_measures = "area: cell_measures"``.
* **Uncertainty.** ilamb3's ``get_scalar_uncertainty`` takes a *single* ancillary variable only
  when its dimensions differ from the variable's; a same-dims ancillary is silently ignored, and
  the interval form (two ancillary variables) is not used here. The flux is ``(time=1, lat,
  lon)`` and its ancillary ``<name>_sd`` is ``(lat, lon)``: the SD across replicates of the
  time-mean (over a sub-period: the mean of the yearly SDs, an upper bound), which ilamb3's bias
  score subtracts from |bias| (Collier et al. 2018).
* **Units.** ``g m-2 yr-1``, the store's own (no conversion; pint converts the model). Not
  CMIP's kg m-2 s-1: ilamb3's spatial-distribution analysis skips a region whose spatial SD is
  ``np.allclose(sd, 0)`` (absolute tolerance 1e-8), and a flux in kg m-2 s-1 (about 1e-8) is
  skipped everywhere.
* **Time.** One step whose ``time_bnds`` span the period; the model is cut to that span.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

ILAMB_NAMES: dict[str, tuple[str, str | None]] = {
    "HR": (
        "rh",
        "surface_upward_mass_flux_of_carbon_dioxide_expressed_as_carbon_due_to_heterotrophic_respiration",
    ),
    "AR": ("raRoot", None),
    "SR": ("sr", None),
}
"""Ensemble flux -> (CMOR-style variable name, CF standard name where one exists)."""

UNITS = "g m-2 yr-1"
"""Of carbon (UDUNITS has no "g C"), as in the store."""


def ilamb_reference(
    store: xr.Dataset, *, flux: str = "HR", years: tuple[int, int] | None = None
) -> xr.Dataset:
    """One ensemble flux as an ilamb3 reference data set (``xr.Dataset``; write it with
    ``to_netcdf``).

    ``<name>(time=1, lat, lon)`` in g m-2 yr-1 with ``time_bnds`` spanning the period (all store
    years, or ``years`` = (first, last) through the per cell-year means ``F_mean``),
    ``cell_methods = "area: mean where land time: mean"``, ``cell_measures = "area:
    cell_measures"`` and ``ancillary_variables = "<name>_sd"``; ``<name>_sd(lat, lon)``;
    ``cell_measures(lat, lon)`` in m2; ``lat``/``lon`` with CF attributes and bounds.
    """
    from srgpu.analysis.compare.periods import comparison_period, ensemble_period_fields
    from srgpu.analysis.compare.scores import ensemble_years

    name, standard_name = ILAMB_NAMES[flux]
    ens_years = ensemble_years(store)
    period = comparison_period(ensemble_years=ens_years, model_years={}, requested=years)
    mean_map, sd_map, _ = ensemble_period_fields(store, flux, period)
    chosen = list(period.years) or [2000]  # a climatology: a nominal year
    start, end = min(chosen), max(chosen)
    time = xr.date_range(f"{start}-01-01", periods=1, freq="YS", use_cftime=True)
    bnds = [
        xr.date_range(f"{start}-01-01", periods=1, use_cftime=True)[0],
        xr.date_range(f"{end + 1}-01-01", periods=1, use_cftime=True)[0],
    ]
    factor = 1.0
    attrs = {
        "units": UNITS,
        "cell_methods": "area: mean where land time: mean",
        "cell_measures": "area: cell_measures",
        "long_name": f"{flux} of the srgpu random-forest ensemble",
        "ancillary_variables": f"{name}_sd",
    }
    if standard_name:
        attrs["standard_name"] = standard_name
    domain = store["domain"].astype(bool)
    coords = {"lat": store["lat"].values, "lon": store["lon"].values}
    mean = xr.DataArray(np.asarray(mean_map.values) * factor, dims=("lat", "lon"), coords=coords)
    sd_values = np.full(mean.shape, np.nan) if sd_map is None else np.asarray(sd_map.values)
    sd = xr.DataArray(sd_values * factor, dims=("lat", "lon"), coords=coords)
    area = (store["cell_area"] * store["land_fraction"]).where(
        domain & (store["land_fraction"] > 0)
    )
    sd_attrs = {
        "units": UNITS,
        "long_name": f"SD across replicates of the time-mean {flux} (ensemble uncertainty)",
        "cell_methods": "area: mean where land time: mean realization: standard_deviation",
    }
    ds = xr.Dataset(
        {
            name: mean.expand_dims(time=time).assign_attrs(attrs),
            f"{name}_sd": sd.assign_attrs(sd_attrs),
            "cell_measures": xr.DataArray(
                np.asarray(area.values, dtype=np.float64), dims=("lat", "lon"), coords=coords
            ).assign_attrs(
                units="m2",
                standard_name="cell_area",
                long_name="land area of the cell: cell area x land fraction (prediction domain)",
            ),
            "time_bnds": (("time", "nv"), np.array([bnds], dtype=object)),
        }
    )
    for axis, units, std, ax in (
        ("lat", "degrees_north", "latitude", "Y"),
        ("lon", "degrees_east", "longitude", "X"),
    ):
        if f"{axis}_bnds" in store:
            ds[f"{axis}_bnds"] = ((axis, "nv"), np.asarray(store[f"{axis}_bnds"].values))
            ds[axis].attrs["bounds"] = f"{axis}_bnds"
        ds[axis].attrs.update(units=units, standard_name=std, axis=ax)
    ds["time"].attrs.update(bounds="time_bnds", standard_name="time", axis="T")
    for var in ("time", "time_bnds"):  # one units encoding for both, as CF requires
        ds[var].encoding.update(units="days since 1850-01-01", calendar="standard")
    ds.attrs = {
        "Conventions": "CF-1.8",
        "source": "srgpu ensemble store",
        "period": period.label,
        "config_hash": str(store.attrs.get("config_hash", "")),
    }
    return ds
