"""Calibration metrics: known answers (CRPS of a point mass, of a uniform discrete set, of a
normal distribution; PIT and coverage of calibrated synthetic forecasts) and held-out
calibration of quantile regression forests on the demo world."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgpu import calibration as C
from srgpu.errors import InputError


def _crps_integral(y: float, x: np.ndarray, w: np.ndarray) -> float:
    """``int (F(z) - 1{z >= y})^2 dz`` exactly: both functions are piecewise constant between
    the sorted breakpoints ``x`` and ``y``."""
    pts = np.sort(np.append(x, y))
    total = 0.0
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        F = w[x <= a].sum()
        H = 1.0 if a >= y else 0.0
        total += (F - H) ** 2 * (b - a)
    return total


def test_crps_point_mass_is_absolute_error():
    y = np.array([3.0, -1.0, 2.5])
    x = np.array([-2.0, 0.5, 2.5, 7.0])
    W = np.zeros((3, 4))
    W[:, 2] = 1.0  # all mass on 2.5
    np.testing.assert_allclose(C.crps(y, W, x), [0.5, 3.5, 0.0], rtol=0, atol=1e-15)


def test_crps_uniform_discrete_set_equals_integral_and_pair_formula():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        x = np.sort(rng.normal(size=n) * 10)
        y = float(rng.normal() * 12)
        w = np.full(n, 1.0 / n)
        got = C.crps(np.array([y]), w[None, :], x)[0]
        pairs = np.abs(x - y).mean() - 0.5 * np.abs(x[:, None] - x[None, :]).mean()
        assert got == pytest.approx(_crps_integral(y, x, w), rel=1e-12, abs=1e-12)
        assert got == pytest.approx(pairs, rel=1e-12, abs=1e-12)
        assert C.crps_sample(np.array([y]), rng.permutation(x)[None, :])[0] == pytest.approx(got)


def test_crps_weighted_set_equals_integral():
    rng = np.random.default_rng(2)
    x = np.sort(rng.uniform(0, 100, size=40))
    W = rng.dirichlet(np.ones(40), size=15)
    W[:, ::3] = 0.0  # zero weights are fine
    W /= W.sum(axis=1, keepdims=True)
    y = rng.uniform(-10, 110, size=15)
    got = C.crps(y, W, x)
    want = [_crps_integral(y[i], x, W[i]) for i in range(15)]
    np.testing.assert_allclose(got, want, rtol=1e-11)


def test_crps_of_a_normal_distribution():
    """A fine quantile grid of N(0, 1): CRPS(y) = y (2 Phi(y) - 1) + 2 phi(y) - 1/sqrt(pi)."""
    from scipy.stats import norm

    n = 20001
    x = norm.ppf((np.arange(n) + 0.5) / n)
    y = np.array([0.0, 0.7, -2.0])
    got = C.crps(y, np.full((3, n), 1.0 / n), x)
    want = y * (2 * norm.cdf(y) - 1) + 2 * norm.pdf(y) - 1 / math.sqrt(math.pi)
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_pit_is_uniform_for_calibrated_discrete_forecasts():
    rng = np.random.default_rng(3)
    n_obs, n_val = 20000, 12
    x = np.sort(rng.integers(0, 8, size=n_val)).astype(float)  # ties between values too
    W = rng.dirichlet(np.ones(n_val), size=n_obs)
    y = np.array([rng.choice(x, p=W[i]) for i in range(n_obs)])  # drawn from the forecast
    hist = C.pit_histogram(C.pit(y, W, x, rng=np.random.default_rng(4)))
    assert hist.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(hist, 0.1, atol=0.012)  # binomial sd 0.0021
    # a forecast entirely below the observation: PIT 1; entirely above: 0; mid-PIT at a mass
    p = C.pit(np.array([9.0, -1.0, 2.0]), np.ones((3, 1)), np.array([2.0]))
    np.testing.assert_array_equal(p, [1.0, 0.0, 0.5])


def test_coverage_of_calibrated_continuous_forecasts():
    from scipy.stats import norm

    rng = np.random.default_rng(5)
    mu = rng.normal(size=40000) * 5
    y = mu + rng.normal(size=mu.size) * 2
    levels = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)
    q = mu[:, None] + 2 * norm.ppf(levels)[None, :]
    cov = C.central_coverage(y, q, levels)
    assert set(cov) == {"0.5", "0.9", "0.95"}
    for k, v in cov.items():
        assert v == pytest.approx(float(k), abs=0.01)  # binomial sd <= 0.0025
    assert C.interval_coverage(np.array([1.0, 2.0, 3.0]), np.array([1, 0, 0]), [2, 2, 2]) == 2 / 3
    with pytest.raises(InputError, match="interval bound"):
        C.central_coverage(y, q[:, :3], levels[:3])


def test_summarise_replicates_and_bad_inputs():
    reps = [
        {"coverage": {"0.5": 0.4, "0.9": 0.8}, "pit_hist": [0.5, 0.5], "crps": 2.0},
        {"coverage": {"0.5": 0.6, "0.9": 1.0}, "pit_hist": [0.3, 0.7], "crps": 4.0},
    ]
    s = C.summarise_replicates(reps)
    assert s["coverage"]["0.5"]["mean"] == pytest.approx(0.5)
    assert s["coverage"]["0.9"]["sd"] == pytest.approx(math.sqrt(0.02))
    assert s["pit_hist"]["mean"] == pytest.approx([0.4, 0.6])
    assert s["crps"] == pytest.approx({"mean": 3.0, "sd": math.sqrt(2.0)})
    with pytest.raises(InputError, match="sorted"):
        C.crps(np.array([0.0]), np.ones((1, 2)), np.array([1.0, 0.0]))
    with pytest.raises(InputError, match="positive total"):
        C.crps(np.array([0.0]), np.zeros((1, 2)), np.array([0.0, 1.0]))
    with pytest.raises(InputError, match="n_obs"):
        C.pit(np.array([0.0, 1.0]), np.ones((1, 2)), np.array([0.0, 1.0]))


# ----------------------------------------------------------------------------- demo world
@pytest.fixture(scope="module")
def demo_calibration():
    """Held-out calibration of 5 replicates' quantile regression forests (500 trees, all-rows
    membership) per flux on the demo world, each forest on its own replicate's 20 %; beside
    it (``"oob"``, ``"oracle"``) the calibration, on the same held-out records, of the same
    trees with out-of-bag leaf members only (``membership="oob"``, linear rule, as a run
    computes it) and the coverage of the demo world's true conditional distribution
    (``benchmarks/demo_coverage.py``)."""
    from benchmarks.demo_coverage import oracle_coverage, record_truth
    from srgpu.config import EnsembleConfig
    from srgpu.data.demo.srdb import _NOISE_SD
    from srgpu.data.inputs import prepare_inputs
    from srgpu.forest import predictive as P
    from srgpu.run.replicate import train_replicate
    from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

    cfg = EnsembleConfig(replicates=5)
    inputs = prepare_inputs(cfg)
    out = {}
    for flux in ("SR", "HR"):
        data = inputs.fluxes[flux]
        truth = record_truth(inputs, flux)
        reps, oob, oracle = [], [], []
        for r in range(cfg.replicates):
            forest, split = train_replicate(inputs, cfg, r, flux)
            tr, te = split.train, split.test
            tables = P.leaf_tables([forest], X=data.X, y=data.y, train_index=[tr])
            reps.append(
                P.heldout_calibration(tables, data.X[te], data.y[te], rng=np.random.default_rng(r))
            )
            seed = replicate_seed(cfg.seed, r, flux, PURPOSE_FOREST)
            inbag = P.inbag_counts(n_train=tr.size, forest=cfg.forest, seed=seed)
            honest = P.leaf_tables(
                [forest], X=data.X, y=data.y, train_index=[tr], membership="oob", inbag=[inbag]
            )
            oob.append(
                P.heldout_calibration(honest, data.X[te], data.y[te], rng=np.random.default_rng(r))
            )
            oracle.append(oracle_coverage(data.y[te], truth[te], _NOISE_SD))
        out[flux] = C.summarise_replicates(reps)
        out[flux]["oob"] = C.summarise_replicates(oob)
        out[flux]["oob"]["undefined"] = sum(c["undefined"] for c in oob)
        out[flux]["oracle"] = {k: float(np.mean([c[k] for c in oracle])) for k in oracle[0]}
    return out


def test_demo_sr_heldout_coverage_within_5_points(demo_calibration):
    """Measured (seed 0, 5 replicates x 174 held-out SR records): 45.2 / 86.9 / 91.8 %."""
    cov = demo_calibration["SR"]["coverage"]
    for k in ("0.5", "0.9", "0.95"):
        assert abs(cov[k]["mean"] - float(k)) <= 0.05, (k, cov[k])
    s = demo_calibration["SR"]
    assert sum(s["pit_hist"]["mean"]) == pytest.approx(1.0)
    assert 0 < s["crps"]["mean"] < 100  # g C m-2 yr-1; the demo's SR is ~300-1500


def test_demo_hr_heldout_coverage_90_95_within_6_points(demo_calibration):
    """HR (5 replicates x 67 held-out records): 90 and 95 % intervals cover 84.5 / 91.3 %."""
    cov = demo_calibration["HR"]["coverage"]
    for k in ("0.9", "0.95"):
        assert abs(cov[k]["mean"] - float(k)) <= 0.06, (k, cov[k])


HR_50_UNDER = (
    "known property, not a defect: the HR forests' central 50 % interval covers 39 % of "
    "held-out demo records because Meinshausen weights read the leaves' in-sample values, the "
    "same y that chose the splits (nodesize 5), which are more alike than new observations; "
    "the same trees with out-of-bag leaf members (predictive_membership = 'oob') cover 49 % "
    "(tests below); srgpu's default stays quantregForest's in-sample leaves, the paper's "
    "(docs/predictive.md, 'Why the demo's intervals are too narrow'); issue 14 asks for 5 points"
)


@pytest.mark.xfail(strict=True, reason=HR_50_UNDER)
def test_demo_hr_heldout_coverage_50_within_5_points(demo_calibration):
    cov = demo_calibration["HR"]["coverage"]["0.5"]["mean"]
    assert abs(cov - 0.5) <= 0.05


def test_demo_heldout_records_follow_the_true_noise(demo_calibration):
    """The held-out bookkeeping and the demo's noise are sound: the true conditional
    distribution (truth x lognormal, log-SD 0.17) covers the same held-out records within 5
    points of nominal (measured SR 52.0 / 90.6 / 95.1 %, HR 46.6 / 90.7 / 98.5 %)."""
    for flux in ("SR", "HR"):
        for k, v in demo_calibration[flux]["oracle"].items():
            assert abs(v - float(k)) <= 0.05, (flux, k, v)


def test_demo_hr_undercoverage_is_the_in_sample_leaves(demo_calibration):
    """The diagnosis of the xfail above: on the same trees, leaves holding only each tree's
    out-of-bag records (whose y did not choose its splits) cover HR's held-out 50 % 10 points
    more than the in-sample leaves (measured: see the test below), and SR's more too."""
    hr = demo_calibration["HR"]
    assert hr["oob"]["coverage"]["0.5"]["mean"] - hr["coverage"]["0.5"]["mean"] >= 0.08
    sr = demo_calibration["SR"]
    assert sr["oob"]["coverage"]["0.5"]["mean"] > sr["coverage"]["0.5"]["mean"]


def test_demo_oob_membership_heldout_coverage_within_5_points(demo_calibration):
    """Issue 14 item 5 with ``predictive_membership = "oob"``: the central 50 / 90 / 95 %
    intervals of the out-of-bag predictive distribution (linear rule, as a run computes it)
    cover the held-out demo records within 5 points of nominal, for SR and HR. Measured (seed
    0, 5 replicates x 500 trees; SR 174, HR 67 held-out records a replicate): SR 54.0 / 90.3 /
    93.8 %, HR 49.3 / 89.6 / 92.8 % (closest to the bound: SR's 50 %, 1.0 point inside);
    mean CRPS SR 53.4, HR 33.0 g C m-2 yr-1 against 55.8 and 34.4 with "all"; no held-out
    record without a contributing tree."""
    for flux in ("SR", "HR"):
        oob = demo_calibration[flux]["oob"]
        assert oob["undefined"] == 0
        for k, v in oob["coverage"].items():
            assert abs(v["mean"] - float(k)) <= 0.05, (flux, k, v)
        assert sum(oob["pit_hist"]["mean"]) == pytest.approx(1.0)
