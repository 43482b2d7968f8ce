"""Tests written to kill the mutants that survived the rest of the suite (issue 21, deliver 4).

Each test states the behaviour a surviving mutant changed; the mutation run and its results are
in ``tests/mutation/`` and ``docs/testing.md``. Error paths are checked by their full message
(the CLI prints exactly this one line), numerical paths by known answers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgpu.errors import InputError
from srgpu.run import stats

# ============================================================================ srgpu.run.stats


def test_cell_area_bounds_errors_name_field_value_and_expectation():
    ok = np.array([[0.0, 10.0]])
    with pytest.raises(InputError) as e:
        stats.cell_area_m2(np.zeros((3, 3)), ok)
    assert str(e.value) == (
        "field 'lat_bounds': cell bounds have the wrong shape (got (3, 3)); expected (n, 2)"
    )
    with pytest.raises(InputError) as e:
        stats.cell_area_m2(ok, np.zeros(4))
    assert str(e.value) == (
        "field 'lon_bounds': cell bounds have the wrong shape (got (4,)); expected (n, 2)"
    )
    with pytest.raises(InputError) as e:
        stats.cell_area_m2(np.array([[0.0, 90.5]]), ok)
    assert str(e.value) == (
        "field 'lat_bounds': cell bounds out of range or NaN; expected degrees within ±90.0"
    )
    with pytest.raises(InputError) as e:
        stats.cell_area_m2(ok, np.array([[0.0, 720.5]]))
    assert str(e.value) == (
        "field 'lon_bounds': cell bounds out of range or NaN; expected degrees within ±720.0"
    )
    with pytest.raises(InputError, match="out of range or NaN"):
        stats.cell_area_m2(np.array([[0.0, np.nan]]), ok)
    with pytest.raises(InputError) as e:
        stats.cell_area_m2(ok, np.array([[0.0, 360.5]]))
    assert str(e.value) == "field 'lon_bounds': a cell is wider than 360°; expected width <= 360"


def test_cell_area_limits_are_inclusive():
    """Bounds of exactly ±90 (lat), ±720 (lon) and a 360-degree-wide cell are valid."""
    r = 6_371_000.0
    a = stats.cell_area_m2(np.array([[-90.0, 90.0]]), np.array([[360.0, 720.0]]), radius_m=r)
    np.testing.assert_allclose(a, [[4 * math.pi * r * r]], rtol=1e-15)
    a = stats.cell_area_m2(np.array([[0.0, 90.0]]), np.array([[-720.0, -630.0]]), radius_m=r)
    np.testing.assert_allclose(a, [[r * r * (math.pi / 2)]], rtol=1e-15)
    assert stats.cell_area_m2(np.zeros((0, 2)), np.zeros((0, 2))).shape == (0, 0)


def test_bounds_from_centres_clips_each_side_alone():
    c = np.array([-89.0, 0.0, 89.0])
    np.testing.assert_array_equal(
        stats.bounds_from_centres(c, lower=-90.0), [[-90.0, -44.5], [-44.5, 44.5], [44.5, 133.5]]
    )
    np.testing.assert_array_equal(
        stats.bounds_from_centres(c, upper=90.0), [[-133.5, -44.5], [-44.5, 44.5], [44.5, 90.0]]
    )
    np.testing.assert_array_equal(
        stats.bounds_from_centres(c, lower=-90.0, upper=90.0),
        [[-90.0, -44.5], [-44.5, 44.5], [44.5, 90.0]],
    )
    np.testing.assert_array_equal(stats.bounds_from_centres(np.array([5.0])), [[4.5, 5.5]])


def test_time_mean_per_replicate_edges():
    x = np.arange(12.0, dtype=np.float32).reshape(2, 6)
    # 2-D, year-major rows: n_years = 1 is valid (the mean of one year is the year)
    np.testing.assert_array_equal(stats.time_mean_per_replicate(x, n_years=1), x)
    got = stats.time_mean_per_replicate(x, n_years=2)
    np.testing.assert_array_equal(got, [[1.5, 2.5, 3.5], [7.5, 8.5, 9.5]])
    assert got.dtype == np.float32
    for bad in (None, 0, -2, 4):
        with pytest.raises(ValueError) as e:
            stats.time_mean_per_replicate(x, n_years=bad)
        assert str(e.value) == (
            f"a 2-D block of shape (2, 6) needs n_years dividing its second axis, got n_years={bad}"
        )
    cube = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(stats.time_mean_per_replicate(cube, n_years=3), cube.mean(1))
    with pytest.raises(ValueError) as e:
        stats.time_mean_per_replicate(cube, n_years=2)
    assert str(e.value) == "n_years=2 does not match axis 1 of shape (2, 3, 4)"
    with pytest.raises(ValueError) as e:
        stats.time_mean_per_replicate(np.zeros(3))
    assert str(e.value) == "expected (b, n_years, n_cells) or (b, rows), got shape (3,)"
    # no year: NaN of shape (b, n_cells) in the input's floating dtype
    empty = stats.time_mean_per_replicate(np.zeros((2, 0, 5), dtype=np.float32))
    assert empty.shape == (2, 5) and empty.dtype == np.float32 and np.isnan(empty).all()
    ints = stats.time_mean_per_replicate(np.array([[[1, 2]], [[3, 5]]]))  # one year, ints
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints, [[1.0, 2.0], [3.0, 5.0]])


def test_quantiles_interpolate_from_the_nearer_end():
    """Type-7 quantiles bit for bit equal to numpy's (which lerps from the nearer end): the two
    formulas differ in the last bits for t >= 0.5 on values of very different size."""
    x = np.array([1e-3, 7.0, 1e8, 3.3e8 + 0.1, 1e9 / 3.0])
    qs = [0.0, 0.1, 0.3, 0.5, 0.55, 0.6, 0.7, 0.9, 0.99, 1.0]
    got = stats.quantiles(x, qs)
    np.testing.assert_array_equal(got, np.quantile(x, qs))
    # 2-D along each axis, and 3-D along the middle one
    y = np.random.default_rng(0).uniform(0, 1e6, (7, 4, 3))
    for axis in (0, 1, 2):
        np.testing.assert_array_equal(
            stats.quantiles(y, qs, axis=axis), np.quantile(y, qs, axis=axis)
        )
    assert stats.quantiles(np.zeros((0, 3)), [0.5]).shape == (1, 3)
    assert stats.quantiles(np.zeros((0, 3), dtype=np.float32), [0.5]).dtype == np.float32
    # n = 2: the upper neighbour is the last element
    np.testing.assert_array_equal(stats.quantiles(np.array([1.0, 3.0]), [0.75]), [2.5])


def test_axis_errors_and_negative_axes():
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(stats.median(x, axis=-1), np.median(x, axis=-1))
    np.testing.assert_array_equal(stats.median(x, axis=-2), np.median(x, axis=0))
    for axis in (2, -3):
        with pytest.raises(ValueError) as e:
            stats.median(x, axis=axis)
        assert str(e.value) == f"axis {axis} is out of bounds for an array of dimension 2"


def test_moments_of_empty_and_sd_of_one():
    m = stats.moments_of(np.zeros((0, 3), dtype=np.float32))
    assert m.count == 0 and m.mean.shape == (3,) and m.mean.dtype == np.float64
    m = stats.moments_of(np.zeros((2, 0, 3)), axis=1)
    assert m.mean.shape == (2, 3)
    one = stats.moments_of(np.array([[2.0, 4.0]]))
    sd = stats.moments_sd(one, ddof=1)
    assert sd.dtype == np.float64 and np.isnan(sd).all()
    np.testing.assert_array_equal(stats.moments_sd(one, ddof=0), [0.0, 0.0])
    two = stats.moments_of(np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(stats.moments_sd(two, ddof=1), [math.sqrt(2.0)], rtol=1e-15)


def test_replicate_summary_cv_at_a_mean_of_one():
    """cv = 100 sd / mean also where the mean is exactly 1 (only mean = 0 gives NaN)."""
    maps = np.array([[0.5, -1.0, 0.0], [1.5, 1.0, 0.0]])
    s = stats.replicate_summary(maps)
    np.testing.assert_allclose(s["mean"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s["cv"][0], 100.0 * math.sqrt(0.5), rtol=1e-15)
    assert np.isnan(s["cv"][1]) and np.isnan(s["cv"][2])
    np.testing.assert_allclose(s["sd"], np.std(maps, axis=0, ddof=1), rtol=1e-15)


def test_validation_metrics_edges():
    with pytest.raises(ValueError) as e:
        stats.validation_metrics(np.zeros(0), np.zeros(0))
    assert str(e.value) == "validation_metrics needs at least one record"
    with pytest.raises(ValueError) as e:
        stats.validation_metrics(np.zeros(2), np.zeros(3))
    assert str(e.value) == "y_true has 2 values but y_pred has 3"
    # 2-D inputs are flattened
    m = stats.validation_metrics(
        np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0, 3.0, 5.0]])
    )
    assert m["bias"] == pytest.approx(0.25) and m["rmse"] == pytest.approx(0.5)
    # a tiny product of spreads (denominator < 1) still gives a correlation
    t = np.array([0.0, 0.1, 0.2])
    m = stats.validation_metrics(t, 0.5 * t)
    assert m["r"] == pytest.approx(1.0, rel=1e-12)


# ============================================================================ srgpu.run.sampling


def test_bin_weights_values_and_errors():
    from srgpu.errors import ConfigError
    from srgpu.run.sampling import bin_weights

    assert bin_weights(scheme="equal") == {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}
    # a bin absent from the shares has weight 0 (no land of that bin: never drawn)
    assert bin_weights(scheme="area", area_shares={1: 0.25, 4: 0.75}) == {
        1: 0.25,
        2: 0.0,
        3: 0.0,
        4: 0.75,
        5: 0.0,
    }
    with pytest.raises(ConfigError) as e:
        bin_weights(scheme="area")
    assert str(e.value) == "sampling 'area' needs the bins' area shares"
    with pytest.raises(ConfigError) as e:
        bin_weights(scheme="random")
    assert str(e.value) == "sampling must be 'area' or 'equal', got 'random'"


def test_record_probabilities_error_lists_the_first_ten_bins():
    from srgpu.run.sampling import record_probabilities

    with pytest.raises(InputError) as e:
        record_probabilities(np.arange(12), {1: 0.0, 2: 0.0})
    assert str(e.value) == (
        "field 'veg_bin': no record lies in a vegetation bin with positive weight "
        "(got [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]); expected records in bins 1..5"
    )


def test_draw_split_sizes_and_eligibility():
    from srgpu.run.sampling import draw_split

    seed = np.random.SeedSequence(3)
    p = np.array([0.0, 0.25, 0.25, 0.0, 0.25, 0.25, 0.0])  # 4 eligible records
    s = draw_split(p, train_fraction=0.8, seed=seed)
    assert s.train.size == 3 and s.test.size == 1  # round(0.8 x 4 eligible), not x 7
    assert set(s.train) | set(s.test) == {1, 2, 4, 5}
    # at least one training record, even when the fraction rounds to none
    s = draw_split(np.full(5, 0.2), train_fraction=0.1, seed=seed)
    assert s.train.size == 1 and s.test.size == 4
    # unnormalised probabilities are normalised over the eligible records
    s = draw_split(np.array([2.0, 2.0, 0.0, 4.0]), train_fraction=0.5, seed=seed)
    assert s.train.size == 2 and 2 not in s.train and 2 not in s.test


def test_quantiles_at_the_ends_with_infinities_and_empty_middle_axes():
    """q = 0 and q = 1 pick the order statistic itself, without interpolating (an infinite
    neighbour would turn an interpolation into inf - inf = NaN); the default axis is 0."""
    x = np.array([1.0, 2.0, np.inf])
    np.testing.assert_array_equal(stats.quantiles(x, [0.0, 1.0]), [1.0, np.inf])
    np.testing.assert_array_equal(stats.quantiles(-x, [0.0, 1.0]), [-np.inf, -1.0])
    y = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(stats.median(y), np.median(y, axis=0))
    assert stats.quantiles(np.zeros((2, 0, 3)), [0.5, 0.9], axis=1).shape == (2, 2, 3)
    m = stats.moments_of(np.zeros((2, 0, 3)), axis=1)
    assert m.count == 0 and m.mean.shape == (2, 3) and m.m2.shape == (2, 3)


# ============================================================================ srgpu.data.predictors


def test_cell_area_clips_mirrored_polar_edges_and_uses_the_radius():
    """Centres whose mirrored outer edge passes a pole: the edge is clipped to +-90 degrees,
    so the areas add up to the band between the other edge and the pole (by hand); the same
    for the comparison's model grids."""
    from srgpu.analysis.compare.models import spherical_cell_area
    from srgpu.grid import cell_area_from_centres as cell_area

    r = 6_371_000.0
    south = np.arange(-89.9, 89.7, 0.5)
    lon = np.arange(-179.5, 180.0, 1.0)
    top = math.sin(math.radians(89.85))
    for lat in (south, -south[::-1]):
        got = spherical_cell_area(lat, lon).sum()
        assert got == pytest.approx(2 * math.pi * r * r * (top + 1.0), rel=1e-12)
    lon = np.arange(-179.5, 180.0, 1.0)  # 360 cells: dlon sums to 2 pi
    south = np.arange(-89.9, 89.7, 0.5)  # first edge -90.15 -> -90; last edge 89.85
    north = -south[::-1]  # last edge 90.15 -> 90; first edge -89.85
    top = math.sin(math.radians(89.85))
    for lat, expected in ((south, top + 1.0), (north, 1.0 + top)):
        got = cell_area(lat, lon).sum()
        assert got == pytest.approx(2 * math.pi * r * r * expected, rel=1e-12)
    got = cell_area(south, lon, radius_m=2.0).sum()
    assert got == pytest.approx(2 * math.pi * 4.0 * (top + 1.0), rel=1e-12)


