"""The one schema of a run's output: flux lists, store variable names, units and CF attributes.

Every other module names store variables through this module (``flux_var("SR", "sd_map")``,
:data:`CELL_AREA`, ...), never as string literals, so that the writer (:mod:`srgpu.run.store`)
and the readers (:mod:`srgpu.results`, compare, report, explain, the summary) cannot drift apart.

Two flux lists, never confused:

* :data:`TRAINED_FLUXES` (SR, HR): the fluxes that get their own forests;
* :data:`OUTPUT_FLUXES` (SR, HR, AR): the fluxes in the store, AR = SR - HR replicate by
  replicate.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CELL_AREA",
    "CELL_ILAT",
    "CELL_ILON",
    "DOMAIN",
    "FLUX_KINDS",
    "FLUX_LONG",
    "FLUX_STANDARD_NAME",
    "FLUX_UNITS",
    "FORMAT_VERSION",
    "LAND_FRACTION",
    "METRICS",
    "OUTPUT_FLUXES",
    "REPLICATE_DONE",
    "REPLICATE_STATS",
    "TRAINED_FLUXES",
    "VALIDATION",
    "VEG_BIN",
    "AR_SR_RATIO",
    "FluxKind",
    "flux_attrs",
    "flux_var",
    "CALIBRATION",
    "CALIBRATION_METRICS",
    "PREDICTIVE_FLUXES",
    "PREDICTIVE_ORDER_KINDS",
    "PREDICTIVE_QUANTILE_LEVELS",
    "COORD_ATTRS",
    "gridded_attrs",
]

FORMAT_VERSION = 1
"""Version of the store layout (``ensemble.zarr`` attribute ``srgpu_format``). Stores written
before the attribute existed are version 1: the layout has not changed since."""

TRAINED_FLUXES: tuple[str, ...] = ("SR", "HR")
"""Fluxes that get their own forests. AR = SR - HR is derived replicate by replicate."""

OUTPUT_FLUXES: tuple[str, ...] = ("SR", "HR", "AR")
"""Fluxes written to the store and the summary."""

METRICS: tuple[str, ...] = ("r2", "rmse", "r")
"""Validation metrics on each replicate's held-out records, in the store's ``metric`` order."""

METRIC_UNITS: dict[str, str] = {"r2": "1", "rmse": "g m-2 yr-1", "r": "1"}

FLUX_UNITS = "g m-2 yr-1"  # of carbon: CF/UDUNITS has no "g C"; long names say so
TOTAL_UNITS = "Pg yr-1"  # global totals, of carbon
FLUX_LONG: dict[str, str] = {
    "SR": "soil respiration (total soil CO2 efflux, as carbon)",
    "HR": "heterotrophic respiration (as carbon)",
    "AR": "autotrophic (root) respiration, SR - HR (as carbon)",
}
# Only HR has a CF standard name we are sure of (CMIP's ``rh``); SR and AR carry long names.
FLUX_STANDARD_NAME: dict[str, str] = {
    "HR": (
        "surface_upward_mass_flux_of_carbon_dioxide_expressed_as_carbon_"
        "due_to_heterotrophic_respiration"
    ),
}

# static variables of the store (and of the prediction grid they are copied from)
CELL_AREA = "cell_area"
LAND_FRACTION = "land_fraction"
DOMAIN = "domain"
VEG_BIN = "veg_bin"
CELL_ILAT = "cell_ilat"
CELL_ILON = "cell_ilon"
VALIDATION = "validation"
REPLICATE_DONE = "replicate_done"
AR_SR_RATIO = "AR_SR_ratio"

# site variables (one row per SRDB record used, all fluxes)
SITE_FLUX = "site_flux"
SITE_VALUE = "site_value"
SITE_LAT = "site_lat"
SITE_LON = "site_lon"
SITE_YEAR = "site_year"
SITE_ILAT = "site_ilat"
SITE_ILON = "site_ilon"
SITE_IYEAR = "site_iyear"
SITE_VEG_BIN = "site_veg_bin"
SITE_STUDY = "site_study"
SITE_RECORD_ID = "site_record_id"
# per-replicate rows over the sites (with ``predictive`` not "none"): each replicate's forest
# mean at every record of its flux and whether it held the record out (the replicate-spread
# band's calibration, srgpu.run.spread_calibration)
SITE_FOREST_MEAN = "site_forest_mean"
SITE_HELDOUT = "site_heldout"


@dataclass(frozen=True)
class FluxKind:
    """One per-flux store variable: its name suffix, dimensions, units and CF attributes.

    ``long`` is a template with ``{flux}`` for the flux's long name; ``units`` ``None`` means
    :data:`FLUX_UNITS`.
    """

    suffix: str
    dims: tuple[str, ...]
    long: str
    cell_methods: str | None = None
    units: str | None = None
    standard_name: bool = False


FLUX_KINDS: dict[str, FluxKind] = {
    "time_mean": FluxKind(
        "",
        ("lat", "lon"),
        "{flux}, time mean of the ensemble mean",
        "time: mean realization: mean",
        standard_name=True,
    ),
    "mean": FluxKind(
        "_mean",
        ("year", "lat", "lon"),
        "ensemble mean {flux}",
        "realization: mean",
        standard_name=True,
    ),
    "sd": FluxKind(
        "_sd",
        ("year", "lat", "lon"),
        "ensemble standard deviation of {flux}",
        "realization: standard_deviation",
    ),
    "sd_map": FluxKind(
        "_sd_map", ("lat", "lon"), "standard deviation across replicates of the time-mean of {flux}"
    ),
    "median": FluxKind(
        "_median", ("lat", "lon"), "median across replicates of the time-mean of {flux}"
    ),
    "mad": FluxKind(
        "_mad",
        ("lat", "lon"),
        "median absolute deviation (unscaled) across replicates of the time-mean of {flux}",
    ),
    "q025": FluxKind(
        "_q025", ("lat", "lon"), "2.5 % quantile across replicates of the time-mean of {flux}"
    ),
    "q975": FluxKind(
        "_q975", ("lat", "lon"), "97.5 % quantile across replicates of the time-mean of {flux}"
    ),
    "cv": FluxKind(
        "_cv",
        ("lat", "lon"),
        "coefficient of variation across replicates of the time-mean of {flux}",
        units="%",
    ),
    "replicate_map": FluxKind(
        "_replicate_map", ("replicate", "cell"), "per-replicate time-mean {flux}"
    ),
    "replicate_total": FluxKind(
        "_replicate_total",
        ("replicate", "year"),
        "per-replicate global total {flux}",
        units=TOTAL_UNITS,
    ),
    "pred_replicate_mean": FluxKind(
        "_pred_replicate_mean",
        ("replicate", "cell"),
        "per-replicate conditional mean of the quantile-regression-forest predictive "
        "distribution (time mean) of {flux}",
    ),
    "pred_replicate_second": FluxKind(
        "_pred_replicate_second",
        ("replicate", "cell"),
        "per-replicate conditional second moment E[Y^2] of the predictive distribution "
        "(time mean) of {flux}",
        units="g2 m-4 yr-2",
    ),
    "pred_mean": FluxKind(
        "_pred_mean",
        ("lat", "lon"),
        "mean of the predictive distribution of {flux} (equal mixture over replicates and years)",
        "time: mean realization: mean",
    ),
    "pred_sd": FluxKind(
        "_pred_sd",
        ("lat", "lon"),
        "standard deviation of the predictive distribution of {flux} (equal mixture over "
        "replicates and years; not the replicate spread)",
        "time: mean realization: mean",
    ),
    **{
        kind: FluxKind(
            f"_{kind}",
            ("lat", "lon"),
            f"{text} of the predictive distribution of {{flux}} (equal mixture over replicates "
            "and years, exact from the pooled quantile-regression-forest weights; not the "
            "replicate spread)",
            "time: mean realization: mean",
        )
        for kind, text in (
            ("pred_median", "median"),
            ("pred_mad", "median absolute deviation from the median (unscaled)"),
            ("pred_mad_scaled", "1.4826 x the unscaled median absolute deviation (R's mad())"),
            ("pred_q025", "2.5 % quantile"),
            ("pred_q05", "5 % quantile"),
            ("pred_q25", "25 % quantile"),
            ("pred_q75", "75 % quantile"),
            ("pred_q95", "95 % quantile"),
            ("pred_q975", "97.5 % quantile"),
        )
    },
}
"""Every per-flux variable of the store, by kind."""

PREDICTIVE_QUANTILE_LEVELS: dict[str, float] = {
    "pred_q025": 0.025,
    "pred_q05": 0.05,
    "pred_q25": 0.25,
    "pred_q75": 0.75,
    "pred_q95": 0.95,
    "pred_q975": 0.975,
}
"""Quantile kinds of a ``predictive = "quantiles"`` run -> their levels."""

PREDICTIVE_ORDER_KINDS: tuple[str, ...] = (
    "pred_median",
    "pred_mad",
    "pred_mad_scaled",
    *PREDICTIVE_QUANTILE_LEVELS,
)
"""The (lat, lon) order statistics of the pooled predictive distribution that a
``predictive = "quantiles"`` run writes (per flux of :data:`PREDICTIVE_FLUXES`)."""

PREDICTIVE_FLUXES: tuple[str, ...] = TRAINED_FLUXES
"""Fluxes with a predictive distribution (each forest's own): AR = SR - HR has none, since two
forests trained on different records give no joint distribution (docs/predictive.md)."""

CALIBRATION = "calibration"
CALIBRATION_METRICS: tuple[str, ...] = (
    "coverage_0.5",
    "coverage_0.9",
    "coverage_0.95",
    "crps",
    *(f"pit_{i}" for i in range(10)),
)
"""Calibration of each replicate's predictive distribution on its held-out records: coverage
of the central 50/90/95 % intervals, mean CRPS (g m-2 yr-1), the 10-bin PIT histogram."""

REPLICATE_STATS: dict[str, str] = {
    "sd": "sd_map",
    "median": "median",
    "mad": "mad",
    "q025": "q025",
    "q975": "q975",
    "cv": "cv",
}
"""Across-replicate statistic of the time-mean map (``replicate_summary`` key) -> its kind."""


def flux_var(flux: str, kind: str) -> str:
    """The store variable name of ``kind`` (a key of :data:`FLUX_KINDS`) for ``flux``."""
    if flux not in OUTPUT_FLUXES:
        raise KeyError(f"unknown flux {flux!r}; expected one of {OUTPUT_FLUXES}")
    return f"{flux}{FLUX_KINDS[kind].suffix}"


def flux_attrs(flux: str, kind: str) -> dict[str, str]:
    """The CF attributes (units, long_name, cell_methods, standard_name) of a flux variable."""
    k = FLUX_KINDS[kind]
    attrs = {"units": k.units or FLUX_UNITS}
    if k.standard_name and flux in FLUX_STANDARD_NAME:
        attrs["standard_name"] = FLUX_STANDARD_NAME[flux]
    attrs["long_name"] = k.long.format(flux=FLUX_LONG[flux])
    if k.cell_methods:
        attrs["cell_methods"] = k.cell_methods
    return attrs


COORD_ATTRS: dict[str, dict[str, str]] = {
    "lat": {
        "units": "degrees_north",
        "standard_name": "latitude",
        "long_name": "latitude of the cell centre",
        "axis": "Y",
        "bounds": "lat_bnds",
    },
    "lon": {
        "units": "degrees_east",
        "standard_name": "longitude",
        "long_name": "longitude of the cell centre",
        "axis": "X",
        "bounds": "lon_bnds",
    },
    "year": {"long_name": "calendar year of the drivers (time axis of the per cell-year fields)"},
    "replicate": {"long_name": "replicate model index", "standard_name": "realization"},
    "cell": {"long_name": "prediction-domain cell (position in cell_ilat, cell_ilon)"},
    "flux": {"long_name": "validated flux"},
    "metric": {"long_name": "validation metric (r2: 1; rmse: g m-2 yr-1; r: 1)"},
}
"""CF attributes of every coordinate (CF-1.8 sections 4 and 7.1), written at creation and
again at finalisation (appending rewrites the coordinates)."""
LAND_MEAN = "area: mean where land"
"""Fluxes are per m2 of land: a total is flux x cell_area x land_fraction."""
STAT_METHODS = {
    "sd_map": "time: mean realization: standard_deviation",
    "median": "time: mean realization: median",
}
"""CF cell_methods of the across-replicate statistics that have a CF method name (MAD,
quantiles and CV have none: ``time: mean`` only, their long names say the rest)."""


def gridded_attrs(attrs: dict[str, str], *, kind: str | None = None) -> dict[str, str]:
    """``attrs`` of a (year,) lat, lon flux field with ``cell_measures`` and a ``cell_methods``
    that starts with :data:`LAND_MEAN` (CF 7.2, 7.3)."""
    methods = attrs.get("cell_methods") or STAT_METHODS.get(kind or "", "time: mean")
    return {
        **attrs,
        "cell_measures": f"area: {CELL_AREA}",
        "cell_methods": f"{LAND_MEAN} {methods}",
    }
