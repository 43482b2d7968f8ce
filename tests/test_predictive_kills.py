"""Edges of the predictive distribution's Python side (``srgpu.forest.predictive``) with
hand-made answers: errors (with their field, value and expectation), empty inputs, the
per-forest subset, moments of hand-made forests, the held-out calibration in chunks, on the
tiny forests of ``tests/test_predictive.py`` (issue 21: the mutation run of the module)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from srgpu import calibration as C
from srgpu.config import ForestConfig
from srgpu.errors import ConfigError, InputError
from srgpu.forest import predictive as P
from srgpu.forest.grown import as_sklearn
from srgpu.forest.train import fit_forest
from tests.test_predictive import (
    _brute_weights,
    _records,
    _weighted_inverted,
    _weighted_linear,
    tiny_forests,
)


@pytest.fixture(scope="module")
def tiny():
    """The two tiny forests of tests/test_predictive.py (:func:`tiny_forests`)."""
    return tiny_forests()


def test_predictive_moments_sd_and_pooled_by_hand():
    """Forest 0: mean 1, E[Y^2] 2 (SD 1); forest 1: mean 3, E[Y^2] 9 (SD 0); a variance of
    -1e-12 from rounding gives SD 0. Pooled: mean 2, E[Y^2] 5.5, SD sqrt(1.5)."""
    m = P.PredictiveMoments(mean=np.array([[1.0, 1.0], [3.0, 3.0]]),
                            second=np.array([[2.0, 1.0 - 1e-12], [9.0, 9.0]]))  # fmt: skip
    np.testing.assert_array_equal(m.sd(), [[1.0, 0.0], [0.0, 0.0]])
    mean, sd = m.pooled()
    np.testing.assert_array_equal(mean, [2.0, 2.0])
    np.testing.assert_allclose(sd, [math.sqrt(1.5), math.sqrt(1.0 - 0.5e-12)], rtol=1e-15)


def test_inbag_counts_without_bootstrap_are_ones():
    c = P.inbag_counts(n_train=7, forest=ForestConfig(trees=3, bootstrap=False),
                       seed=np.random.SeedSequence(1))  # fmt: skip
    assert c.shape == (3, 7) and c.dtype == np.int32 and (c == 1).all()
    b = P.inbag_counts(n_train=7, forest=ForestConfig(trees=3), seed=np.random.SeedSequence(1))
    assert b.dtype == np.int32 and b.sum(axis=1).tolist() == [7, 7, 7]
    rng = np.random.default_rng(np.random.SeedSequence(1))  # the same draw, by hand
    boot = rng.integers(0, 7, size=(3, 7))
    assert b.tolist() == [np.bincount(boot[t], minlength=7).tolist() for t in range(3)]


def test_leaf_tables_errors_name_field_value_and_expectation(tiny):
    X, y, forests, train, inbag, rows = tiny
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y, train_index=train[:1])
    assert str(e.value) == (
        "field 'train_index': one training index per forest is needed (got 1); expected 2 arrays"
    )
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    with pytest.raises(ConfigError, match="threads must be an integer"):
        P.predictive_summary(t, rows, threads=0)
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="inbag", inbag=inbag[:1])
    assert (e.value.field, e.value.value) == ("inbag", 1)
    assert e.value.expected == "2 arrays of shape (trees, n_train)"
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="inbag")
    assert (e.value.field, e.value.value) == ("inbag", None)
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="inbag",
                      inbag=[inbag[0], inbag[1][:, :-1]])  # fmt: skip
    assert str(e.value) == (
        "field 'inbag[1]': bootstrap counts do not match the forest (got (6, 35)); "
        "expected (6, 36), counts at most 255"
    )
    for membership in ("inbag", "oob"):  # counts that leave a grown leaf without in-bag rows
        holed = [inbag[0], inbag[1].copy()]
        leaves = as_sklearn(forests[1]).estimators_[2].apply(X[train[1]])
        holed[1][2, leaves == leaves[0]] = 0
        with pytest.raises(InputError) as e:
            P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership,
                          inbag=holed)  # fmt: skip
        node = int(leaves[0]) + int(P.forest_arrays(forests).tree_offsets[6 + 2])
        assert (e.value.field, e.value.value) == ("inbag[1]", f"leaf node {node}")
        assert "no in-bag record reaches" in str(e.value)
        assert e.value.expected == "the in-bag counts the forest was grown on"
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y[:-1], train_index=train)
    assert e.value.field == "X" and e.value.value == ((48, 3), (47,))
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X[:, 0], y=y, train_index=train)
    assert e.value.field == "X"
    bad = y.copy()
    bad[5] = np.inf
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=bad, train_index=train)
    assert (e.value.field, e.value.expected) == ("y", "finite values")
    with pytest.raises(ConfigError, match=r"\('all', 'inbag', 'oob'\), got 'honest'"):
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="honest")


def test_tables_properties_and_subset(tiny):
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    assert t.n_forests == 2 and t.n_records == 48 and t.membership == "all"
    np.testing.assert_array_equal(t.moment1, t.moments[:, 0])
    np.testing.assert_array_equal(t.moment2, t.moments[:, 1])
    assert t.nbytes == sum(
        a.nbytes
        for a in (t.leaf_start, t.members, t.member_weight, t.leaf_size, t.moments, t.packed,
                  t.leaf_offset)
    )  # fmt: skip
    assert t.nbytes > t.packed.nbytes > 0
    for i in range(2):
        s = t.subset(i)
        assert s.n_forests == 1 and s.forests == (forests[i],)
        np.testing.assert_array_equal(s.arrays.forest_offsets, t.arrays.forest_offsets[i : i + 2])
        W, _, ys = _brute_weights(X, y, forests[i : i + 1], train[i : i + 1], None, rows, "all")
        np.testing.assert_allclose(P.predictive_moments(s, rows).mean[0], W @ ys, rtol=1e-13)
    np.testing.assert_array_equal(t.arrays.forest_offsets, [0, 6, 12])  # not changed in place
    for i in (2, -1):
        with pytest.raises(IndexError, match=rf"forest {i} not in \[0, 2\)"):
            t.subset(i)
    bare = P.leaf_tables(forests, X=X, y=y, train_index=train)
    import dataclasses

    bare = dataclasses.replace(bare, forests=())
    assert bare.subset(1).forests == ()
    with pytest.raises(InputError) as e:
        P.moment_forests(bare)
    assert str(e.value) == "field 'tables.forests': the tables keep no forests"
    # the moment forests keep the trees' hyper-parameters (a refit or export reads them)
    from srgpu.forest.grown import as_sklearn

    f1, f2 = P.moment_forests(t)
    want = {k: v for k, v in as_sklearn(forests[0]).estimators_[0].get_params().items()
            if k not in ("random_state", "splitter")}  # fmt: skip
    for f in (f1[0], f2[1]):
        got = as_sklearn(f).get_params()
        assert {k: got[k] for k in want if k in got} == {k: want[k] for k in want if k in got}
        assert got["min_samples_split"] == want["min_samples_split"]
        assert got["max_features"] == want["max_features"]


def test_moments_of_no_rows_and_levels_at_the_ends(tiny):
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    m = P.predictive_moments(t, rows[:0])
    assert m.mean.shape == m.second.shape == (2, 0)
    s = P.predictive_summary(t, rows[:0], levels=(0.0, 1.0))
    assert s.quantiles.shape == (0, 2) and s.mad.shape == (0,)
    # levels 0 and 1 are allowed: level 0 of the linear rule by the reference written plainly;
    # level 1 of the inverted CDF is the largest value with weight (the linear rule at exactly
    # 1 is decided by rounding: its cumulative frequencies must reach the count S exactly)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, "all")
    s = P.predictive_summary(t, rows, levels=(1.0, 0.0))
    inv = P.predictive_summary(t, rows, levels=(1.0, 0.0), rule="inverted_cdf")
    for i in range(rows.shape[0]):
        want = _weighted_linear(ys, W[i] * counts[i], 0.0)
        assert s.quantiles[i, 1] == pytest.approx(want, rel=1e-12)
        pos = ys[W[i] > 0]
        assert inv.quantiles[i].tolist() == [pos.max(), pos.min()]
    assert s.levels == (1.0, 0.0)
    for bad in ((), (-0.01,), (0.5, 1.01)):
        with pytest.raises(ConfigError, match=r"quantile levels must lie in \[0, 1\]"):
            P.predictive_summary(t, rows, levels=bad)
    with pytest.raises(ConfigError, match=r"\('linear', 'inverted_cdf'\), got 'nearest'"):
        P.predictive_summary(t, rows, rule="nearest")


def test_weight_accumulator_errors_and_empty_rows(tiny):
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    acc = P.WeightAccumulator.zeros(n_rows=5, n_records=48)
    assert acc.weights.shape == (5, 48) and acc.totals.shape == acc.counts.shape == (5,)
    with pytest.raises(InputError) as e:
        acc.add(t, rows[:6])
    assert str(e.value) == (
        "field 'X': X must have the accumulator's rows (or give dest) (got 6); expected 5"
    )
    small = P.WeightAccumulator.zeros(n_rows=5, n_records=47)
    with pytest.raises(InputError) as e:
        small.add(t, rows[:5])
    assert str(e.value) == (
        "field 'X': rows or records do not match the accumulator (got (5, 48)); expected (5, 47)"
    )
    for dest in ([0, 1, 2, 3, 5], [-1, 0, 1, 2, 3]):  # a destination outside the rows
        with pytest.raises(InputError, match="do not match the accumulator"):
            acc.add(t, rows[:5], dest=np.array(dest))
    with pytest.raises(InputError) as e:
        acc.add(t, rows[:5], dest=np.zeros((5, 1)))
    assert str(e.value) == "field 'dest': dest must give one row per row of X"
    acc.add(t, rows[:0], dest=np.zeros(0))  # nothing to add
    assert not acc.weights.any() and not acc.totals.any() and not acc.counts.any()
    acc.add(t, rows[:5], dest=np.array([4, 4, 0, 1, 2]), share=0.5)  # row 4 gets two halves
    one = P.WeightAccumulator.zeros(n_rows=5, n_records=48)
    one.add(t, rows[:5])
    np.testing.assert_allclose(acc.weights[4], 0.5 * (one.weights[0] + one.weights[1]),
                               rtol=1e-14, atol=1e-17)  # fmt: skip
    np.testing.assert_allclose(acc.weights[:3], 0.5 * one.weights[2:], rtol=1e-14, atol=1e-17)
    assert acc.totals.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.0, 1.0], rel=1e-14)
    assert acc.weights[3].sum() == 0.0


def test_summary_of_weights_by_hand():
    """Weights (0.5, 0, 0.5) on y = (10, 20, 30): the zero weight is dropped; inverted CDF:
    q 0.25 -> 10, 0.5 -> 10 (the CDF reaches 0.5 at 10), 0.75 -> 30; MAD: deviations 0 (10)
    and 20 (30) with weight 1/2 each -> 0. The linear rule with count 2 (frequencies 1 and 1):
    p = q + 1 -> 10 + 20 q; median 20, MAD 10."""
    w = np.array([[0.5, 0.0, 0.5]])
    ys = np.array([10.0, 20.0, 30.0])
    inv = P.summary_of_weights(w, ys, levels=(0.25, 0.5, 0.75), rule="inverted_cdf")
    assert inv.quantiles.tolist() == [[10.0, 10.0, 30.0]]
    assert inv.median.tolist() == [10.0] and inv.mad.tolist() == [0.0]
    lin = P.summary_of_weights(w, ys, levels=(0.25, 0.75), counts=np.array([2.0]))
    np.testing.assert_allclose(lin.quantiles, [[15.0, 25.0]], rtol=1e-15)
    assert lin.median.tolist() == [20.0] and lin.mad.tolist() == [10.0]
    np.testing.assert_allclose(lin.mad_scaled, [14.82602218505602], rtol=1e-15)
    assert lin.quantile(0.75).tolist() == [25.0] and lin.levels == (0.25, 0.75)
    # totals: the given sums replace the row sums (a half-filled accumulator: total 0.5)
    half = P.summary_of_weights(0.5 * w, ys, levels=(0.25, 0.5, 0.75), rule="inverted_cdf",
                                totals=np.array([0.5]))  # fmt: skip
    assert half.quantiles.tolist() == [[10.0, 10.0, 30.0]]
    summed = P.summary_of_weights(0.5 * w, ys, levels=(0.25, 0.5, 0.75), rule="inverted_cdf")
    assert summed.quantiles.tolist() == [[10.0, 10.0, 30.0]]
    # a point mass (weight exactly 1) on 20: every quantile 20, MAD 0
    pm = P.summary_of_weights(np.array([[0.0, 1.0, 0.0]]), ys, levels=(0.1, 0.9),
                              counts=np.array([1.0]))  # fmt: skip
    assert pm.quantiles.tolist() == [[20.0, 20.0]] and pm.mad.tolist() == [0.0]
    pmi = P.summary_of_weights(np.array([[0.0, 1.0, 0.0]]), ys, levels=(0.1, 0.9),
                               rule="inverted_cdf")  # fmt: skip
    assert pmi.quantiles.tolist() == [[20.0, 20.0]] and pmi.mad.tolist() == [0.0]
    # integer weights and values (an accumulator of counts): the same answers
    ints = P.summary_of_weights(np.array([[1, 0, 1]]), np.array([10, 20, 30]), levels=(0.25, 0.75),
                                counts=np.array([2]))  # fmt: skip
    assert ints.quantiles.tolist() == [[15.0, 25.0]] and ints.mad.tolist() == [10.0]
    assert ints.quantiles.dtype == np.float64
    with pytest.raises(InputError) as e:
        P.summary_of_weights(w, ys[:2])
    assert str(e.value) == "field 'weights': weights must be (n_rows, n_values) (got (1, 3))"
    # the inverted CDF needs no counts, for more rows than values too
    w3 = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    three = P.summary_of_weights(w3, np.array([1.0, 2.0]), levels=(0.5,), rule="inverted_cdf")
    assert three.quantiles.tolist() == [[1.0], [2.0], [1.0]]
    with pytest.raises(InputError) as e:
        P.summary_of_weights(w[0], ys)
    assert e.value.field == "weights"
    with pytest.raises(InputError) as e:
        P.summary_of_weights(w, ys, rule="linear")
    assert str(e.value) == "field 'counts': the linear rule needs each row's member count"


def test_summary_levels_and_median_columns(tiny):
    """The median comes from the walk's 0.5 column whether or not 0.5 is requested, and each
    requested column is its level's (by the brute-force reference)."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, "all")
    for levels in ((0.9, 0.1), (0.1, 0.5, 0.9), (0.5,), (0.7, 0.2, 0.3)):
        s = P.predictive_summary(t, rows, levels=levels)
        assert s.quantiles.shape == (rows.shape[0], len(levels))
        for i in range(rows.shape[0]):
            f = W[i] * counts[i]
            want = [_weighted_linear(ys, f, q) for q in levels]
            np.testing.assert_allclose(s.quantiles[i], want, rtol=1e-12)
            assert s.median[i] == pytest.approx(_weighted_linear(ys, f, 0.5), rel=1e-12)