def test_gs_mean_is_nan_when_a_growing_season_month_is_missing():
    """A NaN humidity/LAI inside the growing season makes the GS mean NaN (not the mean of the
    other GS months); a NaN outside it leaves the GS mean alone."""
    from srgpu.data.predictors import build_predictors
    from tests.test_known_answers import _drivers_at_zero_degc

    ds = _drivers_at_zero_degc("noleap")
    hurs = ds["hurs"].values.copy()
    hurs[6, 0, 0] = np.nan  # July: in the growing season (April-December)
    hurs[1, 0, 1] = np.nan  # February: outside it
    ds["hurs"] = (ds["hurs"].dims, hurs, ds["hurs"].attrs)
    out = build_predictors(drivers=[ds], vegetation=None, names=("RH_GS", "RH"))
    rh_gs = out["RH_GS"].values[0]
    assert np.isnan(rh_gs[0, 0])
    month = np.arange(1, 13)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
    rh = 40.0 + month**2 / 4.0
    gs = month >= 4
    expected = (rh * days)[gs].sum() / days[gs].sum()
    assert rh_gs[0, 1] == pytest.approx(expected, rel=1e-6)
    assert rh_gs[1, 1] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(out["RH"].values[0, 0, 1])  # the annual mean does see February


# ============================================================================ srgpu.units


