"""Hand-computed answers for the edges of :mod:`srgpu.calibration` (issue 21, deliver 4).

Small discrete distributions whose PIT, CRPS and coverage are worked out on paper in the
comments; error messages are checked in full (the CLI prints exactly that one line).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgpu import calibration as C
from srgpu.errors import InputError

# -- input checks --------------------------------------------------------------------------------


def test_one_observation_may_give_its_weights_as_a_vector():
    # weights 1, 3 (normalised: 1/4, 3/4) on 0 and 2; y = 1:
    # E|X - y| = 1, E|X - X'| = 2 (1/4)(3/4) 2 = 3/4, CRPS = 1 - 3/8 = 5/8
    assert C.crps(np.array([1.0]), np.array([1.0, 3.0]), np.array([0.0, 2.0])).tolist() == [0.625]
    assert C.pit(np.array([1.0]), np.array([1.0, 3.0]), np.array([0.0, 2.0])).tolist() == [0.25]


def test_values_may_differ_per_observation_and_tie():
    x = np.array([[0.0, 2.0], [1.0, 1.0]])  # the second row: a point mass at 1, split in two
    W = np.array([[0.25, 0.75], [0.5, 0.5]])
    y = np.array([1.0, 1.0])
    np.testing.assert_allclose(C.crps(y, W, x), [0.625, 0.0], rtol=0, atol=1e-15)
    # the second row: nothing below 1, all of it at 1 -> mid-PIT 1/2
    np.testing.assert_allclose(C.pit(y, W, x), [0.25, 0.5], rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("weights", "values", "n_obs", "message"),
    [
        (
            np.ones((1, 3)),
            np.arange(2.0),
            1,
            "field 'weights': weights must be (n_obs, n_values) (got (1, 3)); expected (1, 2)",
        ),
        (
            np.ones((2, 2)),
            np.arange(2.0),
            3,
            "field 'weights': weights must be (n_obs, n_values) (got (2, 2)); expected (3, 2)",
        ),
        (
            np.ones((1, 1, 2)),
            np.arange(2.0),
            1,
            "field 'weights': weights must be (n_obs, n_values) (got (1, 1, 2)); expected (1, 2)",
        ),
        (
            np.ones((2, 2)),
            np.ones((3, 2)),
            2,
            "field 'values': values must be (n_values,) or like weights",
        ),
        (
            np.ones((1, 2)),
            np.array([1.0, 0.0]),
            1,
            "field 'values': values must be sorted ascending",
        ),
        (np.array([[1.0, -0.5]]), np.arange(2.0), 1, "field 'weights': weights must be >= 0"),
        (
            np.array([[1.0, 1.0], [0.0, 0.0]]),
            np.arange(2.0),
            2,
            "field 'weights': every row needs a positive total weight",
        ),
    ],
)
def test_bad_weights_and_values(weights, values, n_obs, message):
    for f in (C.crps, C.pit):
        with pytest.raises(InputError) as e:
            f(np.zeros(n_obs), weights, values)
        assert str(e.value) == message


def test_weights_are_normalised_per_row():
    x = np.array([0.0, 1.0, 4.0])
    y = np.array([1.0, 1.0])
    W = np.array([[1.0, 1.0, 2.0], [10.0, 10.0, 20.0]])  # both 1/4, 1/4, 1/2
    # F(1-) = 1/4, mass at 1 = 1/4: mid-PIT 3/8
    np.testing.assert_allclose(C.pit(y, W, x), [0.375, 0.375], rtol=0, atol=1e-15)
    # E|X - 1| = 1/4 + 0 + 3/2 = 7/4; E|X - X'| = 2 (1/16 + 4/8 + 3/8) = 15/8; CRPS = 7/4 - 15/16
    np.testing.assert_allclose(C.crps(y, W, x), [13 / 16, 13 / 16], rtol=1e-15)


# -- PIT -----------------------------------------------------------------------------------------


def test_randomised_pit_spreads_a_mass_over_its_step():
    # weights 1/2, 1/2 on 1, 2; y = 2: F(2-) = 1/2, mass 1/2 -> PIT = 1/2 + u/2 with u ~ U(0, 1)
    n = 4000
    W = np.full((n, 2), 0.5)
    y = np.full(n, 2.0)
    p = C.pit(y, W, np.array([1.0, 2.0]), rng=np.random.default_rng(7))
    assert p.min() >= 0.5 and p.max() <= 1.0
    assert len(np.unique(p)) == n  # randomised, not the mid value
    assert p.mean() == pytest.approx(0.75, abs=0.01)  # sd of the mean 0.0023
    # y between the values: no mass at y, the PIT is F(y) whatever u is
    q = C.pit(np.full(3, 1.5), W[:3], np.array([1.0, 2.0]), rng=np.random.default_rng(7))
    np.testing.assert_array_equal(q, [0.5, 0.5, 0.5])


def test_pit_histogram_bins_edges_and_empty():
    v = np.array([0.0, 0.05, 0.1, 0.55, 0.95, 1.0, 0.999])
    # bins of width 0.1: 0 and 0.05 in the first, 0.1 in the second, 0.55 in the sixth,
    # 0.95, 0.999 and 1 (counted in the last bin) in the tenth
    want = np.array([2, 1, 0, 0, 0, 1, 0, 0, 0, 3]) / 7
    np.testing.assert_allclose(C.pit_histogram(v), want, rtol=1e-15)
    np.testing.assert_allclose(C.pit_histogram(v, bins=2), np.array([3, 4]) / 7, rtol=1e-15)
    empty = C.pit_histogram(np.array([]), bins=4)
    assert empty.shape == (4,) and np.isnan(empty).all()
    assert C.PIT_BINS == 10 and C.pit_histogram(np.array([]))[:].shape == (10,)


# -- CRPS ----------------------------------------------------------------------------------------


def test_crps_sample_sorts_the_samples():
    # equal weights on 1, 2, 3 and y = 2: E|X - y| = 2/3, E|X - X'| = (2 + 4 + 2) / 9 = 8/9,
    # CRPS = 2/3 - 4/9 = 2/9
    got = C.crps_sample(np.array([2.0, 2.0]), np.array([[3.0, 1.0, 2.0], [1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(got, [2 / 9, 2 / 9], rtol=1e-14)


def test_crps_is_never_negative_for_a_point_mass_at_y():
    # five equal weights on 1e8 + 0.1 = y: term1 - spread rounds to -9.3e-9 (measured); the
    # CRPS of a point mass at the observation is 0
    y = np.array([1e8 + 0.1])
    assert C.crps(y, np.ones((1, 5)), np.full(5, 1e8 + 0.1)).tolist() == [0.0]


# -- coverage ------------------------------------------------------------------------------------


def test_coverage_bounds_are_inclusive_and_empty_is_nan():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert C.interval_coverage(y, np.full(4, 2.0), np.full(4, 3.0)) == 0.5
    assert math.isnan(C.interval_coverage(np.array([]), np.array([]), np.array([])))


def test_central_coverage_matches_levels_up_to_rounding():
    # levels written as 1 - p / 2 carry float noise (1 - 0.975 = 0.025000000000000022)
    levels = [1 - 0.975, 1 - 0.95, 0.25, 0.75, 0.95, 0.975]
    y = np.array([0.0, 0.5, 1.5, 2.5])
    q = np.tile([-2.0, -1.0, 0.0, 1.0, 2.0, 3.0], (4, 1))  # bounds of 0.5: [0, 1]; 0.9: [-1, 2]
    cov = C.central_coverage(y, q, levels)
    assert cov == {"0.5": 0.5, "0.9": 0.75, "0.95": 1.0}
    assert C.central_coverage(y, q, levels, nominal=(0.5,)) == {"0.5": 0.5}
    with pytest.raises(InputError) as e:
        C.central_coverage(y, q[:, 1:], levels[1:])
    assert str(e.value) == (
        "field 'levels': quantile levels lack an interval bound (got [0.05, 0.25, 0.75, 0.95, "
        "0.975]); expected 0.025 and 0.975"
    )
    with pytest.raises(InputError, match="expected 0.05 and 0.95"):
        C.central_coverage(y, q[:, :-1], [0.025, 0.25, 0.75, 0.9, 0.975])


# -- summaries -----------------------------------------------------------------------------------


def test_summary_of_one_replicate_has_zero_sd_and_empty_is_an_error():
    one = [{"coverage": {"0.5": 0.4}, "pit_hist": [0.25, 0.75], "crps": 2.5}]
    assert C.summarise_replicates(one) == {
        "coverage": {"0.5": {"mean": 0.4, "sd": 0.0}},
        "pit_hist": {"mean": [0.25, 0.75], "sd": [0.0, 0.0]},
        "crps": {"mean": 2.5, "sd": 0.0},
        "replicates": 1,
    }
    three = [{**one[0], "crps": c} for c in (1.0, 2.0, 6.0)]  # mean 3, SD (ddof 1) sqrt(7)
    s = C.summarise_replicates(three)
    assert s["crps"]["mean"] == 3.0 and s["crps"]["sd"] == pytest.approx(math.sqrt(7), rel=1e-15)
    assert s["replicates"] == 3
    with pytest.raises(InputError) as e:
        C.summarise_replicates([])
    assert str(e.value) == "field 'per_replicate': no replicate to summarise"


# -- dtypes, shapes and rounding -----------------------------------------------------------------


def test_float32_weights_are_normalised_in_float64():
    # weights 1, 2 (1/3, 2/3) on 0 and 3, y = 1: E|X - y| = 5/3, E|X - X'| = 2 (2/9) 3 = 4/3,
    # CRPS = 5/3 - 2/3 = 1; at y = 3: F(3-) = 1/3, mass 2/3 -> mid-PIT 2/3. In float32, 1/3
    # is 0.3333333433: the results would be off by ~1e-8
    W = np.array([[1.0, 2.0]], dtype=np.float32)
    x = np.array([0.0, 3.0], dtype=np.float32)
    c = C.crps(np.array([1.0], dtype=np.float32), W, x)
    p = C.pit(np.array([3.0], dtype=np.float32), W, x)
    assert c.dtype == np.float64 and p.dtype == np.float64
    assert abs(c[0] - 1.0) < 1e-15 and abs(p[0] - 2 / 3) < 1e-15


def test_observations_may_come_as_a_column():
    W = np.array([[0.25, 0.75], [0.5, 0.5]])
    x = np.array([0.0, 2.0])
    y = np.array([[1.0], [2.0]])  # (n_obs, 1)
    np.testing.assert_allclose(C.crps(y, W, x), C.crps(y.ravel(), W, x), rtol=0, atol=0)
    # y = 1: F(1) = 1/4, no mass -> 0.25; y = 2: F(2-) = 1/2, mass 1/2 -> 0.75
    np.testing.assert_allclose(C.pit(y, W, x), [0.25, 0.75], rtol=0, atol=1e-15)
    np.testing.assert_allclose(C.pit_histogram(np.array([[0.25], [0.75]]), bins=2), [0.5, 0.5])


def test_pit_never_exceeds_one():
    # these weights sum to 1.0000000000000002 after normalisation (measured): all the mass
    # below y is still a PIT of exactly 1
    W = np.array([[0.9704494067485071, 0.07140859705348279]])
    assert C.pit(np.array([10.0]), W, np.array([0.0, 1.0])).tolist() == [1.0]


def test_pit_histogram_of_one_value_low_bins_and_float32():
    np.testing.assert_array_equal(C.pit_histogram(np.array([0.3])), np.eye(10)[3])
    low = C.pit_histogram(np.array([0.05, 0.15]))  # nothing above the second bin
    np.testing.assert_array_equal(low, [0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0])
    # float32 0.7 is 0.699999988..., in the bin [0.6, 0.7) (x 10 in float32 rounds to 7.0)
    np.testing.assert_array_equal(C.pit_histogram(np.array([0.7], dtype=np.float32)), np.eye(10)[6])


def test_levels_and_nominal_probabilities_match_to_ten_decimals():
    y = np.array([0.0, 0.5, 1.5, 2.5])
    q = np.tile([-1.0, 0.0, 1.0, 2.0], (4, 1))
    # levels with noise below 1e-10: 0.25 + 2e-11 still bounds the 50 % interval
    cov = C.central_coverage(y, q, [0.05, 0.25 + 2e-11, 0.75 - 2e-11, 0.95], nominal=(0.5,))
    assert cov == {"0.5": 0.5}
    # a nominal probability with noise: 0.9 + 4e-11 has the bounds 0.05 and 0.95
    cov = C.central_coverage(y, q, [0.05, 0.25, 0.75, 0.95], nominal=(0.90000000004,))
    assert cov == {"0.9": 0.75}