def test_qrf_samples_errors_and_no_rows(tiny):
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    with pytest.raises(InputError) as e:
        P.qrf_sample_leaf_values(t, seeds=[P.qrf_sample_seed(1, 0, "SR")])
    assert (e.value.field, e.value.value) == ("seeds", 1)
    s = P.qrf_sample_seed(7, 3, "HR")
    assert s.entropy == 7 and s.spawn_key == (3, 1, P.PURPOSE_QRF_SAMPLE)
    values = P.qrf_sample_leaf_values(t, seeds=[P.qrf_sample_seed(1, r, "SR") for r in range(2)])
    mean, sd, summ = P.qrf_sample_summary(t, rows[:0], leaf_values=values, levels=(0.5,))
    assert mean.shape == sd.shape == (0,) and summ.quantiles.shape == (0, 1)
    # a leaf with one member keeps that member's y; draws pick members with their weights
    a = t.arrays
    one = np.flatnonzero(np.diff(t.leaf_start) == 1)
    assert one.size > 0
    np.testing.assert_array_equal(values[one], t.y_sorted[t.members[t.leaf_start[one]]])
    mean, sd, summ = P.qrf_sample_summary(t, rows, leaf_values=values, levels=(0.25, 0.75))
    assert summ.levels == (0.25, 0.75)
    np.testing.assert_allclose(summ.mad_scaled, 1.482602218505602 * summ.mad, rtol=1e-15)
    assert a.n_forests == 2