@pytest.mark.parametrize(
    ("units", "kind", "factor"),
    [
        ("kg m-2 s-1", "flux", 1000.0),
        ("kg·m-2·s-1", "flux", 1000.0),  # middle dot
        ("kg*m**-2*s**-1", "flux", 1000.0),
        ("kg.m-2.s-1", "flux", 1000.0),
        ("kg c m-2 s-1", "flux", 1000.0),  # carbon, lower case
        ("kg m-1 m-1 s-1", "flux", 1000.0),  # area exponents add up
        ("kg m-2 s-2 s", "flux", 1000.0),  # time exponents add up
        ("MgC m-2 yr-1", "flux", 1e6 / (365 * 86400.0)),
        ("Mg m-2 d-1", "flux", 1e6 / 86400.0),
        ("kgC m-2", "stock", 1.0),
        ("g m-2", "stock", 1e-3),
    ],
)
def test_conversion_factor_spellings(units, kind, factor):
    from srgpu.units import conversion_factor

    assert conversion_factor(units, kind=kind) == pytest.approx(factor, rel=1e-15)


FLUX_EXPECTED = "a carbon flux such as 'kg m-2 s-1', 'kg C m-2 s-1' or 'g C m-2 yr-1'"
STOCK_EXPECTED = "a carbon stock such as 'kg m-2' or 'kg C m-2'"


