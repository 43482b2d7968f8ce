"""Hand-computed answers for the pooling of the per-replicate predictive distributions
(:func:`srgpu.run.predictive.pooled_predictive`) and for the ``calibration`` block of
``summary.json`` (:func:`srgpu.run.predictive.calibration_summary`); issue 21, deliver 4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgpu.run.predictive import calibration_summary, pooled_predictive
from srgpu.schema import CALIBRATION_METRICS, PREDICTIVE_FLUXES


def test_pooled_moments_of_an_equal_mixture():
    # two replicates' distributions at two cells:
    # cell 0: N(1, 1) and N(3, 1) -> E[Y^2] = 2 and 10; mixture mean 2, E[Y^2] 6, SD sqrt(2)
    # cell 1: point masses at 5 and 5 -> mean 5, SD 0
    mean = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)
    second = np.array([[2.0, 25.0], [10.0, 25.0]], dtype=np.float32)
    m, sd = pooled_predictive(mean, second)
    assert m.dtype == np.float64 and sd.dtype == np.float64
    np.testing.assert_allclose(m, [2.0, 5.0], rtol=1e-15)
    np.testing.assert_allclose(sd, [math.sqrt(2.0), 0.0], rtol=1e-15)


def test_pooled_sd_is_zero_not_nan_when_rounding_makes_the_variance_negative():
    # a point mass at 0.1 stored in float32: E[Y^2] = 0.009999999776482582 but the mean read
    # back is 0.10000000149011612, whose square is 0.010000000298023226: variance -5.2e-10
    mean = np.array([[0.1]], dtype=np.float32)
    second = np.array([[0.01]], dtype=np.float32)
    m1 = float(np.float32(0.1))
    assert float(np.float32(0.01)) - m1 * m1 < 0  # the rounding the guard is for
    _, sd = pooled_predictive(mean, second)
    assert sd.tolist() == [0.0]


def _metrics(cov, crps, pit):
    return [*cov, crps, *pit]


def test_calibration_summary_by_hand():
    pit_a = [0.1] * 10
    pit_b = [0.2, 0.0] * 5
    values = np.array(
        [
            [_metrics((0.4, 0.8, 0.9), 10.0, pit_a), _metrics((0.5, 0.9, 1.0), 1.0, pit_b)],
            [_metrics((0.6, 1.0, 1.0), 14.0, pit_b), _metrics((0.5, 0.9, 0.9), 3.0, pit_a)],
        ]
    )
    assert values.shape == (2, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS))
    out = calibration_summary(values)
    assert list(out) == ["SR", "HR"]
    sr, hr = out["SR"], out["HR"]
    sd2 = math.sqrt(0.02)  # SD (ddof 1) of two values 0.2 apart
    assert sr["coverage"]["0.5"] == pytest.approx({"mean": 0.5, "sd": sd2}, rel=1e-12)
    assert sr["coverage"]["0.9"] == pytest.approx({"mean": 0.9, "sd": sd2}, rel=1e-12)
    assert sr["coverage"]["0.95"] == pytest.approx({"mean": 0.95, "sd": math.sqrt(0.005)})
    assert sr["crps"] == pytest.approx({"mean": 12.0, "sd": math.sqrt(8.0)}, rel=1e-15)
    assert sr["pit_hist"] == pytest.approx([0.15, 0.05] * 5, rel=1e-15)
    assert hr["coverage"]["0.5"] == {"mean": 0.5, "sd": 0.0}
    assert hr["coverage"]["0.95"] == pytest.approx({"mean": 0.95, "sd": math.sqrt(0.005)})
    assert hr["crps"] == pytest.approx({"mean": 2.0, "sd": math.sqrt(2.0)}, rel=1e-15)
    for block in (sr, hr):
        assert block["crps_units"] == "g m-2 yr-1"
        assert block["replicates"] == 2
        assert block["on"] == "each replicate's held-out 20 % with that replicate's forest"
        assert list(block["coverage"]) == ["0.5", "0.9", "0.95"]


def test_calibration_summary_of_one_replicate_has_no_sd():
    values = np.zeros((1, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)))
    values[0, 1, 3] = 7.0  # HR's CRPS
    out = calibration_summary(values)
    assert out["HR"]["crps"]["mean"] == 7.0 and math.isnan(out["HR"]["crps"]["sd"])
    assert math.isnan(out["SR"]["coverage"]["0.9"]["sd"])
    assert out["SR"]["replicates"] == 1 and len(out["SR"]["pit_hist"]) == 10


def test_float32_rows_are_averaged_in_float64():
    # three replicates' float32 rows 0.1, 0.2, 0.4 (stored as 0.10000000149, 0.20000000298,
    # 0.40000000596): their mean in float64 is 0.23333333681027094; averaged in float32 it
    # would be 0.23333334922790527
    rows = np.array([[0.1], [0.2], [0.4]], dtype=np.float32)
    exact = sum(float(v) for v in rows[:, 0]) / 3
    m, sd = pooled_predictive(rows, rows)  # E[Y^2] = E[Y]: sd = sqrt(m - m^2)
    assert m.tolist() == [exact]
    assert sd.tolist() == [math.sqrt(exact - exact * exact)]
    values = np.zeros((3, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS)), dtype=np.float32)
    values[:, 0, 3] = rows[:, 0]  # SR's CRPS
    assert calibration_summary(values)["SR"]["crps"]["mean"] == exact