def test_heldout_calibration_in_chunks_equals_by_hand(tiny, monkeypatch):
    """Chunks of 4 held-out rows (25 rows: 7 chunks, the last of 1) give the calibration of
    the brute-force weights: coverage of the linear-rule quantiles, mid-PIT histogram, mean
    CRPS (srgpu.calibration, itself checked by hand in tests/test_calibration*.py)."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    obs = np.linspace(450.0, 750.0, rows.shape[0])
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, "all")
    levels = P.DEFAULT_LEVELS
    q = np.array([[_weighted_linear(ys, W[i] * counts[i], p) for p in levels]
                  for i in range(rows.shape[0])])  # fmt: skip
    want_cov = C.central_coverage(obs, q, levels)
    want_pit = C.pit_histogram(C.pit(obs, W, ys)).tolist()
    want_crps = float(np.mean(C.crps(obs, W, ys)))
    monkeypatch.setattr(P, "CALIBRATION_CHUNK_ROWS", 4)
    got = P.heldout_calibration(t, rows, obs)
    assert got["n"] == 25
    assert got["coverage"] == pytest.approx(want_cov, rel=1e-12)
    assert got["pit_hist"] == pytest.approx(want_pit, rel=1e-12)
    assert got["crps"] == pytest.approx(want_crps, rel=1e-12)
    # a randomised PIT with a generator: a different histogram from the same rows
    rnd = P.heldout_calibration(t, rows, obs, rng=np.random.default_rng(0))
    assert sum(rnd["pit_hist"]) == pytest.approx(1.0)
    with pytest.raises(InputError) as e:
        P.heldout_calibration(t, rows, obs[:-1])
    assert str(e.value) == "field 'y': X and y differ in length (got 24)"
    # y as a column, levels in another order: the same calibration
    col = P.heldout_calibration(t, rows, obs[:, None], levels=levels[::-1])
    assert col["coverage"] == got["coverage"] and col["pit_hist"] == got["pit_hist"]
    # the inverted-CDF rule's quantiles set the coverage
    inv_q = np.array([[_weighted_inverted(ys, W[i], p) for p in levels]
                      for i in range(rows.shape[0])])  # fmt: skip
    inv = P.heldout_calibration(t, rows, obs, rule="inverted_cdf")
    assert inv["coverage"] == pytest.approx(C.central_coverage(obs, inv_q, levels), rel=1e-12)
    # a randomised PIT draws from the generator chunk after chunk, as one call does; the
    # observations sit on atoms (each row's heaviest record value), where it differs from
    # the mid-PIT
    on_atoms = ys[np.argmax(W, axis=1)]
    want_rnd = C.pit_histogram(C.pit(on_atoms, W, ys, rng=np.random.default_rng(5))).tolist()
    got_rnd = P.heldout_calibration(t, rows, on_atoms, rng=np.random.default_rng(5))["pit_hist"]
    assert got_rnd == pytest.approx(want_rnd, rel=1e-12)
    mid = C.pit_histogram(C.pit(on_atoms, W, ys)).tolist()
    assert got_rnd != pytest.approx(mid)  # the case is sharp
    empty = P.heldout_calibration(t, rows[:0], obs[:0])
    assert empty["n"] == 0 and math.isnan(empty["crps"])
    assert len(empty["pit_hist"]) == 10 and all(math.isnan(v) for v in empty["pit_hist"])
    assert set(empty["coverage"]) == {"0.5", "0.9", "0.95"}
    assert all(math.isnan(v) for v in empty["coverage"].values())


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_qrf_leaf_values_replay_the_draw_leaf_by_leaf(tiny, membership):
    """quantregForest's one value per leaf, replayed by hand: forest r draws one uniform u per
    leaf (its leaves in node order) from ``seeds[r]``; the leaf keeps the member whose
    cumulative weight within the leaf (in the leaf's member order) first exceeds u times the
    leaf's total weight. In-bag membership gives unequal member weights (multiplicities)."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    seeds = [P.qrf_sample_seed(4, r, "SR") for r in range(2)]
    got = P.qrf_sample_leaf_values(t, seeds=seeds)
    a = t.arrays
    want = np.full(a.n_nodes, np.nan)
    for r in range(2):
        lo = a.tree_offsets[a.forest_offsets[r]]
        hi = a.tree_offsets[a.forest_offsets[r + 1]]
        leaves = [n for n in range(lo, hi) if t.leaf_start[n + 1] > t.leaf_start[n]]
        u = np.random.default_rng(seeds[r]).random(len(leaves))
        for k, n in enumerate(leaves):
            s, e = t.leaf_start[n], t.leaf_start[n + 1]
            c = np.cumsum(t.member_weight[s:e])
            j = min(int(np.searchsorted(c, u[k] * c[-1], side="right")), e - s - 1)
            want[n] = t.y_sorted[t.members[s + j]]
    np.testing.assert_array_equal(got, want)
    if membership == "inbag":  # the case is sharp: some leaf has members of unequal weight
        w = t.member_weight
        assert any(
            np.ptp(w[t.leaf_start[n] : t.leaf_start[n + 1]]) > 0
            for n in range(a.n_nodes)
            if t.leaf_start[n + 1] - t.leaf_start[n] > 1
        )
    with pytest.raises(InputError) as e:
        P.qrf_sample_leaf_values(t, seeds=seeds[:1])
    assert str(e.value) == "field 'seeds': one seed per forest is needed (got 1)"


def test_qrf_summary_on_many_rows_and_trees_by_brute_force():
    """130 trees and 1100 rows (with repeats): the Morton-ordered, deduplicated path of
    ``qrf_sample_summary``; mean, SD (divisor K T), type-7 quantiles, median and MAD of the
    values each row reaches, by scikit-learn's ``apply``."""
    from srgpu.forest.grown import as_sklearn
    from srgpu.forest.numba_engine import ORDER_MIN_ROWS, ORDER_MIN_TREES

    X, y, rng = _records(60, 3, 8)
    forest = fit_forest(X, y, forest=ForestConfig(trees=ORDER_MIN_TREES + 2),
                        seed=np.random.SeedSequence(3))  # fmt: skip
    t = P.leaf_tables([forest], X=X, y=y, train_index=[np.arange(60)])
    values = P.qrf_sample_leaf_values(t, seeds=[P.qrf_sample_seed(2, 0, "HR")])
    base = rng.normal(size=(ORDER_MIN_ROWS // 2 + 40, 3)).astype(np.float32)
    rows = np.concatenate([base, base[::-1]])
    mean, sd, summ = P.qrf_sample_summary(t, rows, leaf_values=values, levels=(0.1, 0.9))
    a = t.arrays
    V = np.stack([values[a.tree_offsets[k] + est.apply(rows)]
                  for k, est in enumerate(as_sklearn(forest).estimators_)], axis=1)  # fmt: skip
    np.testing.assert_allclose(mean, V.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(sd, V.std(axis=1), rtol=1e-10)
    np.testing.assert_allclose(summ.quantiles, np.quantile(V, (0.1, 0.9), axis=1).T, rtol=1e-13)
    med = np.median(V, axis=1)
    np.testing.assert_array_equal(summ.median, med)
    np.testing.assert_array_equal(summ.mad, np.median(np.abs(V - med[:, None]), axis=1))


def test_rows_are_cast_to_float32_before_the_walk(tiny):
    """float64 rows 1e-12 right of a split's float32 threshold are that threshold once cast to
    float32, as the engine does, so they go left (scikit-learn's x <= t); compared uncast they
    would go right. Their weights are those of the float32 rows."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    a = t.arrays
    inner = np.flatnonzero(a.children[0::2] != np.arange(a.n_nodes))
    X64 = np.tile(rows[:1].astype(np.float64), (inner.size, 1))
    X64[np.arange(inner.size), a.feature[inner]] = a.threshold[inner].astype(np.float64) + 1e-12
    assert (X64.astype(np.float32)[np.arange(inner.size), a.feature[inner]]
            == a.threshold[inner]).all()  # fmt: skip
    got = P.WeightAccumulator.zeros(n_rows=inner.size, n_records=48)
    got.add(t, X64)
    want = P.WeightAccumulator.zeros(n_rows=inner.size, n_records=48)
    want.add(t, X64.astype(np.float32))
    np.testing.assert_array_equal(got.weights, want.weights)
    W, _, _ = _brute_weights(X, y, forests, train, inbag, X64.astype(np.float32), "all")
    np.testing.assert_allclose(got.weights, W, rtol=0, atol=1e-15)
    sixty_four = P.predictive_summary(t, X64)
    np.testing.assert_array_equal(
        sixty_four.quantiles, P.predictive_summary(t, X64.astype(np.float32)).quantiles
    )


def test_shared_destinations_are_added_on_one_thread(tiny):
    """5000 rows (5 tiles) into 5 destination rows: rows of different tiles share a
    destination, so the adds must not run concurrently (lost updates would make the sums
    short); the per-cell sums equal the per-row weights summed by hand."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    many = np.tile(rows, (200, 1))
    per_row = P.WeightAccumulator.zeros(n_rows=25, n_records=48)
    per_row.add(t, rows)
    cells = P.WeightAccumulator.zeros(n_rows=5, n_records=48)
    cells.add(t, many, dest=np.arange(5000) % 5, share=1 / 1000, threads=2)
    want = per_row.weights.reshape(5, 5, 48).sum(axis=0) * 200 / 1000
    np.testing.assert_allclose(cells.weights, want, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(cells.totals, 1.0, rtol=1e-11)


def test_linear_rule_when_a_level_lands_on_a_cumulative_frequency():
    """Weights (1/4, 1/4, 1/2) on (10, 20, 30) with count 2: frequencies (0.5, 0.5, 1),
    cumulative (0.5, 1, 2). Level 0: p = 1 equals the second cumulative frequency, so the last
    j with C_j <= p is 20 and the answer is 20 + min(1 - 1, 1) x 10 = 20 (not 10). Median:
    p = 1.5 -> 20 + 0.5 x 10 = 25; distances (15, 5, 5) -> MAD 5."""
    s = P.summary_of_weights(np.array([[0.25, 0.25, 0.5]]), np.array([10.0, 20.0, 30.0]),
                             levels=(0.0,), counts=np.array([2.0]))  # fmt: skip
    assert s.quantiles.tolist() == [[20.0]]
    assert s.median.tolist() == [25.0] and s.mad.tolist() == [5.0]
    # the first value taken as it is, not interpolated from another (0.7 + (0.1 - 0.7) is not
    # 0.1 in float64): frequencies (3, 1) on (0.1, 0.7), level 0 -> p = 1 < 3 -> 0.1
    first = P.summary_of_weights(np.array([[0.75, 0.25]]), np.array([0.1, 0.7]), levels=(0.0,),
                                 counts=np.array([4.0]))  # fmt: skip
    assert first.quantiles.tolist() == [[0.1]]
    # levels given as a column: read as the flat list
    col = P.summary_of_weights(np.array([[0.25, 0.25, 0.5]]), np.array([10.0, 20.0, 30.0]),
                               levels=np.array([[0.0], [0.5]]), counts=np.array([2.0]))  # fmt: skip
    assert col.quantiles.tolist() == [[20.0, 25.0]] and col.levels == (0.0, 0.5)


def test_moments_through_an_engine_are_float64(tiny):
    """An engine predicting in float32 (as nvForest's single precision does) still gives
    float64 moments, equal to the float32 predictions cast."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    want = P.predictive_moments(t, rows)

    class Float32Engine:  # scikit-learn's predictions of the moment forests, in float32
        def compile(self, forests):
            from srgpu.forest.grown import as_sklearn

            class Compiled:
                def predict(self, X):
                    return np.stack([as_sklearn(f).predict(X) for f in forests]).astype(np.float32)

            return Compiled()

    got = P.predictive_moments(t, rows, engine=Float32Engine())
    assert got.mean.dtype == got.second.dtype == np.float64
    np.testing.assert_array_equal(got.mean, want.mean.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(got.second, want.second, rtol=1e-6)


def test_one_row_and_a_forest_of_600_trees(tiny):
    """A single row gets its moments (not an empty answer); a forest of 600 trees (the summary
    kernel's tile shrinks below 1024 rows past 512 trees) gives the brute-force quantiles."""
    X, y, forests, train, inbag, rows = tiny
    t = P.leaf_tables(forests, X=X, y=y, train_index=train)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows[:1], "all")
    one = P.predictive_moments(t, rows[:1])
    assert one.mean.shape == (2, 1)
    np.testing.assert_allclose(one.pooled()[0], W @ ys, rtol=1e-13)
    big = fit_forest(X, y, forest=ForestConfig(trees=600), seed=np.random.SeedSequence(6))
    tb = P.leaf_tables([big], X=X, y=y, train_index=[np.arange(48)])
    Wb, cb, ysb = _brute_weights(X, y, [big], [np.arange(48)], None, rows[:3], "all")
    s = P.predictive_summary(tb, rows[:3], levels=(0.25, 0.75))
    for i in range(3):
        want = [_weighted_linear(ysb, Wb[i] * cb[i], q) for q in (0.25, 0.75)]
        np.testing.assert_allclose(s.quantiles[i], want, rtol=1e-12)


def test_leaf_tables_messages_and_casts(tiny):
    """The table builder's errors word for word; records given in float64 are cast to float32
    before they are sent down the trees (a record 1e-12 right of the root's float32 threshold
    is that threshold in float32 and goes left, as scikit-learn sends it); y in float32 is
    held as float64."""
    X, y, forests, train, inbag, rows = tiny
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="inbag")
    assert str(e.value) == (
        "field 'inbag': in-bag membership needs the bootstrap counts of every forest;"
        " expected 2 arrays of shape (trees, n_train)"
    )
    with pytest.raises(InputError) as e:  # one forest's counts for two forests
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="oob", inbag=inbag[:1])
    assert str(e.value) == (
        "field 'inbag': out-of-bag membership needs the bootstrap counts of every forest"
        " (got 1); expected 2 arrays of shape (trees, n_train)"
    )
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=y[:-1], train_index=train)
    assert str(e.value) == "field 'X': X and y must be (n, p) and (n,) (got ((48, 3), (47,)))"
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(InputError) as e:
        P.leaf_tables(forests, X=X, y=bad, train_index=train)
    assert str(e.value) == "field 'y': y holds NaN or infinite values; expected finite values"
    a = P.leaf_tables(forests, X=X, y=y, train_index=train).arrays
    root = a.tree_offsets[0]
    X64 = X.astype(np.float64)
    X64[train[0][0], a.feature[root]] = float(a.threshold[root]) + 1e-12
    got = P.leaf_tables(forests, X=X64, y=y.astype(np.float32), train_index=train)
    want = P.leaf_tables(forests, X=X64.astype(np.float32), y=y.astype(np.float32).astype(float),
                         train_index=train)  # fmt: skip
    np.testing.assert_array_equal(got.leaf_size, want.leaf_size)
    np.testing.assert_array_equal(got.moments, want.moments)
    assert got.y_sorted.dtype == np.float64


def test_summary_of_weights_refuses_a_row_without_weight():
    """A row whose weights are all 0 has no distribution: one InputError naming the row (it
    was a ZeroDivisionError inside the kernel); the other rows are not the problem."""
    W = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(InputError, match="row 1 ") as info:
        P.summary_of_weights(W, np.array([1.0, 2.0, 3.0]), rule="inverted_cdf")
    assert info.value.field == "weights"
    s = P.summary_of_weights(W[:1], np.array([1.0, 2.0, 3.0]), rule="inverted_cdf")
    assert s.median[0] == 1.0