@pytest.mark.parametrize(
    ("units", "kind", "message"),
    [
        (None, "flux", "f.nc: field 'rh': no units attribute; expected " + FLUX_EXPECTED),
        ("  ", "stock", "f.nc: field 'rh': no units attribute; expected " + STOCK_EXPECTED),
        (
            "kg m-2 s-1 %",
            "flux",
            "unreadable units (got 'kg m-2 s-1 %'); expected " + FLUX_EXPECTED,
        ),
        ("kg m-2 mon-1", "flux", "per-month rates have no fixed length (got 'kg m-2 mon-1')"),
        ("kg m-2 month-1", "flux", "per-month rates have no fixed length (got 'kg m-2 month-1')"),
        ("kg^2 m-2 s-1", "flux", "unexpected mass term (got 'kg^2 m-2 s-1')"),
        ("kg g m-2 s-1", "flux", "unexpected mass term (got 'kg g m-2 s-1')"),
        ("mgc m-2 s-1", "flux", "unknown unit symbol 'mgc' (got 'mgc m-2 s-1')"),
        ("MGC m-2 s-1", "flux", "unknown unit symbol 'MGC' (got 'MGC m-2 s-1')"),
        ("kgs m-2 s-1", "flux", "unknown unit symbol 'kgs' (got 'kgs m-2 s-1')"),
        ("kg s-1", "flux", "units are not those of a carbon flux (got 'kg s-1'); expected "),
        ("kg m-2 s-1", "stock", "carbon stock (got 'kg m-2 s-1'); expected " + STOCK_EXPECTED),
    ],
)
def test_conversion_factor_errors_name_file_field_value(units, kind, message):
    from srgpu.errors import UnitError
    from srgpu.units import conversion_factor

    with pytest.raises(UnitError) as e:
        conversion_factor(units, kind=kind, file="f.nc", field="rh")
    text = str(e.value)
    assert text.startswith("f.nc: field 'rh': ") and message in text, text
    assert e.value.expected == (FLUX_EXPECTED if kind == "flux" else STOCK_EXPECTED)
    if units is not None and str(units).strip():
        assert e.value.value == units
    else:
        assert e.value.value is None


