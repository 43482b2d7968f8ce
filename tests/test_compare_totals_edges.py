"""Global totals of the comparison (``srgpu.analysis.compare.scores.global_totals``) on a
hand-built four-cell :class:`Comparison`: every expected number is summed by hand from the cell
areas, land fractions and fluxes written below (issue 21: survivors of the mutation run of the
comparison's totals)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.analysis.compare.models import ModelOutput
from srgpu.analysis.compare.periods import Period
from srgpu.analysis.compare.scores import Comparison, global_totals

# one row of four cells; areas in m2, chosen so that the Pg totals are round numbers
AREA = np.array([[1e12, 2e12, 3e12, 4e12]])
LAND = np.array([[1.0, 0.5, 0.25, 1.0]])
DOMAIN = np.array([[1, 1, 1, 0]], dtype=np.int8)  # the last cell is outside the domain
COORDS = {"lat": [10.0], "lon": [0.0, 1.0, 2.0, 3.0]}


def _field(values) -> xr.DataArray:
    return xr.DataArray(np.asarray(values, dtype=float).reshape(1, 4), dims=("lat", "lon"))


def _store(*, totals: dict[str, xr.DataArray] | None = None, years=(2000, 2001)) -> xr.Dataset:
    ds = xr.Dataset(
        {
            "cell_area": (("lat", "lon"), AREA),
            "land_fraction": (("lat", "lon"), LAND),
            "domain": (("lat", "lon"), DOMAIN),
            "SR": (("lat", "lon"), np.ones((1, 4))),
            "HR": (("lat", "lon"), np.ones((1, 4))),
        },
        coords={**COORDS, "year": list(years)},
    )
    for name, da in (totals or {}).items():
        ds[name] = da
    return ds


def _model(name: str, variables: dict[str, xr.DataArray]) -> ModelOutput:
    data = xr.Dataset(
        {**variables, "cell_area": (("lat", "lon"), AREA), "land_fraction": (("lat", "lon"), LAND)},
        coords=COORDS,
    )
    return ModelOutput(name=name, data=data)


def _row(df, source, flux):
    sel = df[(df["source"] == source) & (df["flux"] == flux)]
    assert len(sel) == 1, (source, flux, df[["source", "flux"]])
    return sel.iloc[0]


def test_domain_total_skips_cells_without_a_prediction_and_cells_outside_the_domain():
    """RF SR map [100, NaN, 200, 1000] (g m-2 yr-1): the NaN cell inside the domain counts as
    nothing (not as a flux of 1), and the cell outside the domain (weight 0) counts as nothing
    even though the map given is not masked there. By hand:
    100 x 1e12 x 1 + 200 x 3e12 x 0.25 = 2.5e14 g = 0.25 Pg."""
    store = _store()
    cmp = Comparison(
        store=store,
        models={},
        maps={},
        means={},
        periods={},
        period=Period(years=(2000, 2001), ensemble_years=(2000, 2001)),
        rf_maps={"SR": _field([100.0, np.nan, 200.0, 1000.0]), "HR": _field([0, 0, 0, 0])},
    )
    df = global_totals(cmp)
    sr = _row(df, "RF", "SR")
    assert sr["total_domain_pg"] == pytest.approx(0.25, rel=1e-14)
    assert sr["total_pg"] == pytest.approx(0.25, rel=1e-14)  # no replicate totals: the map's
    assert np.isnan(sr["rf_mean"])


def test_replicate_totals_without_a_year_axis_and_a_sub_period():
    """Per-replicate totals stored as time means (dims (replicate,) only): a sub-period cannot
    select years from them, so the band is over the values as they are: mean of [1, 2, 3, 6]
    = 3, q025 = 1 + 0.075 x 1 = 1.075, q975 = 3 + 0.925 x 3 = 5.775 (linear interpolation)."""
    reps = xr.DataArray([1.0, 2.0, 3.0, 6.0], dims=("replicate",))
    store = _store(totals={"SR_replicate_total": reps})
    for period in (
        Period(years=(2001,), ensemble_years=(2000, 2001)),  # a sub-period
        Period(years=(2000, 2001), ensemble_years=(2000, 2001)),  # the full period
    ):
        cmp = Comparison(
            store=store,
            models={},
            maps={},
            means={},
            periods={},
            period=period,
            rf_maps={"SR": _field([1, 1, 1, np.nan]), "HR": _field([1, 1, 1, np.nan])},
        )
        sr = _row(global_totals(cmp), "RF", "SR")
        assert sr["rf_mean"] == sr["total_pg"] == 3.0
        assert sr["rf_q025"] == pytest.approx(1.075, rel=1e-14)
        assert sr["rf_q975"] == pytest.approx(5.775, rel=1e-14)
        assert sr["rf_sd"] == pytest.approx(np.sqrt(14.0 / 3.0), rel=1e-14)


def test_float32_replicate_totals_are_averaged_in_float64():
    """A store written with float32 replicate totals (one year): the RF mean is the float64
    mean of the stored float32 numbers (by math.fsum), not a float32 mean (which differs by
    ~1e-8 relative on these 1000 values)."""
    import math

    rng = np.random.default_rng(3)
    values = rng.uniform(50.0, 100.0, size=(1000, 1)).astype(np.float32)
    reps = xr.DataArray(values, dims=("replicate", "year"))
    store = _store(totals={"SR_replicate_total": reps}, years=(2000,))
    cmp = Comparison(
        store=store,
        models={},
        maps={},
        means={},
        periods={},
        period=Period(years=(2000,), ensemble_years=(2000,)),
        rf_maps={"SR": _field([1, 1, 1, np.nan]), "HR": _field([1, 1, 1, np.nan])},
    )
    sr = _row(global_totals(cmp), "RF", "SR")
    exact = math.fsum(float(v) for v in values[:, 0]) / 1000
    assert float(np.float32(exact)) != pytest.approx(exact, rel=1e-11)  # the case is sharp
    assert sr["rf_mean"] == pytest.approx(exact, rel=1e-13)


def test_a_model_without_a_flux_does_not_hide_the_next_model_and_fixed_fields_are_labelled():
    """Two models: "A" has no HR (rows for SR only), "B" has HR and no time axis (its period
    is "fixed"); "A" has years (its period is the comparison's label). B's HR native total by
    hand: 10 x (1e12 + 1e12 + 0.75e12 + 4e12) g = 6.75e13 g = 0.0675 Pg (every land cell of
    its own grid counts); on the ensemble domain: means [10, 10, 10, NaN] -> 0.0275 Pg."""
    store = _store()
    years = xr.DataArray([2000, 2001], dims="year")
    a_sr = xr.DataArray(
        np.full((2, 1, 4), 4.0), dims=("year", "lat", "lon"), coords={"year": years}
    )
    a = _model("A", {"SR": a_sr})
    b = _model("B", {"HR": _field([10.0, 10.0, 10.0, 10.0])})
    masked = [10.0, 10.0, 10.0, np.nan]
    cmp = Comparison(
        store=store,
        models={"A": a, "B": b},
        maps={},
        means={
            "A": xr.Dataset({"SR": _field([4.0, 4.0, 4.0, np.nan])}),
            "B": xr.Dataset({"HR": _field(masked)}),
        },
        periods={"A": (2000, 2001), "B": (0, 0)},
        period=Period(years=(2000, 2001), ensemble_years=(2000, 2001)),
        rf_maps={"SR": _field([1, 1, 1, np.nan]), "HR": _field([1, 1, 1, np.nan])},
    )
    df = global_totals(cmp)
    assert sorted(df[df["source"] == "A"]["flux"]) == ["SR"]
    b_hr = _row(df, "B", "HR")
    assert b_hr["period"] == "fixed"
    assert b_hr["total_pg"] == pytest.approx(0.0675, rel=1e-14)
    assert b_hr["total_domain_pg"] == pytest.approx(0.0275, rel=1e-14)
    a_sr = _row(df, "A", "SR")
    assert a_sr["period"] == "2000-2001"
    # 4 x (1 + 1 + 0.75 + 4) e12 g = 0.027 Pg on A's own grid
    assert a_sr["total_pg"] == pytest.approx(0.027, rel=1e-14)
