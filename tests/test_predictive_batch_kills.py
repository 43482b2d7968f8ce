"""The run stage of the predictive distribution (``srgpu.run.predictive``) on a tiny hand-built
batch: two forests per flux of 6 trees, a grid of 4 cells x 3 years (issue 21: the mutation run
of ``predictive_batch``, ``add_weights``, ``pooled_order_statistics`` and the memory check).

Independent answers: the grid's moments and the pooled weights from brute-force Meinshausen
weights (scikit-learn's ``apply``, plain loops: ``tests/test_predictive.py::_brute_weights``),
averaged over the years by hand; order statistics and memory by hand.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.constants import NORMAL_MAD_SCALE
from srgpu.errors import ConfigError
from srgpu.forest import predictive as P
from srgpu.forest.train import fit_forest
from srgpu.run.predictive import (
    QUANTILES_MEMORY_LIMIT_BYTES,
    add_weights,
    check_quantiles_memory,
    pooled_order_statistics,
    predictive_batch,
    predictive_rows,
    quantiles_memory_bytes,
)
from srgpu.schema import (
    CALIBRATION,
    CALIBRATION_METRICS,
    PREDICTIVE_FLUXES,
    PREDICTIVE_QUANTILE_LEVELS,
    SITE_FOREST_MEAN,
    SITE_HELDOUT,
)
from tests.test_predictive import _brute_weights

N_YEARS, N_CELLS = 3, 4


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(17)
    fluxes, grid_X, trained = {}, {}, {}
    for k, flux in enumerate(PREDICTIVE_FLUXES):
        n = 40 + 4 * k  # the fluxes' record tables differ in size
        X = rng.normal(size=(n, 3)).astype(np.float32)
        y = 100.0 * (k + 1) + 30 * X[:, 0] + rng.normal(scale=5, size=n)
        fluxes[flux] = SimpleNamespace(X=X, y=y)
        grid_X[flux] = rng.normal(size=(N_YEARS * N_CELLS, 3)).astype(np.float32)
        trained[flux] = []
        for r in range(2):
            perm = rng.permutation(n)
            split = SimpleNamespace(train=np.sort(perm[: n - 10]), test=np.sort(perm[n - 10 :]))
            seed = np.random.SeedSequence(23, spawn_key=(k, r))
            forest = fit_forest(
                X[split.train], y[split.train], forest=ForestConfig(trees=6), seed=seed
            )
            trained[flux].append((forest, split))
    inputs = SimpleNamespace(n_years=N_YEARS, n_cells=N_CELLS, fluxes=fluxes, grid_X=grid_X)
    return trained, inputs


def _brute(batch, flux, r):
    """Brute-force weights of forest ``r`` of ``flux`` at the grid rows (rows x records in y
    order), the member counts and the sorted y."""
    trained, inputs = batch
    data = inputs.fluxes[flux]
    forest, split = trained[flux][r]
    return _brute_weights(data.X, data.y, [forest], [split.train], None, inputs.grid_X[flux], "all")


def _year_mean(v):
    """Per cell, the mean of its three yearly values (rows year * N_CELLS + cell)."""
    return np.array([(v[c] + v[N_CELLS + c] + v[2 * N_CELLS + c]) / 3 for c in range(N_CELLS)])


def test_replicate_moments_calibration_and_site_rows(batch):
    trained, inputs = batch
    out, weights = predictive_batch(trained, inputs)
    assert weights == {}
    cal = out[CALIBRATION]
    assert cal.shape == (2, len(PREDICTIVE_FLUXES), len(CALIBRATION_METRICS))
    for j, flux in enumerate(PREDICTIVE_FLUXES):
        mean = out[f"{flux}_pred_replicate_mean"]
        second = out[f"{flux}_pred_replicate_second"]
        assert mean.shape == second.shape == (2, N_CELLS)
        assert mean.dtype == second.dtype == np.float32
        data = inputs.fluxes[flux]
        for r in range(2):
            W, _, ys = _brute(batch, flux, r)
            # float32 rows: 6e-8 relative at most
            np.testing.assert_allclose(mean[r], _year_mean(W @ ys), rtol=2e-7)
            np.testing.assert_allclose(second[r], _year_mean(W @ ys**2), rtol=2e-7)
            forest, split = trained[flux][r]
            tables = P.leaf_tables([forest], X=data.X, y=data.y, train_index=[split.train])
            c = P.heldout_calibration(tables, data.X[split.test], data.y[split.test])
            want = [c["coverage"]["0.5"], c["coverage"]["0.9"], c["coverage"]["0.95"], c["crps"]]
            np.testing.assert_array_equal(cal[r, j], [*want, *c["pit_hist"]])
            assert c["n"] == 10 and sum(c["pit_hist"]) == pytest.approx(1.0, rel=1e-12)
    # the replicate-spread rows: each forest's mean at every record of SR then HR, held-out flags
    sizes = [inputs.fluxes[f].y.size for f in PREDICTIVE_FLUXES]
    assert out[SITE_FOREST_MEAN].shape == out[SITE_HELDOUT].shape == (2, sum(sizes))
    assert out[SITE_HELDOUT].sum(axis=1).tolist() == [20.0, 20.0]
    got = predictive_rows(trained, inputs)
    assert sorted(got) == sorted(out)
    for name in out:
        np.testing.assert_array_equal(got[name], out[name])


def test_pooled_weights_of_the_batch(batch):
    """``pooled_over=K``: per cell, (1 / K) sum over the batch's forests of (1 / n_years) sum
    over the years of the forest's weights at the cell-year row; K = 4 (a run of 4 replicates
    of which this batch holds 2: the weights sum to 1/2)."""
    trained, inputs = batch
    out, weights = predictive_batch(trained, inputs, pooled_over=4)
    assert set(weights) == set(PREDICTIVE_FLUXES)
    for flux in PREDICTIVE_FLUXES:
        acc = weights[flux]
        n_rec = inputs.fluxes[flux].y.size
        want = np.zeros((N_CELLS, n_rec))
        want_counts = np.zeros(N_CELLS)
        for r in range(2):
            W, counts, _ = _brute(batch, flux, r)
            want += np.stack([_year_mean(W[:, j]) for j in range(n_rec)], axis=1) / 4
            want_counts += _year_mean(counts) / 4
        assert acc.weights.shape == (N_CELLS, n_rec)
        np.testing.assert_allclose(acc.weights, want, rtol=0, atol=1e-15)
        np.testing.assert_allclose(acc.totals, 0.5, rtol=1e-14)
        np.testing.assert_allclose(acc.counts, want_counts, rtol=1e-13)
    plain, _ = predictive_batch(trained, inputs)
    for name in plain:
        np.testing.assert_array_equal(out[name], plain[name])


def test_leaf_moments_for_the_fused_walk(batch):
    """With ``leaf_moments``: each forest's per-node leaf means of y and y**2 (by hand from the
    records that reach each leaf), and no grid moments in the rows."""
    trained, inputs = batch
    leaf_moments: dict = {}
    out, _ = predictive_batch(trained, inputs, leaf_moments=leaf_moments)
    assert not any(
        name.endswith(("_pred_replicate_mean", "_pred_replicate_second")) for name in out
    )
    assert CALIBRATION in out and SITE_FOREST_MEAN in out
    from srgpu.forest.grown import as_sklearn

    for flux in PREDICTIVE_FLUXES:
        data = inputs.fluxes[flux]
        assert len(leaf_moments[flux]) == 2
        for r, (forest, split) in enumerate(trained[flux]):
            got = leaf_moments[flux][r]
            offset = 0
            want = np.zeros_like(got)
            for est in as_sklearn(forest).estimators_:
                leaf = est.apply(data.X[split.train])
                for node in np.unique(leaf):
                    yy = data.y[split.train][leaf == node]
                    want[offset + node] = [yy.mean(), (yy**2).mean()]
                offset += est.tree_.node_count
            np.testing.assert_allclose(got, want, rtol=1e-13)


def test_add_weights_sums_in_place():
    def part(w, t, c):
        return SimpleNamespace(weights=np.array(w, float), totals=np.array(t, float),
                               counts=np.array(c, float))  # fmt: skip

    first = {f: part([[0.25, 0.5]], [0.75], [3.0]) for f in PREDICTIVE_FLUXES}
    total = add_weights(None, first)
    assert total == first and total is not first  # taken as it is, in a new dict
    second = {f: part([[0.125, 0.0]], [0.125], [1.5]) for f in PREDICTIVE_FLUXES}
    same = add_weights(total, second)
    assert same is total
    for f in PREDICTIVE_FLUXES:
        assert total[f].weights.tolist() == [[0.375, 0.5]]
        assert total[f].totals.tolist() == [0.875]
        assert total[f].counts.tolist() == [4.5]


def test_pooled_order_statistics_by_hand():
    """Row 0: weight 1/4 on each of y = 1, 2, 3, 4 with member count 4 (frequencies 1 each):
    type-7 quantiles 1 + 3 p, median 2.5, deviations 1.5, 0.5, 0.5, 1.5 -> MAD 1.
    Row 1: weight 1/2 on 2 and on 4 with count 2: quantiles 2 + 2 p, median 3, MAD 1."""
    w = np.array([[0.25, 0.25, 0.25, 0.25], [0.0, 0.5, 0.0, 0.5]])
    out = pooled_order_statistics(w, np.array([1.0, 1.0]), np.array([4.0, 2.0]),
                                  np.array([1.0, 2.0, 3.0, 4.0]))  # fmt: skip
    assert out["pred_median"].tolist() == [2.5, 3.0]
    assert out["pred_mad"].tolist() == [1.0, 1.0]
    np.testing.assert_allclose(out["pred_mad_scaled"], [NORMAL_MAD_SCALE] * 2, rtol=1e-15)
    assert set(out) == {"pred_median", "pred_mad", "pred_mad_scaled", *PREDICTIVE_QUANTILE_LEVELS}
    for kind, p in PREDICTIVE_QUANTILE_LEVELS.items():
        np.testing.assert_allclose(out[kind], [1 + 3 * p, 2 + 2 * p], rtol=1e-14, err_msg=kind)


def _inputs(n_cells, sizes):
    fluxes = {
        f: SimpleNamespace(y=np.zeros(n)) for f, n in zip(PREDICTIVE_FLUXES, sizes, strict=True)
    }
    return SimpleNamespace(n_cells=n_cells, fluxes=fluxes)


def test_quantiles_memory_by_hand():
    """10 cells, 5 SR and 7 HR records: per cell (5 + 2) + (7 + 2) = 16 float64, twice:
    2 x 8 x 10 x 16 = 2560 bytes."""
    inputs = _inputs(10, (5, 7))
    assert quantiles_memory_bytes(inputs) == 2560
    assert check_quantiles_memory(inputs, limit_bytes=2560) == 2560  # at the limit: accepted
    with pytest.raises(ConfigError) as e:
        check_quantiles_memory(inputs, limit_bytes=2559)
    assert str(e.value) == (
        "predictive = 'quantiles' needs 2,560 bytes (0.00 GB) for the pooled weights "
        "(10 cells x records [SR 5, HR 7] x 8 bytes, twice), above the limit of 2,559 bytes "
        "(0 GB); use --predictive moments (mean, SD and calibration, no quantiles), or a "
        "smaller grid or record table"
    )
    # the default limit is 8 GB: 2 x 8 x 25e6 x 20 = 8e9 bytes is accepted, one cell more is not
    assert QUANTILES_MEMORY_LIMIT_BYTES == 8_000_000_000
    big = _inputs(25_000_000, (9, 7))
    assert check_quantiles_memory(big) == 8_000_000_000
    with pytest.raises(ConfigError, match=r"8,000,000,320 bytes \(8\.00 GB\).*limit of "
                       r"8,000,000,000 bytes \(8 GB\)"):  # fmt: skip
        check_quantiles_memory(_inputs(25_000_001, (9, 7)))


def test_quantiles_memory_message_rounds_at_the_boundaries():
    """GB figures of the message at rounding boundaries: 5,000,000 bytes is 0.005 GB, shown as
    0.01 (12,500 cells, 10 + 11 records: 2 x 8 x 12,500 x 25); a limit of 1.5e9 bytes is shown
    as 2 GB (1.6e9 needed: 2 x 8 x 1e7 x 10)."""
    with pytest.raises(ConfigError, match=r"needs 5,000,000 bytes \(0\.01 GB\)"):
        check_quantiles_memory(_inputs(12_500, (10, 11)), limit_bytes=4_999_999)
    with pytest.raises(ConfigError, match=r"\(1\.60 GB\).*limit of 1,500,000,000 bytes \(2 GB\)"):
        check_quantiles_memory(_inputs(10_000_000, (3, 3)), limit_bytes=1_500_000_000)