# ============================================================================ comparison totals


def test_compare_totals_for_a_sub_period_and_outside_the_domain(tmp_path):
    """``years=(2001, 2002)``: the RF total is the mean of the replicate totals of those years
    only (by hand). A finite flux on a
    cell outside the domain does not count (its weight is 0)."""
    import xarray as xr

    from srgpu.analysis.compare import compare
    from tests.test_compare_synthetic import make_store_dataset, write_model

    ds = make_store_dataset()
    dom = ds["domain"].values.astype(bool)
    outside = np.argwhere(~dom & (np.abs(ds["lat"].values)[:, None] < 60))[0]
    for flux in ("SR", "HR", "AR"):
        field = ds[flux].values.copy()
        field[tuple(outside)] = 5000.0  # a value outside the domain: must not count
        ds[flux] = (("lat", "lon"), field, ds[flux].attrs)
        if f"{flux}_mean" in ds:  # the per-year map a sub-period's scores use
            cube = ds[f"{flux}_mean"].values.copy()
            cube[(slice(None), *outside)] = 5000.0
            ds[f"{flux}_mean"] = (ds[f"{flux}_mean"].dims, cube, ds[f"{flux}_mean"].attrs)
    ds["land_fraction"].values[tuple(outside)] = 0.7
    path = tmp_path / "ensemble.zarr"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", consolidated=False)
    store = xr.open_zarr(path, consolidated=False).load()
    model = write_model(tmp_path / "M", store, scale=1.0, variables=("rh", "raRoot"))
    weights = np.where(dom, ds["cell_area"].values * ds["land_fraction"].values, 0.0)
    for years, cols in (((2001, 2002), [1, 2]), ((2000, 2000), [0]), (None, [0, 1, 2])):
        tables = compare(path, {"M": model}, years=years).tables
        df = tables["global_totals"]
        for flux in ("SR", "HR", "AR"):
            row = df[(df["source"] == "RF") & (df["flux"] == flux)].iloc[0]
            reps = ds[f"{flux}_replicate_total"].values[:, cols].mean(axis=1)
            assert row["rf_mean"] == pytest.approx(reps.mean(), rel=1e-12), (years, flux)
            assert row["total_pg"] == pytest.approx(reps.mean(), rel=1e-12)
            # over a sub-period the map is the mean of the per-year maps of its years
            field = (
                ds[flux].values
                if years is None
                else ds[f"{flux}_mean"].sel(year=slice(*years)).mean("year").values
            )
            dom_total = np.nansum(np.where(dom, field, 0.0) * weights) / 1e15
            assert row["total_domain_pg"] == pytest.approx(dom_total, rel=1e-12)


