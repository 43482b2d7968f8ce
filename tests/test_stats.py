"""Known-answer tests of srgpu.run.stats against plain numpy/scipy/sklearn, for every namespace."""

from __future__ import annotations

import math

import array_api_compat
import numpy as np
import pytest
import scipy.stats
from sklearn.metrics import mean_squared_error, r2_score

from srgpu.errors import InputError
from srgpu.run import stats
from tests import has_array_api_strict, has_gpu

R_EARTH = 6_371_000.0


def _namespaces():
    params = [pytest.param("numpy", id="numpy")]
    params.append(
        pytest.param(
            "array_api_strict",
            id="array_api_strict",
            marks=pytest.mark.skipif(not has_array_api_strict, reason="no array_api_strict"),
        )
    )
    params.append(
        pytest.param(
            "cupy",
            id="cupy",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not has_gpu, reason="no GPU")],
        )
    )
    return params


@pytest.fixture(params=_namespaces())
def xp(request):
    if request.param == "numpy":
        return array_api_compat.array_namespace(np.empty(0))
    if request.param == "array_api_strict":
        import array_api_strict

        return array_api_strict
    import cupy

    return array_api_compat.array_namespace(cupy.empty(0))


def to_xp(xp, a):
    return xp.asarray(np.asarray(a))


def to_np(a):
    if hasattr(a, "get"):  # cupy
        return a.get()
    return np.asarray(a)


def same_namespace(xp, a) -> bool:
    return array_api_compat.array_namespace(a) is array_api_compat.array_namespace(xp.asarray(0.0))


# ----------------------------------------------------------------------------- moments


