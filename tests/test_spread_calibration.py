"""Calibration of the replicate-spread band on held-out records (srgpu.run.spread_calibration):
hand-computed tiny cases, and the demo world, where the band of the replicates' forest means
covers held-out observations far less often than its nominal probability (and than the
predictive distribution on the same records)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.data.inputs import prepare_inputs
from srgpu.errors import InputError
from srgpu.run.ensemble import run_ensemble
from srgpu.run.replicate import train_replicate
from srgpu.run.spread_calibration import band_scores, spread_calibration, spread_calibration_summary
from srgpu.schema import SITE_FLUX, SITE_FOREST_MEAN, SITE_HELDOUT

# ----------------------------------------------------------------------------- by hand


def test_band_scores_by_hand():
    """Members 1, 2, 3, 4 (type-7 quantiles: q(p) = 1 + 3p): the 50 % interval is
    [1.75, 3.25], the 95 % one [1.075, 3.925]. CRPS = E|X - y| - E|X - X'| / 2 with
    E|X - X'| = 20 / 16 (the ordered pairs' |i - j| sum to 20)."""
    s = band_scores(2.5, np.array([4.0, 1.0, 3.0, 2.0]))
    assert s["coverage"] == {"0.5": True, "0.9": True, "0.95": True}
    assert s["pit"] == 0.5  # two members below, none equal
    assert s["crps"] == pytest.approx((1.5 + 0.5 + 0.5 + 1.5) / 4 - 20 / 32, abs=1e-15)  # 0.375
    s = band_scores(3.5, np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["coverage"] == {"0.5": False, "0.9": True, "0.95": True}  # 3.25 < 3.5 <= 3.85
    s = band_scores(3.9, np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["coverage"] == {"0.5": False, "0.9": False, "0.95": True}  # 3.85 < 3.9 <= 3.925
    s = band_scores(5.0, np.array([1.0, 2.0, 3.0, 4.0]))
    assert s["coverage"] == {"0.5": False, "0.9": False, "0.95": False}
    assert s["pit"] == 1.0
    assert s["crps"] == pytest.approx((4 + 3 + 2 + 1) / 4 - 20 / 32, abs=1e-15)  # 1.875
    # a tie: half of the member's mass below (mid-PIT); a point mass at y scores 0
    assert band_scores(2.0, np.array([1.0, 2.0]))["pit"] == 0.75
    one = band_scores(7.0, np.array([7.0]))
    assert one["crps"] == 0.0 and one["coverage"]["0.95"] and one["pit"] == 0.5


def test_spread_calibration_by_hand():
    """Three replicates, four records. Record 0 is held out by replicates 0 and 1 (band
    {10, 14}), record 1 by 0 ({20}), record 2 by 1 and 2 ({8, 12}), record 3 by 2 ({5}); the
    in-sample variant uses all three forest means."""
    y = np.array([12.0, 21.0, 13.0, 5.0])
    means = np.array(
        [
            [10.0, 20.0, 99.0, 0.0],
            [14.0, 50.0, 8.0, 0.0],
            [11.0, 30.0, 12.0, 5.0],
        ]
    )
    held = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]], dtype=np.float32)
    out = spread_calibration(y, means, held)
    # per record: coverage of the 50 % interval ([11, 13] for {10, 14}; [9, 11] for {8, 12}),
    # CRPS of a two-point band {a, b} at y: (|a-y| + |b-y|) / 2 - |a-b| / 4
    crps = {0: (2 + 2) / 2 - 4 / 4, 1: 1.0, 2: (5 + 1) / 2 - 4 / 4, 3: 0.0}
    cov50 = {0: 1.0, 1: 0.0, 2: 0.0, 3: 1.0}
    per_rep = [(0, 1), (0, 2), (2, 3)]  # each replicate's held-out records
    cov = [np.mean([cov50[i] for i in r]) for r in per_rep]
    score = [np.mean([crps[i] for i in r]) for r in per_rep]
    assert out["coverage"]["0.5"]["mean"] == pytest.approx(np.mean(cov), abs=1e-15)
    assert out["coverage"]["0.5"]["sd"] == pytest.approx(np.std(cov, ddof=1), abs=1e-15)
    assert out["crps"]["mean"] == pytest.approx(np.mean(score), abs=1e-15)
    assert out["crps"]["sd"] == pytest.approx(np.std(score, ddof=1), abs=1e-15)
    # PIT: record 0 -> 0.5 (bin 5), 1 -> 1 (bin 9), 2 -> 1 (bin 9), 3 -> 0.5 (bin 5)
    hist = np.zeros((3, 10))
    hist[0, [5, 9]] = 0.5
    hist[1, [5, 9]] = 0.5
    hist[2, [9, 5]] = 0.5
    np.testing.assert_allclose(out["pit_hist"], hist.mean(axis=0), atol=1e-15)
    assert out["members"] == {"mean": 1.5, "min": 1, "max": 2}
    assert out["replicates"] == 3 and out["exclude_trained"] is True
    # in-sample: every record's band is all three forest means
    ins = spread_calibration(y, means, held, exclude_trained=False)
    assert ins["members"] == {"mean": 3.0, "min": 3, "max": 3}
    band0 = np.sort(means[:, 0])  # {10, 11, 14}: 50 % interval [10.5, 12.5] covers 12
    assert band_scores(12.0, band0)["coverage"]["0.5"]


def test_a_calibrated_band_covers_its_nominal_share():
    """Known answer: when every forest mean and the observation are independent draws of one
    distribution (an exchangeable, calibrated band), the coverage is nominal up to the band's
    finite size (about 200 members here) and sampling, and the PIT histogram is flat."""
    rng = np.random.default_rng(7)
    n_rep, n_rec = 1000, 1500
    means = rng.normal(size=(n_rep, n_rec))
    held = (rng.random((n_rep, n_rec)) < 0.2).astype(np.float32)
    out = spread_calibration(rng.normal(size=n_rec), means, held)
    assert 180 < out["members"]["mean"] < 220
    for level in ("0.5", "0.9", "0.95"):
        # measured: 0.488, 0.890, 0.934 (binomial SD over 1500 records: 0.013, 0.008, 0.006)
        assert out["coverage"][level]["mean"] == pytest.approx(float(level), abs=0.03)
    np.testing.assert_allclose(out["pit_hist"], 0.1, atol=0.025)


def test_spread_calibration_refuses_bad_flags():
    y, m = np.zeros(2), np.zeros((2, 2))
    with pytest.raises(InputError, match="0 or 1"):
        spread_calibration(y, m, np.array([[1, np.nan], [0, 1]]))
    with pytest.raises(InputError, match="replicates, records"):
        spread_calibration(y, m, np.ones((2, 3)))
    with pytest.raises(InputError, match="holds a record out"):
        spread_calibration(y, m, np.zeros((2, 2)))


# ----------------------------------------------------------------------------- the demo world

CFG = EnsembleConfig(replicates=24, batch_size=8, forest=ForestConfig(trees=25))


@pytest.fixture(scope="module")
def inputs():
    return prepare_inputs(CFG)


@pytest.fixture(scope="module")
def run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("spread")
    summary = run_ensemble(CFG, out=out, inputs=inputs)
    return out, summary, xr.open_zarr(out / "ensemble.zarr", consolidated=False).load()


def test_stored_rows_are_the_regrown_forests(run, inputs):
    """Replicate 17's stored forest means and held-out flags = its forest re-grown from its
    seed, predicting every record of its flux, and its split."""
    _, _, ds = run
    flux_of = np.array([str(v) for v in ds[SITE_FLUX].values])
    for flux in ("SR", "HR"):
        forest, split = train_replicate(inputs, CFG, replicate=17, flux=flux)
        cols = flux_of == flux
        np.testing.assert_array_equal(
            ds[SITE_FOREST_MEAN].values[17, cols], forest.predict(inputs.fluxes[flux].X)
        )
        held = np.zeros(cols.sum())
        held[split.test] = 1
        np.testing.assert_array_equal(ds[SITE_HELDOUT].values[17, cols], held)


def test_spread_band_covers_far_below_nominal_on_the_demo(run):
    """The demo world, 24 replicates x 25 trees (6.4 band members a record on average).
    Measured: the spread band's central 95 % interval covers 23.5 % (SR) and 24.6 % (HR) of the
    held-out observations, the predictive distribution's 88.3 % and 87.7 % on the same records;
    the spread band's PIT histogram piles up in its outer tenths (0.34-0.42 each against a flat
    0.1). With 60 replicates (15.7 members) the spread band covers 31.8 % and 34.1 %."""
    out, summary, ds = run
    for flux in ("SR", "HR"):
        spread = summary["calibration_spread"][flux]
        pred = summary["calibration"][flux]
        # the same keys, so the two can be compared (the band has no leaf membership)
        assert set(spread) >= set(pred) - {"membership"} and "membership" in pred
        assert set(spread["coverage"]) == {"0.5", "0.9", "0.95"}
        assert spread["replicates"] == 24 and len(spread["pit_hist"]) == 10
        assert sum(spread["pit_hist"]) == pytest.approx(1.0)
        c95 = spread["coverage"]["0.95"]["mean"]
        assert c95 < 0.40  # nominal 0.95
        assert pred["coverage"]["0.95"]["mean"] > 0.80
        assert pred["coverage"]["0.95"]["mean"] - c95 > 0.45
        # with ~5 members a calibrated band's full range would still cover ~2/3 of new draws
        assert 3 < spread["members"]["mean"] < 8
        h = spread["pit_hist"]
        assert h[0] + h[-1] > 0.5 and max(h[1:-1]) < 0.1
        # the in-sample variant (forests that trained on the record included) covers more:
        # their means are pulled towards the observation
        ins = spread_calibration_summary(ds, exclude_trained=False)[flux]
        assert ins["coverage"]["0.95"]["mean"] > c95
        assert ins["members"]["min"] == 24


def test_cli_prints_both_bands(run):
    """``srgpu ensemble``'s closing table shows the spread band's coverage beside the
    predictive one, rounded from summary.json."""
    from srgpu.cli._common import console
    from srgpu.cli.ensemble import print_predictive

    _, summary, _ = run
    width = console.width
    console.width = 200  # no wrapping in the captured text
    try:
        with console.capture() as cap:
            print_predictive(summary)
    finally:
        console.width = width
    text = cap.get()
    assert "spread band" in text and "replicate-spread band's, 50/90/95 %" in text
    for flux in ("SR", "HR"):
        c = summary["calibration_spread"][flux]["coverage"]
        shown = "/".join(f"{100 * c[k]['mean']:.0f}" for k in ("0.5", "0.9", "0.95")) + " %"
        assert shown in text
