"""Out-of-bag leaf membership (``membership="oob"``): brute-force weights on tiny forests, the
moments as the weights' moments (numba walk and a mean-only engine), the quantiles as those of
the weights, and the rows without a contributing tree (undefined: NaN, left out of the
held-out scores)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.demo_coverage import oob_weights
from srgpu.config import ForestConfig
from srgpu.errors import ConfigError
from srgpu.forest import predictive as P
from srgpu.forest.grown import as_sklearn
from srgpu.forest.train import fit_forest
from tests import requires_nvforest
from tests.test_predictive import (
    LEVELS,
    assert_summary_equals_reference,
    nvforest_cpu_moments_match_numba,
)


def _brute_oob(X, y, forests, train, inbag, rows):
    """Per forest, the out-of-bag weights (rows x records in y order), the count of
    contributing trees per row and the sum of their out-of-bag leaf sizes, by plain loops with
    scikit-learn's ``apply``: tree ``t`` gives ``1 / n_oob_leaf`` to each out-of-bag member of
    the leaf the row reaches, if any; the sums are divided by the count of trees that gave."""
    order = np.argsort(y, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(y.size)
    out = []
    for r, forest in enumerate(forests):
        W = np.zeros((rows.shape[0], y.size))
        used = np.zeros(rows.shape[0])
        size = np.zeros(rows.shape[0])
        for t, tree in enumerate(as_sklearn(forest).estimators_):
            rec_leaf = tree.apply(X[train[r]])
            row_leaf = tree.apply(rows)
            for i in range(rows.shape[0]):
                members = [
                    rec
                    for j, rec in enumerate(train[r])
                    if rec_leaf[j] == row_leaf[i] and inbag[r][t, j] == 0
                ]
                if members:
                    used[i] += 1
                    size[i] += len(members)
                    for rec in members:
                        W[i, rank[rec]] += 1.0 / len(members)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.append((W / used[:, None], used, size))
    return out, y[order]


@pytest.fixture(scope="module")
def tiny_oob():
    """Two tiny forests of 6 trees (as tests/test_predictive.py's), their ``"oob"`` tables and
    the brute-force weights."""
    from tests.test_predictive import tiny_forests

    X, y, forests, train, inbag, rows = tiny_forests()
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership="oob", inbag=inbag)
    brute, ys = _brute_oob(X, y, forests, train, inbag, rows)
    return X, y, forests, train, inbag, rows, tables, brute, ys


def test_oob_weights_equal_brute_force(tiny_oob):
    X, y, forests, train, inbag, rows, tables, brute, ys = tiny_oob
    assert all((b[1] > 0).all() for b in brute)  # every row has a contributing tree here
    assert any((b[1] < 6).any() for b in brute)  # and some tree is skipped: the case is sharp
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    W = (brute[0][0] + brute[1][0]) / 2  # the equal mixture of the two forests
    np.testing.assert_allclose(acc.weights, W, rtol=0, atol=1e-15)
    np.testing.assert_allclose(acc.totals, 1.0, rtol=1e-14)
    np.testing.assert_allclose(acc.counts, (brute[0][2] + brute[1][2]) / 2, rtol=1e-14)
    np.testing.assert_array_equal(tables.y_sorted, ys)
    # only out-of-bag records get weight: never a record in the bag of every tree
    for r in range(2):
        alone = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
        alone.add(tables.subset(r), rows)
        always_in = train[r][(inbag[r] > 0).all(axis=0)]
        assert (alone.weights[:, tables.record_rank[always_in]] == 0).all()
        # the benchmark's independent computation (training order -> y order)
        want = np.zeros_like(alone.weights)
        want[:, tables.record_rank[train[r]]] = oob_weights(
            tables.subset(r), X[train[r]], rows, inbag[r]
        )
        np.testing.assert_allclose(alone.weights, want, rtol=0, atol=1e-15)
    # batch by batch (each forest with share 1/2) gives the same pooled weights
    acc2 = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    for r in range(2):
        acc2.add(tables.subset(r), rows, n_forests=2)
    np.testing.assert_allclose(acc2.weights, W, rtol=0, atol=1e-15)
    # a leaf without out-of-bag records is packed as [0, 0]; leaves with members as before
    a = tables.arrays
    leaf = a.children[0::2] == np.arange(a.n_nodes)
    empty = leaf & (tables.leaf_size == 0)
    assert empty.any() and (~empty[leaf]).any()
    off = tables.leaf_offset.astype(np.int64)
    assert (tables.packed[off[empty]] == 0).all() and (tables.packed[off[empty] + 1] == 0).all()
    assert (tables.packed[off[leaf & ~empty]] > 0).all()
    assert len(set(off[leaf].tolist())) == leaf.sum()  # one header per leaf
    np.testing.assert_array_equal(tables.contributes, (leaf & ~empty).astype(float))


def test_oob_moments_are_the_weights_moments(tiny_oob):
    from srgpu.forest.sklearn_engine import SklearnEngine

    X, y, forests, train, inbag, rows, tables, brute, ys = tiny_oob
    mom = P.predictive_moments(tables, rows)
    # measured: 2e-13 relative on the mean (one division by U / T more than the weights)
    for r in range(2):
        np.testing.assert_allclose(mom.mean[r], brute[r][0] @ ys, rtol=1e-12)
        np.testing.assert_allclose(mom.second[r], brute[r][0] @ ys**2, rtol=1e-12)
    W = (brute[0][0] + brute[1][0]) / 2
    mean, sd = mom.pooled()
    np.testing.assert_allclose(mean, W @ ys, rtol=1e-12)
    np.testing.assert_allclose(sd, np.sqrt(W @ ys**2 - (W @ ys) ** 2), rtol=1e-7)
    # oob is not the forest mean (in-bag leaves are): the moments are not "inbag"'s
    assert np.abs(mom.mean - np.stack([f.predict(rows) for f in forests])).max() > 1.0
    # a mean-only engine on the three leaf-value forests (moments and contributing-tree share)
    f = P.moment_forests(tables)
    assert len(f) == 3
    got = P.predictive_moments(tables, rows, engine=SklearnEngine())
    np.testing.assert_allclose(got.mean, mom.mean, rtol=1e-13)
    np.testing.assert_allclose(got.second, mom.second, rtol=1e-13)


@pytest.mark.parametrize("rule", ["linear", "inverted_cdf"])
def test_oob_summary_equals_reference_on_brute_force_weights(tiny_oob, rule):
    X, y, forests, train, inbag, rows, tables, brute, ys = tiny_oob
    W = (brute[0][0] + brute[1][0]) / 2
    counts = (brute[0][2] + brute[1][2]) / 2
    got = P.predictive_summary(tables, rows, levels=LEVELS, rule=rule)
    assert_summary_equals_reference(got, ys, W, counts, rule)
    # the weight accumulator's summary is the summary kernel's
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    s = acc.summary(tables.y_sorted, levels=LEVELS, rule=rule)
    np.testing.assert_array_equal(s.quantiles, got.quantiles)
    np.testing.assert_array_equal(s.mad, got.mad)


def test_rows_without_a_contributing_tree_are_undefined():
    """Two one-tree forests: rows whose leaf holds no out-of-bag record in some forest's tree
    have no mixture distribution: NaN moments (that forest's only), NaN quantiles and MAD, NaN
    total and count in the accumulator, and they are left out of the held-out scores."""
    from tests.test_predictive import _records

    X, y, rng = _records(60, 3, 21)
    fc = ForestConfig(trees=1)
    forests, train, inbag = [], [], []
    for r in range(2):
        seed = np.random.SeedSequence(4, spawn_key=(r,))
        tr = np.arange(60)
        forests.append(fit_forest(X[tr], y[tr], forest=fc, seed=seed))
        train.append(tr)
        inbag.append(P.inbag_counts(n_train=60, forest=fc, seed=seed))
    rows = rng.normal(size=(200, 3)).astype(np.float32)
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership="oob", inbag=inbag)
    brute, ys = _brute_oob(X, y, forests, train, inbag, rows)
    none = [b[1] == 0 for b in brute]  # per forest: rows with no contributing tree
    undefined = none[0] | none[1]
    assert 0 < undefined.sum() < rows.shape[0]  # the case is sharp both ways
    mom = P.predictive_moments(tables, rows)
    for r in range(2):
        assert np.array_equal(np.isnan(mom.mean[r]), none[r])
        assert np.array_equal(np.isnan(mom.second[r]), none[r])
        np.testing.assert_allclose(mom.mean[r][~none[r]], (brute[r][0] @ ys)[~none[r]], rtol=1e-12)
    assert np.array_equal(np.isnan(mom.pooled()[1]), undefined)
    s = P.predictive_summary(tables, rows, levels=LEVELS)
    assert np.array_equal(np.isnan(s.quantiles).any(axis=1), undefined)
    assert np.array_equal(np.isnan(s.quantiles).all(axis=1), undefined)
    assert np.array_equal(np.isnan(s.mad), undefined)
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    assert np.array_equal(np.isnan(acc.totals), undefined)
    assert np.array_equal(np.isnan(acc.counts), undefined)
    assert (acc.weights[undefined] == 0).all()  # nothing added for an undefined row
    W = (brute[0][0] + brute[1][0]) / 2
    np.testing.assert_allclose(acc.weights[~undefined], W[~undefined], rtol=0, atol=1e-15)
    s2 = acc.summary(tables.y_sorted, levels=LEVELS)
    np.testing.assert_array_equal(s2.quantiles, s.quantiles)  # NaN rows equal NaN rows
    # the held-out scores of one forest leave its undefined rows out and count them
    y_rows = 600 + 150 * rows[:, 0].astype(np.float64)
    cal = P.heldout_calibration(tables.subset(0), rows, y_rows)
    assert cal["undefined"] == int(none[0].sum()) and cal["n"] == int((~none[0]).sum())
    ok = ~none[0]
    want = P.heldout_calibration(tables.subset(0), rows[ok], y_rows[ok])
    assert cal["coverage"] == want["coverage"] and cal["crps"] == want["crps"]
    assert want["undefined"] == 0
    with pytest.raises(ConfigError, match="oob"):
        P.qrf_sample_leaf_values(tables, seeds=[np.random.SeedSequence(0)] * 2)


def test_oob_needs_the_bootstrap_counts(tiny_oob):
    from srgpu.errors import InputError

    X, y, forests, train, inbag, rows, tables, brute, ys = tiny_oob
    with pytest.raises(InputError, match="out-of-bag membership needs the bootstrap counts"):
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="oob")
    assert tables.membership == "oob" and tables.honest
    assert not P.leaf_tables(forests, X=X, y=y, train_index=train).honest


@requires_nvforest
@pytest.mark.nvforest
def test_oob_moments_through_nvforest_cpu(tiny_oob):
    """nvForest ``device="cpu"`` on the three leaf-value forests (moments and the share of
    contributing trees): ``precision="double"`` equals the numba walk to 1e-12 relative,
    ``"single"`` to 1e-5 (float32 leaves and sums, then one division)."""
    X, y, forests, train, inbag, rows, tables, brute, ys = tiny_oob
    nvforest_cpu_moments_match_numba(tables, rows)