def _random_splits(rng, n, *, with_singletons):
    """Unequal batch sizes summing to n, optionally forcing several 1-sample batches."""
    sizes = []
    left = n
    while left:
        k = 1 if with_singletons and rng.random() < 0.3 else int(rng.integers(1, max(2, n // 3)))
        k = min(k, left)
        sizes.append(k)
        left -= k
    return sizes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("with_singletons", [False, True])
def test_moments_merge_equals_whole(xp, seed, with_singletons):
    rng = np.random.default_rng(seed)
    # large offset, float32 input: float64 accumulation must keep the variance exact
    data = (1000.0 + rng.normal(size=(57, 13)) * (1 + rng.random(13))).astype(np.float32)
    ref = data.astype(np.float64)
    acc = None
    start = 0
    for k in _random_splits(rng, data.shape[0], with_singletons=with_singletons):
        acc = stats.merge_moments(acc, stats.moments_of(to_xp(xp, data[start : start + k])))
        start += k
    assert acc.count == data.shape[0]
    assert same_namespace(xp, acc.mean) and same_namespace(xp, acc.m2)
    np.testing.assert_allclose(to_np(acc.mean), ref.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(to_np(acc.m2), ref.var(axis=0) * len(ref), rtol=1e-12)
    sd = stats.moments_sd(acc)
    assert same_namespace(xp, sd)
    np.testing.assert_allclose(to_np(sd), ref.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(
        to_np(stats.moments_sd(acc, ddof=0)), ref.std(axis=0, ddof=0), rtol=1e-12
    )


def test_moments_merge_order_and_associativity(xp):
    rng = np.random.default_rng(7)
    parts = [rng.normal(loc=5.0, size=(k, 6)) for k in (1, 4, 9, 2)]
    m = [stats.moments_of(to_xp(xp, p)) for p in parts]
    left = stats.merge_moments(stats.merge_moments(stats.merge_moments(m[0], m[1]), m[2]), m[3])
    right = stats.merge_moments(m[0], stats.merge_moments(m[1], stats.merge_moments(m[2], m[3])))
    shuffled = stats.merge_moments(stats.merge_moments(m[3], m[1]), stats.merge_moments(m[2], m[0]))
    for other in (right, shuffled):
        assert other.count == left.count == 16
        np.testing.assert_allclose(to_np(other.mean), to_np(left.mean), rtol=1e-14)
        np.testing.assert_allclose(to_np(other.m2), to_np(left.m2), rtol=1e-13)


def test_moments_axis_and_empty(xp):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(4, 9))
    m = stats.moments_of(to_xp(xp, data), axis=1)
    assert m.count == 9
    np.testing.assert_allclose(to_np(m.mean), data.mean(axis=1), rtol=1e-14)
    empty = stats.moments_of(to_xp(xp, np.empty((0, 9))))
    assert empty.count == 0 and tuple(empty.mean.shape) == (9,)
    assert np.all(np.isnan(to_np(stats.moments_sd(empty))))
    full = stats.moments_of(to_xp(xp, data.T))
    merged = stats.merge_moments(stats.merge_moments(None, empty), full)
    merged = stats.merge_moments(merged, empty)
    np.testing.assert_allclose(to_np(merged.m2), to_np(full.m2), rtol=0)
    one = stats.moments_of(to_xp(xp, data[:1]))
    assert np.all(np.isnan(to_np(stats.moments_sd(one))))
    np.testing.assert_allclose(to_np(stats.moments_sd(one, ddof=0)), 0.0)


def test_merge_shape_mismatch(xp):
    a = stats.moments_of(to_xp(xp, np.ones((2, 3))))
    b = stats.moments_of(to_xp(xp, np.ones((2, 4))))
    with pytest.raises(ValueError, match="shapes"):
        stats.merge_moments(a, b)


# ----------------------------------------------------------------------------- order statistics

QS = [0.0, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 1.0]


@pytest.mark.parametrize("n", [1, 2, 7, 10, 201])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantiles_match_numpy(xp, n, axis):
    rng = np.random.default_rng(n)
    shape = (n, 5) if axis == 0 else (5, n)
    data = rng.normal(size=shape)
    got = stats.quantiles(to_xp(xp, data), QS, axis=axis)
    assert same_namespace(xp, got)
    assert tuple(got.shape) == (len(QS), 5)
    np.testing.assert_allclose(to_np(got), np.quantile(data, QS, axis=axis), rtol=1e-14, atol=1e-15)
    med = stats.median(to_xp(xp, data), axis=axis)
    np.testing.assert_allclose(to_np(med), np.median(data, axis=axis), rtol=1e-14, atol=1e-15)


def test_quantiles_3d_ints_nan_and_float32(xp):
    rng = np.random.default_rng(11)
    ints = rng.integers(0, 50, size=(3, 8, 4))
    got = stats.quantiles(to_xp(xp, ints), [0.3, 0.5], axis=1)
    assert tuple(got.shape) == (2, 3, 4)
    np.testing.assert_allclose(to_np(got), np.quantile(ints, [0.3, 0.5], axis=1), rtol=1e-14)
    f32 = rng.normal(size=(9, 4)).astype(np.float32)
    got32 = stats.quantiles(to_xp(xp, f32), [0.25])
    assert to_np(got32).dtype == np.float32
    np.testing.assert_allclose(to_np(got32), np.quantile(f32, [0.25], axis=0), rtol=1e-6)
    withnan = rng.normal(size=(6, 3))
    withnan[2, 1] = np.nan
    got_nan = to_np(stats.quantiles(to_xp(xp, withnan), [0.0, 0.5, 1.0]))
    np.testing.assert_array_equal(np.isnan(got_nan), np.isnan(np.quantile(withnan, [0, 0.5, 1], 0)))
    empty = stats.quantiles(to_xp(xp, np.empty((0, 3))), [0.5])
    assert tuple(empty.shape) == (1, 3) and np.all(np.isnan(to_np(empty)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.quantiles(to_xp(xp, f32), [1.5])


@pytest.mark.parametrize("n", [1, 2, 8, 31])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("scale", [1.0, stats.NORMAL_MAD_SCALE])
def test_mad_matches_scipy(xp, n, axis, scale):
    rng = np.random.default_rng(100 + n)
    data = rng.gamma(2.0, size=(n, 6) if axis == 0 else (6, n))
    got = stats.median_abs_deviation(to_xp(xp, data), axis=axis, scale=scale)
    assert same_namespace(xp, got)
    ref = scipy.stats.median_abs_deviation(data, axis=axis, scale=1.0 / scale)
    np.testing.assert_allclose(to_np(got), ref, rtol=1e-13, atol=1e-15)


def test_mad_of_normal_is_0_6745_sd():
    """The paper's MAD/SD ratio (27.3/40.4 = 0.676) is that of the unscaled MAD."""
    data = np.random.default_rng(5).normal(size=200_001)
    ratio = float(stats.median_abs_deviation(data)) / data.std(ddof=1)
    assert abs(ratio - 0.6745) < 0.005
    assert abs(27.3 / 40.4 - 0.6745) < 0.005


# ----------------------------------------------------------------------------- summaries


def test_replicate_summary(xp):
    rng = np.random.default_rng(21)
    maps = rng.gamma(3.0, 200.0, size=(41, 12)).astype(np.float32)
    maps[:, 3] = 0.0  # mean 0: CV must be NaN
    got = stats.replicate_summary(to_xp(xp, maps))
    assert set(got) == {"mean", "sd", "median", "mad", "q025", "q975", "cv"}
    ref64 = maps.astype(np.float64)
    mean = ref64.mean(axis=0)
    sd = ref64.std(axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cv = np.where(mean == 0, np.nan, 100 * sd / mean)
    expected = {
        "mean": mean,
        "sd": sd,
        "median": np.median(maps, axis=0),
        "mad": scipy.stats.median_abs_deviation(maps, axis=0),
        "q025": np.quantile(maps, 0.025, axis=0),
        "q975": np.quantile(maps, 0.975, axis=0),
        "cv": cv,
    }
    for key, ref in expected.items():
        value = to_np(got[key])
        assert same_namespace(xp, got[key]) and value.dtype == np.float64, key
        assert value.shape == (12,), key
        np.testing.assert_allclose(value, ref, rtol=1e-6, err_msg=key)
    # axis=1 gives the same on the transposed block
    got_t = stats.replicate_summary(to_xp(xp, maps.T), axis=1)
    for key in expected:
        np.testing.assert_allclose(to_np(got_t[key]), to_np(got[key]), rtol=1e-12, err_msg=key)


def test_time_mean_per_replicate(xp):
    rng = np.random.default_rng(8)
    pred = rng.normal(500.0, 50.0, size=(4, 3, 7)).astype(np.float32)
    got3 = stats.time_mean_per_replicate(to_xp(xp, pred))
    got2 = stats.time_mean_per_replicate(to_xp(xp, pred.reshape(4, 21)), n_years=3)
    ref = pred.astype(np.float64).mean(axis=1)
    for got in (got3, got2):
        assert same_namespace(xp, got)
        assert to_np(got).dtype == np.float32 and to_np(got).shape == (4, 7)
        np.testing.assert_allclose(to_np(got), ref, rtol=1e-7)
    with pytest.raises(ValueError, match="n_years"):
        stats.time_mean_per_replicate(to_xp(xp, pred.reshape(4, 21)), n_years=4)
    with pytest.raises(ValueError, match="n_years"):
        stats.time_mean_per_replicate(to_xp(xp, pred.reshape(4, 21)))


# ----------------------------------------------------------------------------- areas and totals


def _global_bounds(step):
    lat_edges = np.arange(-90.0, 90.0 + step / 2, step)
    lon_edges = np.arange(-180.0, 180.0 + step / 2, step)
    lat_b = np.stack([lat_edges[:-1], lat_edges[1:]], axis=1)
    lon_b = np.stack([lon_edges[:-1], lon_edges[1:]], axis=1)
    return lat_b, lon_b


@pytest.mark.parametrize("step", [0.5, 4.0])
def test_cell_areas_sum_to_sphere(xp, step):
    lat_b, lon_b = _global_bounds(step)
    area = stats.cell_area_m2(to_xp(xp, lat_b), to_xp(xp, lon_b))
    assert same_namespace(xp, area)
    a = to_np(area)
    assert a.shape == (len(lat_b), len(lon_b))
    np.testing.assert_allclose(a.sum(), 4 * np.pi * R_EARTH**2, rtol=1e-12)
    # north-south symmetric, largest at the equator
    np.testing.assert_allclose(a, a[::-1], rtol=1e-10)
    # descending latitudes (90 -> -90) give the same areas
    flipped = to_np(stats.cell_area_m2(to_xp(xp, lat_b[::-1, ::-1].copy()), to_xp(xp, lon_b)))
    np.testing.assert_allclose(flipped, a[::-1], rtol=1e-12)


def test_cell_area_known_band(xp):
    # the band 0-30°N is a quarter of the sphere's area: 2 pi R^2 * sin(30°) / (4 pi R^2) = 1/4
    area = stats.cell_area_m2(
        to_xp(xp, np.array([[0.0, 30.0]])), to_xp(xp, np.array([[0.0, 360.0]])), radius_m=1.0
    )
    np.testing.assert_allclose(to_np(area), [[np.pi]], rtol=1e-14)
    # a 1° x 1° cell at the equator, by hand: R^2 * (pi/180) * sin(1°)
    cell = stats.cell_area_m2(to_xp(xp, np.array([[0.0, 1.0]])), to_xp(xp, np.array([[10, 11.0]])))
    expected = R_EARTH**2 * math.radians(1.0) * math.sin(math.radians(1.0))
    np.testing.assert_allclose(to_np(cell), [[expected]], rtol=1e-14)


def test_cell_area_rejects_bad_bounds(xp):
    with pytest.raises(InputError, match="lat_bounds"):
        stats.cell_area_m2(to_xp(xp, np.array([0.0, 1.0])), to_xp(xp, np.array([[0.0, 1.0]])))
    with pytest.raises(InputError, match="lat_bounds"):
        stats.cell_area_m2(to_xp(xp, np.array([[80.0, 95.0]])), to_xp(xp, np.array([[0.0, 1.0]])))


def test_global_total_by_hand(xp):
    # two land cells of 1e12 m2 and 3e12 m2 at 500 and 1000 g C m-2 yr-1, one ocean cell
    flux = np.array([[500.0, 1000.0, np.nan], [600.0, 1000.0, np.nan]], dtype=np.float32)
    weight = np.array([1e12, 3e12, 0.0])
    total = stats.global_total_pg(to_xp(xp, flux), to_xp(xp, weight))
    assert same_namespace(xp, total)
    np.testing.assert_allclose(to_np(total), [3.5, 3.6], rtol=1e-12)
    # NaN on a land cell propagates
    flux[1, 0] = np.nan
    got = to_np(stats.global_total_pg(to_xp(xp, flux), to_xp(xp, weight)))
    assert got[0] == pytest.approx(3.5) and np.isnan(got[1])


def test_global_total_2d_grid_matches_numpy(xp):
    rng = np.random.default_rng(4)
    lat_b, lon_b = _global_bounds(4.0)
    area = stats.cell_area_m2(to_xp(xp, lat_b), to_xp(xp, lon_b))
    frac = rng.random(tuple(area.shape))
    flux = rng.gamma(2.0, 300.0, size=(5, *area.shape))
    weight = area * to_xp(xp, frac)
    got = stats.global_total_pg(to_xp(xp, flux), weight, axis=(-2, -1))
    ref = (flux * (to_np(area) * frac)).sum(axis=(-2, -1)) / 1e15
    np.testing.assert_allclose(to_np(got), ref, rtol=1e-12)
    # integrated SD: the per-cell SD map times area, summed, is not the SD of the total
    sd_map = stats.replicate_summary(to_xp(xp, flux))["sd"]
    integrated = float(stats.global_total_pg(sd_map, weight, axis=(-2, -1)))
    sd_of_total = float(np.std(ref, ddof=1))
    assert integrated > sd_of_total


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_validation_metrics_match_sklearn(xp, seed):
    rng = np.random.default_rng(seed)
    y = rng.gamma(3.0, 300.0, size=60)
    pred = y * 0.8 + rng.normal(0, 150, size=60) + 50
    got = stats.validation_metrics(to_xp(xp, y), to_xp(xp, pred.astype(np.float32)))
    pred32 = pred.astype(np.float32).astype(np.float64)
    assert all(isinstance(v, float) for v in got.values())
    assert got["r2"] == pytest.approx(r2_score(y, pred32), rel=1e-12)
    assert got["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, pred32)), rel=1e-12)
    assert got["r"] == pytest.approx(np.corrcoef(y, pred32)[0, 1], rel=1e-12)
    assert got["bias"] == pytest.approx(np.mean(pred32 - y), rel=1e-12)


def test_validation_metrics_edge_cases(xp):
    const = to_xp(xp, np.full(4, 3.0))
    assert stats.validation_metrics(const, const)["r2"] == 1.0
    other = to_xp(xp, np.array([1.0, 2.0, 3.0, 4.0]))
    got = stats.validation_metrics(const, other)
    assert got["r2"] == r2_score(np.full(4, 3.0), [1.0, 2.0, 3.0, 4.0]) == 0.0
    assert math.isnan(got["r"])
    with pytest.raises(ValueError, match="values"):
        stats.validation_metrics(const, to_xp(xp, np.ones(3)))
    with pytest.raises(ValueError, match="at least one"):
        stats.validation_metrics(to_xp(xp, np.empty(0)), to_xp(xp, np.empty(0)))


# ----------------------------------------------------------------------------- device placement


@pytest.mark.skipif(not has_array_api_strict, reason="no array_api_strict")
def test_every_function_stays_on_a_non_default_device():
    """A cupy-like check: inputs on array_api_strict's 'device1' give outputs on 'device1'."""
    import array_api_strict as xps

    dev = xps.Device("device1")
    rng = np.random.default_rng(9)

    def on_dev(a):
        return xps.asarray(np.asarray(a), device=dev)

    block = on_dev(rng.normal(size=(6, 5)).astype(np.float32))
    lat_b, lon_b = _global_bounds(30.0)
    mom = stats.merge_moments(stats.moments_of(block), stats.moments_of(block))
    area = stats.cell_area_m2(on_dev(lat_b), on_dev(lon_b))
    outputs = [
        mom.mean,
        mom.m2,
        stats.moments_sd(mom),
        stats.moments_sd(stats.moments_of(block[:1, ...])),
        stats.moments_of(block[:0, ...]).mean,
        stats.quantiles(block, [0.1, 0.9], axis=1),
        stats.quantiles(block[:0, ...], [0.5]),
        stats.median(block),
        stats.median_abs_deviation(block),
        stats.time_mean_per_replicate(xps.reshape(block, (2, 3, 5))),
        area,
        stats.global_total_pg(block, on_dev(np.ones(5))),
        *stats.replicate_summary(block).values(),
    ]
    for out in outputs:
        assert out.device == dev
    metrics = stats.validation_metrics(block[:, 0], block[:, 1])
    assert all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("name", ["numpy", "array_api_strict"])
def test_bounds_from_centres(name):
    xp = np if name == "numpy" else pytest.importorskip("array_api_strict")
    from srgpu.run.stats import bounds_from_centres, cell_area_m2

    lat = xp.asarray(np.arange(-89.75, 90.0, 0.5))
    lon = xp.asarray(np.arange(-179.75, 180.0, 0.5))
    b = np.asarray(bounds_from_centres(lat, lower=-90.0, upper=90.0))
    assert b[0, 0] == -90.0 and b[-1, 1] == 90.0
    np.testing.assert_allclose(b[:, 1] - b[:, 0], 0.5)
    total = np.asarray(
        cell_area_m2(bounds_from_centres(lat, lower=-90.0, upper=90.0), bounds_from_centres(lon))
    ).sum()
    assert total == pytest.approx(4 * np.pi * 6_371_000.0**2, rel=1e-12)
    one = np.asarray(bounds_from_centres(xp.asarray([10.0])))
    np.testing.assert_array_equal(one, [[9.5, 10.5]])