def test_compare_totals_without_replicates_and_with_a_partial_model(tmp_path):
    """A store without replicate totals: the RF total is the domain total (by hand) and the
    band is NaN. A model giving only rh has an HR row and no SR/AR row. Periods are labelled
    'first-last'."""
    import warnings

    import xarray as xr

    from srgpu.analysis.compare import compare
    from tests.test_compare_synthetic import make_store_dataset, write_model

    ds = make_store_dataset()
    ds = ds.drop_vars([f"{f}_replicate_total" for f in ("SR", "HR", "AR")])
    path = tmp_path / "ensemble.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", consolidated=False)
    store = xr.open_zarr(path, consolidated=False).load()
    model = write_model(tmp_path / "M", store, scale=1.0, variables=("rh",))
    dom = ds["domain"].values.astype(bool)
    weights = np.where(dom, ds["cell_area"].values * ds["land_fraction"].values, 0.0)
    tables = compare(path, {"M": model}, years=(2001, 2002)).tables
    df = tables["global_totals"]
    for flux in ("SR", "HR", "AR"):
        row = df[(df["source"] == "RF") & (df["flux"] == flux)].iloc[0]
        # the comparison period is 2001-2002: the map is the mean of those years' maps
        field = ds[f"{flux}_mean"].sel(year=slice(2001, 2002)).mean("year").values
        dom_total = np.nansum(np.where(dom, field, 0.0) * weights) / 1e15
        assert row["total_pg"] == pytest.approx(dom_total, rel=1e-12)
        assert np.isnan(row["rf_mean"]) and row["period"] == "2001-2002"
    models = df[df["source"] == "M"]
    assert list(models["flux"]) == ["HR"] and list(models["period"]) == ["2001-2002"]


def _store_and_model(tmp_path, ds, *, variables):
    import warnings

    import xarray as xr

    from tests.test_compare_synthetic import write_model

    path = tmp_path / "ensemble.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", consolidated=False)
    store = xr.open_zarr(path, consolidated=False).load()
    return path, write_model(tmp_path / "M", store, scale=1.0, variables=variables)


def test_model_native_totals_of_a_period_and_of_a_stock(tmp_path):
    """The model's own-grid totals averaged over the chosen years only (both ends inclusive),
    and cSoil in Pg C (kg C m-2 x m2 x 1e-12), by hand; identical replicate totals put the RF
    total on both ends of its band, which counts as inside."""
    from srgpu.analysis.compare import compare
    from srgpu.analysis.compare.scores import model_globals
    from tests.test_compare_synthetic import make_store_dataset

    ds = make_store_dataset()
    for f in ("SR", "HR", "AR"):  # every replicate the same total
        v = ds[f"{f}_replicate_total"].values
        ds[f"{f}_replicate_total"] = (
            ds[f"{f}_replicate_total"].dims,
            np.repeat(v.mean(axis=0, keepdims=True), v.shape[0], axis=0),
        )
    path, model = _store_and_model(tmp_path, ds, variables=("rh", "cSoil"))
    dom = ds["domain"].values.astype(bool)
    w = np.where(dom, ds["cell_area"].values * ds["land_fraction"].values, 0.0)
    per_year = [np.nansum(ds["HR_mean"].values[k] * w) / 1e15 for k in range(3)]
    for years, ks in (((2000, 2001), [0, 1]), ((2001, 2002), [1, 2])):
        result = compare(path, {"M": model}, years=years)
        cmp, tables = result.comparison, result.tables
        df = tables["global_totals"]
        m = df[(df["source"] == "M") & (df["flux"] == "HR")].iloc[0]
        # float32 model files: measured ~1e-8 relative
        assert m["total_pg"] == pytest.approx(np.mean([per_year[k] for k in ks]), rel=1e-6)
        rf = df[(df["source"] == "RF") & (df["flux"] == "HR")].iloc[0]
        assert rf["rf_q025"] == rf["rf_q975"] == pytest.approx(rf["total_pg"], rel=1e-15)
        assert bool(rf["in_band"])
    g = model_globals(cmp).set_index("source")
    csoil = np.nansum(np.where(dom, 10.0, 0.0) * w) * 1e-12  # write_model: 10 kg m-2
    assert g.loc["M", "cSoil"] == pytest.approx(csoil, rel=1e-6)


