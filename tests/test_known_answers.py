"""Numbers checked against answers computed independently of the code under test (issue 21).

- the pipeline's ten predictors against the demo world's own formulas (``demo._annual_predictors``,
  a separate numpy implementation of docs/predictors.md), and the growing season's ``> 0 degC``
  on a hand case with months at exactly 0 degC;
- the comparison's totals against hand-weighted sums (cell area on the sphere by hand x land
  fraction) and xarray's own ``weighted`` sums;
- the ensemble's drawn training sets against the closed-form inclusion probabilities of
  successive sampling (Rosen's approximation), which area-weighted stratified draws must follow
  and unstratified draws do not;
- stock and flux annualisation in 360_day, noleap and all_leap calendars by hand.

Every tolerance is the measured error (noted beside it) with a stated margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import brentq

from srgpu.analysis.compare.models import annualise
from srgpu.data.demo import make_demo_world, true_flux
from srgpu.data.predictors import build_predictors

R_EARTH = 6_371_000.0  # m, the sphere of docs/statistics.md
NAMES_ALL = ("MAT", "Prec", "RH", "LAI", "PAR", "SOC", "Prec_GS", "RH_GS", "LAI_GS", "PAR_GS")

# float32 outputs of float64 sums: half an ulp of float32 is 2**-24 = 5.96e-8 relative.
# Measured max relative error against the demo's float64 formulas: 5.94e-8 (Prec, PAR, RH,
# LAI and the GS predictors), so 1.5e-7 is the measured error x 2.5.
RTOL_F32 = 1.5e-7
# MAT is a difference (K - 273.15) near 0 degC: measured max absolute error 8.0e-6 degC; x 2.5.
ATOL_MAT = 2e-5


def sphere_area(lat_edges: np.ndarray, lon_edges: np.ndarray) -> np.ndarray:
    """Cell areas by hand: R^2 x dlon x (sin(lat_n) - sin(lat_s)) (m2), shape (lat, lon)."""
    dsin = np.diff(np.sin(np.radians(lat_edges)))
    dlon = np.radians(np.diff(lon_edges))
    return R_EARTH**2 * dsin[:, None] * dlon[None, :]


# ----------------------------------------------------------------------------- predictors


@pytest.fixture(scope="module")
def demo():
    world = make_demo_world(seed=0)
    pred = build_predictors(
        drivers=[world.drivers], vegetation=world.vegetation, names=NAMES_ALL, par_fraction=0.48
    )
    return world, pred


def test_pipeline_predictors_equal_the_demo_formulas(demo):
    """Every predictor equals the demo world's own day-weighted formulas (a leap year, 2004,
    is in the demo period, so day weights matter) within float32 rounding; so do the
    growing-season month counts, the static fields and the true fluxes computed from them.

    One test on purpose: mutmut (tests/mutation) maps a function to the test that first
    reaches it, and the module fixture reaches everything in its first test."""
    world, pred = demo
    for name in NAMES_ALL:
        got = pred[name].values.astype(np.float64)
        want = world.truth.predictors[name].values
        assert got.shape == want.shape, name
        defined = np.isfinite(want)
        if name in ("RH_GS", "LAI_GS"):
            # the demo leaves GS means NaN without a GS month; the pipeline takes the annual mean
            no_gs = np.isfinite(got) & ~defined
            assert no_gs.sum() > 100  # measured: 1893 cell-years without a growing season
            base = pred[name[:-3]].values[no_gs]
            np.testing.assert_array_equal(got[no_gs], base, err_msg=name)
        else:
            np.testing.assert_array_equal(np.isfinite(got), defined, err_msg=name)
        if name == "MAT":
            np.testing.assert_allclose(got[defined], want[defined], rtol=0, atol=ATOL_MAT)
        else:
            np.testing.assert_allclose(
                got[defined], want[defined], rtol=RTOL_F32, atol=0, err_msg=name
            )

    # growing-season month counts and the static fields
    tas = world.drivers["tas"].values.reshape(-1, 12, *world.drivers["tas"].shape[1:])
    gs = (tas > 273.15).sum(axis=1)
    land = np.isfinite(tas).all(axis=1)
    np.testing.assert_array_equal(pred["gs_months"].values, np.where(land, gs, -1))
    # a world with every GS length 0..12 (measured: all thirteen occur)
    assert set(np.unique(gs[land])) == set(range(13))
    edges_lat = np.linspace(-90.0, 90.0, pred.sizes["lat"] + 1)
    edges_lon = np.linspace(-180.0, 180.0, pred.sizes["lon"] + 1)
    np.testing.assert_allclose(
        pred["cell_area"].values, sphere_area(edges_lat, edges_lon), rtol=1e-12
    )
    np.testing.assert_array_equal(pred["land_fraction"].values, world.truth.land_fraction.values)
    np.testing.assert_array_equal(pred["domain"].values, world.truth.vegetated.values)

    # true_flux(pipeline predictors) reproduces the demo's noise-free fields: measured max
    # relative difference 3.8e-7 (SR) and 4.6e-7 (HR), float32 inputs through exponentials
    for flux, truth in (("SR", world.truth.sr), ("HR", world.truth.hr)):
        ok = np.isfinite(truth.values)
        np.testing.assert_allclose(true_flux(flux, pred)[ok], truth.values[ok], rtol=1e-6)


def _drivers_at_zero_degc(calendar: str = "noleap") -> xr.Dataset:
    """A 2 x 2 grid of identical cells, one year: tas exactly 0 degC in January-March, 10 degC
    April-November, 0.5 degC in December; pr 1 mm/day in January-March, 2 mm/day after; hurs 90 % in
    January-March, then 40 + month^2 / 4 %; rsds 100 W m-2; lai 0.5 then month^2 / 40 (not
    symmetric about the season's middle, so a plain mean differs from the day-weighted one)."""
    time = xr.date_range("2001-01-01", periods=12, freq="MS", calendar=calendar, use_cftime=True)
    month = np.arange(1, 13)
    tas = np.where(month <= 3, 0.0, np.where(month == 12, 0.5, 10.0))
    pr = np.where(month <= 3, 1.0, 2.0) / 86400.0  # kg m-2 s-1
    hurs = np.where(month <= 3, 90.0, 40.0 + month**2 / 4.0)
    lai = np.where(month <= 3, 0.5, month**2 / 40.0)

    def cube(v):
        a = np.asarray(v, dtype=np.float64)[:, None, None]
        return (("time", "lat", "lon"), np.broadcast_to(a, (12, 2, 2)).copy())

    return xr.Dataset(
        {
            "tas": (*cube(tas), {"units": "degC", "standard_name": "air_temperature"}),
            "pr": (*cube(pr), {"units": "kg m-2 s-1"}),
            "hurs": (*cube(hurs), {"units": "%"}),
            "lai": (*cube(lai), {"units": "1"}),
            "rsds": (*cube(np.full(12, 100.0)), {"units": "W m-2"}),
        },
        coords={
            "time": time,
            "lat": ("lat", [45.25, 45.75], {"units": "degrees_north"}),
            "lon": ("lon", [7.25, 7.75], {"units": "degrees_east"}),
        },
    )


@pytest.mark.parametrize("calendar", ["noleap", "360_day"])
def test_growing_season_is_strictly_above_zero_degc(calendar):
    """Months at exactly 0 degC are outside the growing season (``tas > 0``, not ``>= 0``);
    GS means are day-weighted, by hand."""
    ds = build_predictors(
        drivers=[_drivers_at_zero_degc(calendar)],
        vegetation=None,
        names=("MAT", "Prec_GS", "RH_GS", "LAI_GS", "PAR_GS"),
    ).isel(lat=0, lon=0)
    if calendar == "noleap":
        days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    else:
        days = np.full(12, 30.0)
    month = np.arange(1, 13)
    gs = month >= 4
    assert int(ds["gs_months"].values.item()) == 9
    tas = np.where(month <= 3, 0.0, np.where(month == 12, 0.5, 10.0))
    assert ds["MAT"].item() == pytest.approx((tas * days).sum() / days.sum(), rel=1e-6)
    assert ds["Prec_GS"].item() == pytest.approx(2.0 * days[gs].sum(), rel=1e-6)
    rh = 40.0 + month**2 / 4.0
    assert ds["RH_GS"].item() == pytest.approx((rh * days)[gs].sum() / days[gs].sum(), rel=1e-6)
    if calendar == "noleap":  # the day weights matter here
        assert abs((rh * days)[gs].sum() / days[gs].sum() - rh[gs].mean()) > 1e-3
    lai = month**2 / 40.0
    assert ds["LAI_GS"].item() == pytest.approx((lai * days)[gs].sum() / days[gs].sum(), rel=1e-6)
    assert ds["PAR_GS"].item() == pytest.approx(
        0.48 * 100.0 * 86400.0 * days[gs].sum() / 1e6, rel=1e-6
    )


# ----------------------------------------------------------------------------- comparison totals


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    from srgpu.analysis.compare import compare
    from tests.test_compare_synthetic import write_model, write_store

    tmp = tmp_path_factory.mktemp("cmp-known")
    store_path = write_store(tmp / "ensemble.zarr")
    store = xr.open_zarr(store_path, consolidated=False).load()
    model_dir = write_model(tmp / "M", store, scale=1.2, name="M", variables=("rh", "raRoot"))
    tables = compare(store_path, {"M": model_dir}).tables
    return store, model_dir, tables


def test_comparison_totals_by_hand(comparison):
    """The RF row's domain total is sum(F x area x land fraction) over the domain, with the area
    by hand and with xarray's weighted sum; the land fraction (0.5-1 on land here) matters:
    without it the total is 20-50 % higher. The model's native total by hand from its file.

    One test on purpose (see test_pipeline_predictors_equal_the_demo_formulas)."""
    store, model_dir, tables = comparison
    df = tables["global_totals"]
    lat, lon = store["lat"].values, store["lon"].values
    area = sphere_area(np.append(lat - 5.0, 90.0), np.append(lon - 5.0, 180.0))
    land = store["land_fraction"].values
    dom = store["domain"].values.astype(bool)
    assert 0.5 <= land[dom].min() and land[dom].mean() < 0.9
    for flux in ("SR", "HR", "AR"):
        row = df[(df["source"] == "RF") & (df["flux"] == flux)].iloc[0]
        field = store[flux].values
        by_hand = np.nansum(np.where(dom, field * area * land, 0.0)) / 1e15
        w = xr.DataArray(np.where(dom, area * land, 0.0), dims=("lat", "lon"))
        by_xarray = float(store[flux].fillna(0.0).weighted(w).sum()) / 1e15
        assert by_hand == pytest.approx(by_xarray, rel=1e-12)
        # measured relative difference 0 to 2e-16 (the same sum in another order)
        assert row["total_domain_pg"] == pytest.approx(by_hand, rel=1e-12)
        no_land = np.nansum(np.where(dom, field * area, 0.0)) / 1e15
        assert abs(no_land / by_hand - 1) > 0.1
        # the RF total is the mean of the replicate totals (the fixture's offsets have mean 0)
        reps = store[f"{flux}_replicate_total"].values.mean(axis=1)
        assert row["total_pg"] == pytest.approx(reps.mean(), rel=1e-12)
        assert row["rf_q025"] == pytest.approx(np.quantile(reps, 0.025), rel=1e-12)
        assert row["rf_q975"] == pytest.approx(np.quantile(reps, 0.975), rel=1e-12)
        assert row["rf_sd"] == pytest.approx(np.std(reps, ddof=1), rel=1e-12)
    # the model's native total (its own 5-degree grid, its own sftlf in %) by hand: the noleap
    # rate x seconds of each month x area x sftlf / 100, averaged over the years
    with xr.open_dataset(model_dir / "M_rh.nc", decode_times=False) as rh_ds:
        rh = rh_ds["rh"].values.astype(np.float64)  # kg m-2 s-1, (time, lat, lon)
        mlat, mlon = rh_ds["lat"].values, rh_ds["lon"].values
    with xr.open_dataset(model_dir / "M_sftlf.nc") as lf:
        land = lf["sftlf"].values / 100.0
    area = sphere_area(np.append(mlat - 2.5, 90.0), np.append(mlon - 2.5, 360.0))
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    per_year = []
    for y in range(rh.shape[0] // 12):
        grams = (rh[12 * y : 12 * y + 12] * days[:, None, None] * 86400.0).sum(axis=0) * 1000.0
        per_year.append(np.nansum(grams * area * land) / 1e15)
    row = df[(df["source"] == "M") & (df["flux"] == "HR")].iloc[0]
    # float32 model files: measured relative difference ~1e-8 (sums of float32 rates)
    assert row["total_pg"] == pytest.approx(np.mean(per_year), rel=1e-6)
    rf = df[(df["source"] == "RF") & (df["flux"] == "HR")].iloc[0]
    assert row["diff_pct"] == pytest.approx(100.0 * (row["total_pg"] / rf["rf_mean"] - 1), rel=1e-9)
    # on the ensemble grid and domain the model (1.2 x the store, nested cells) is 1.2 x RF
    for flux in ("SR", "HR", "AR"):
        m = df[(df["source"] == "M") & (df["flux"] == flux)].iloc[0]
        r = df[(df["source"] == "RF") & (df["flux"] == flux)].iloc[0]
        assert m["total_domain_pg"] == pytest.approx(1.2 * r["total_domain_pg"], rel=1e-6)
        assert not bool(m["in_band"]) and bool(r["in_band"])


# ----------------------------------------------------------------------------- annualisation


MONTH_DAYS = {
    "noleap": [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
    "all_leap": [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31],
    "360_day": [30] * 12,
}


@pytest.mark.parametrize("calendar", list(MONTH_DAYS))
def test_stock_and_flux_annualisation_by_hand(calendar):
    """Two years of monthly values 1..24 (a stock, kg m-2; a rate, per second): the stock's
    year value is sum(d x v) / sum(d), the flux's sum(d x 86400 x v), d the calendar's days."""
    time = xr.date_range("2001-01-01", periods=24, freq="MS", calendar=calendar, use_cftime=True)
    v = np.arange(1.0, 25.0)
    da = xr.DataArray(v, dims="time", coords={"time": time})
    d = np.array(MONTH_DAYS[calendar] * 2, dtype=float)
    stock = annualise(da, kind="stock")
    flux = annualise(da, kind="flux")
    assert list(stock["year"].values) == [2001, 2002]
    for k in range(2):
        sl = slice(12 * k, 12 * k + 12)
        assert stock.values[k] == pytest.approx((d[sl] * v[sl]).sum() / d[sl].sum(), rel=1e-13)
        assert flux.values[k] == pytest.approx((d[sl] * v[sl]).sum() * 86400.0, rel=1e-13)
    if calendar != "360_day":  # a day-weighted mean is not the plain mean of the months
        assert abs(stock.values[0] - v[:12].mean()) > 1e-3


def test_annual_stock_values_pass_through():
    """Annual stock values are the year's value (not multiplied by the days of the year)."""
    time = xr.date_range("2001-01-01", periods=3, freq="YS", calendar="noleap", use_cftime=True)
    da = xr.DataArray([5.0, 6.0, 7.0], dims="time", coords={"time": time})
    np.testing.assert_allclose(annualise(da, kind="stock").values, [5.0, 6.0, 7.0], rtol=1e-15)


# ----------------------------------------------------------------------------- ensemble draws


def rosen_expected_counts(bins: np.ndarray, weights: dict, *, fraction: float) -> np.ndarray:
    """Expected training records per bin (0..5) of successive sampling without replacement with
    per-record probability weight[bin] / count[bin]: Rosen's approximation of the inclusion
    probability, pi_i = 1 - exp(-lam p_i) with sum(pi) = n. Independent of srgpu's sampling."""
    counts = np.bincount(bins, minlength=6)
    p = np.array([weights.get(b, 0.0) / counts[b] if counts[b] else 0.0 for b in range(6)])
    p_rec = p[bins]
    n = round(fraction * int((p_rec > 0).sum()))
    lam = brentq(lambda x: (1.0 - np.exp(-x * p_rec)).sum() - n, 1e-12, 1e12)
    return counts * (1.0 - np.exp(-lam * p))


@pytest.fixture(scope="module")
def tiny_inputs():
    from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
    from srgpu.data.inputs import prepare_inputs

    cfg = EnsembleConfig(
        replicates=4,
        batch_size=2,
        forest=ForestConfig(trees=5),
        predict=PredictConfig(engine="sklearn"),
    )
    return cfg, prepare_inputs(cfg)


@pytest.mark.parametrize("sampling", ["area", "equal"])
def test_ensemble_draws_follow_the_stratified_probabilities(tiny_inputs, sampling):
    """The training sets the ensemble draws (train_batch, as run_ensemble does), averaged over
    the replicates, match the per-bin counts expected of the chosen scheme and not those of the
    other scheme or of unstratified draws (0.8 x the bin's records).

    Bin weights by hand: ``area`` = the bins' share of vegetated land area (on the sphere, by
    hand from the bins' cell fractions), ``equal`` = 1 each. Measured on these 12 replicates:
    largest deviation from the expected count 1.9 records (0.2-1.9 over the four cases),
    against separations of 23-49 records (SR) and 9-14 (HR) from the other scheme or from
    unstratified draws; tolerance 5 records (the worst measured deviation x 2.6)."""
    from srgpu.run.batch import batch_specs, train_batch

    cfg0, inputs = tiny_inputs
    cfg = cfg0.replace(sampling=sampling, replicates=12, batch_size=12)
    truth = inputs.truth
    bfrac = inputs.predictors["bin_fraction"].values  # (bin, lat, lon), share of the cell
    by_bin = {b: float((bfrac[b - 1] * truth.cell_area.values).sum()) for b in range(1, 6)}
    total = sum(by_bin.values())
    shares = {b: v / total for b, v in by_bin.items()}
    for b in range(1, 6):
        assert inputs.area_shares[b] == pytest.approx(shares[b], rel=1e-6)
    weights = shares if sampling == "area" else dict.fromkeys(range(1, 6), 1.0)
    other = dict.fromkeys(range(1, 6), 1.0) if sampling == "area" else shares
    (spec,) = batch_specs(cfg.n_replicates, cfg.batch_size)
    trained = train_batch(spec, inputs, cfg)
    for flux in ("SR", "HR"):
        bins = inputs.fluxes[flux].bins
        counts = np.mean(
            [np.bincount(bins[split.train], minlength=6) for _, split in trained[flux]], axis=0
        )
        expected = rosen_expected_counts(bins, weights, fraction=cfg.train_fraction)
        wrong = rosen_expected_counts(bins, other, fraction=cfg.train_fraction)
        unstratified = cfg.train_fraction * np.bincount(bins, minlength=6)
        assert np.abs(counts - expected).max() < 5, (flux, counts, expected)
        separation = 14 if flux == "SR" else 7  # measured >= 23 (SR), >= 8.6 (HR)
        assert np.abs(counts - wrong).max() > separation, (flux, counts, wrong)
        assert np.abs(counts - unstratified).max() > separation, (flux, counts, unstratified)
        assert counts[0] == 0  # records without a bin are never drawn