def test_model_areacella_is_used_for_native_totals(tmp_path):
    """A model's own cell areas (areacella) replace the spherical ones in its native totals:
    areas of half the sphere's give half the total."""
    import xarray as xr

    from srgpu.analysis.compare import compare
    from tests.test_compare_synthetic import fine_grid, make_store_dataset

    path, model = _store_and_model(tmp_path, make_store_dataset(), variables=("rh",))
    before = compare(path, {"M": model}).tables
    lat, lon = fine_grid(2)
    from srgpu.analysis.compare.models import spherical_cell_area

    xr.Dataset(
        {"areacella": (("lat", "lon"), 0.5 * spherical_cell_area(lat, lon), {"units": "m2"})},
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    ).to_netcdf(model / "M_areacella.nc")
    after = compare(path, {"M": model}).tables

    def hr(tables):
        df = tables["global_totals"]
        return df[(df["source"] == "M") & (df["flux"] == "HR")].iloc[0]["total_pg"]

    assert hr(after) == pytest.approx(0.5 * hr(before), rel=1e-12)


# ============================================================================ observations


def test_canonical_quality_flags():
    from srgpu.data.observations import _canon_flag

    assert (
        _canon_flag("Q1") == "Q01" and _canon_flag("q1") == "Q01" and _canon_flag("Q011") == "Q11"
    )
    assert _canon_flag("Q0") == "Q0" and _canon_flag("q000") == "Q0"
    assert _canon_flag(" abc ") == "ABC"


def test_selection_edges_by_hand():
    """Coordinates on the limits are valid, just outside are not; a missing Manipulation is
    untreated; a one-year period is valid; the QC names its source and criteria."""
    from srgpu.data.observations import select_observations
    from tests.test_observations import _frame

    rows = [
        {"Latitude": -90.0, "Rs_annual": 500.0},
        {"Latitude": 90.0, "Rs_annual": 500.0},
        {"Latitude": -90.5, "Rs_annual": 500.0},
        {"Latitude": 90.5, "Rs_annual": 500.0},
        {"Longitude": -180.0, "Rs_annual": 500.0},
        {"Longitude": 180.0, "Rs_annual": 500.0},
        {"Longitude": -180.5, "Rs_annual": 500.0},
        {"Longitude": 180.5, "Rs_annual": 500.0},
        {"Manipulation": None, "Rs_annual": 500.0},
        {"Manipulation": "Warmed", "Rs_annual": 500.0},
    ]
    obs = select_observations(_frame(rows))
    kept = sorted(obs.table["record_id"].astype(int))
    assert kept == [1, 2, 5, 6, 9]
    assert obs.qc.records["invalid_coordinates"] == 4 and obs.qc.records["manipulated"] == 1
    assert obs.qc.source == "<DataFrame>"
    assert "untreated_manipulation" in obs.qc.criteria
    one = select_observations(_frame(rows), years=(2000, 2000))
    assert sorted(one.table["record_id"].astype(int)) == kept
    with pytest.raises(InputError) as e:
        select_observations(_frame(rows), years=(2001, 2000))
    assert str(e.value) == ("years must be (first, last) with first <= last (got (2001, 2000))")


def test_selection_errors_name_the_source_and_row():
    from srgpu.data.observations import select_observations
    from tests.test_observations import _frame

    raw = _frame([{"Rs_annual": 500.0}, {"Rs_annual": 50_000.0}])
    with pytest.raises(InputError) as e:
        select_observations(raw, source="s.csv")
    assert str(e.value).startswith("s.csv: field 'Rs_annual': implausible annual flux at row 1 ")
    with pytest.raises(InputError) as e:
        select_observations(raw, source="s.csv", line_offset=2)
    assert "implausible annual flux at line 3 " in str(e.value)
    bad = _frame([{"Rs_annual": 500.0}, {"Rs_annual": "x"}])
    with pytest.raises(InputError) as e:
        select_observations(bad, source="s.csv", line_offset=2)
    assert str(e.value).startswith("s.csv: field 'Rs_annual': ") and "line 3" in str(e.value)
