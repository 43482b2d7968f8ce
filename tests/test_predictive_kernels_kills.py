"""The weight kernels of ``srgpu.forest.predictive_kernels`` against independent answers (issue
21: the mutation run of ``build_tables``, ``apply_rows``, ``_scatter``, ``_compact_and_clear``,
``quantiles_of_weights`` and ``mad_of_weights``): leaf tables written out by hand, leaves from
scikit-learn's own ``apply``, pooled weights by brute force over scikit-learn's trees, quantiles
and MAD by the plain references of ``tests/test_predictive.py``.

Everything here is small (forests grown by scikit-learn, a few dozen records and rows) so that
the mutation run, which executes the kernels as plain Python, spends well under a second a
mutant on each test.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from srgpu.config import ForestConfig
from srgpu.errors import InputError
from srgpu.forest import predictive as P
from srgpu.forest import predictive_kernels as K
from srgpu.forest.arrays import forest_arrays
from srgpu.forest.grown import as_sklearn
from srgpu.forest.train import fit_forest
from tests.test_predictive import (
    _brute_weights,
    _mad_ref,
    _records,
    _weighted_inverted,
    _weighted_linear,
    reference_summary,
)

LEVELS = (0.0, 0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975, 1.0)

TOP = (1 << K.RANK_BITS) - 1  # the largest rank a packed member can hold


# ----------------------------------------------------------------------------- build_tables
def test_build_tables_by_hand():
    """Eight entries (leaf, rank, multiplicity, y) over 7 nodes, written in an interleaved
    order, one with multiplicity 0 (skipped), the largest rank (2**24 - 1) and the largest
    multiplicity (255). Leaf 1: ranks 3 (x2, y 3) and 0 (x1, y 1): size 3, weights 2/3, 1/3,
    means 7/3 and 19/3. Leaf 4: rank TOP (x255, y 2): size 255, weight 1, means 2 and 4.
    Leaf 5: ranks 1 (x3, y -1) and 4 (x1, y 5): size 4, weights 3/4, 1/4, means 1/2 and 7.
    Nodes 2 and 6 are reached only with multiplicity 0 (a leaf without out-of-bag records):
    packed as [0, 0], no members. Packed (uint32 words): per reached node [chunks, size,
    rank | multiplicity << 24 ..., padding to a chunk of 6: rank = position in the chunk,
    multiplicity 0], in node order at word offsets 0, 8, 10, 18 and 26 (untagged: one chunk or
    none); every other node's offset is 0."""
    leaf = np.array([5, 1, 4, 1, 6, 5, 2, 1], dtype=np.int64)
    rank = np.array([1, 3, TOP, 0, 9, 4, 8, 7], dtype=np.int64)
    count = np.array([3, 2, 255, 1, 0, 1, 0, 0], dtype=np.int32)
    y = np.array([-1.0, 3.0, 2.0, 1.0, 50.0, 5.0, 60.0, 70.0])
    out = K.build_tables(leaf, rank, count, y, 7, TOP + 1)
    start, members, weight, size, m1, m2, packed, offset = out
    assert start.tolist() == [0, 0, 2, 2, 2, 3, 5, 5]
    assert members.dtype == np.int32 and members.tolist() == [3, 0, TOP, 1, 4]
    assert weight.dtype == np.float64
    np.testing.assert_allclose(weight, [2 / 3, 1 / 3, 1.0, 3 / 4, 1 / 4], rtol=1e-15)
    assert size.dtype == np.float64 and size.tolist() == [0, 3, 0, 0, 255, 4, 0]
    np.testing.assert_allclose(m1, [0, 7 / 3, 0, 0, 2, 0.5, 0], rtol=1e-15)
    np.testing.assert_allclose(m2, [0, 19 / 3, 0, 0, 4, 7, 0], rtol=1e-15)
    assert packed.dtype == np.uint32
    assert K.CHUNK == 6
    assert packed.tolist() == [
        1, 3, 3 | 2 << 24, 0 | 1 << 24, 2, 3, 4, 5,
        0, 0,
        1, 255, TOP | 255 << 24, 1, 2, 3, 4, 5,
        1, 4, 1 | 3 << 24, 4 | 1 << 24, 2, 3, 4, 5,
        0, 0,
    ]  # fmt: skip
    assert offset.dtype == np.float64 and offset.tolist() == [0, 0, 8, 0, 10, 18, 26]


def test_build_tables_chunks_tags_and_padding():
    """A leaf of 7 members takes two chunks of 6 (5 padding words) and its offset is tagged
    (+1); a leaf of exactly 6 members takes one chunk, no padding, untagged; with 2 records the
    padding's ranks stay below 2 (positions 2 to 5 in the chunk become rank 0)."""
    assert K.CHUNK == 6
    leaf = np.array([0] * 7 + [1] * 6, dtype=np.int64)
    rank = np.array([6, 5, 4, 3, 2, 1, 0, 0, 1, 2, 3, 4, 5], dtype=np.int64)
    count = np.ones(13, dtype=np.int32)
    y = np.arange(13, dtype=np.float64)
    packed, offset = K.build_tables(leaf, rank, count, y, 2, 7)[6:]
    one = 1 << 24
    assert packed.tolist() == [
        2, 7, *(r | one for r in (6, 5, 4, 3, 2, 1, 0)), 1, 2, 3, 4, 5,
        1, 6, *(r | one for r in (0, 1, 2, 3, 4, 5)),
    ]  # fmt: skip
    assert offset.tolist() == [1, 14]
    packed, offset = K.build_tables(leaf[:1], rank[5:6], count[:1], y[:1], 1, 2)[6:]
    assert packed.tolist() == [1, 1, 1 | one, 1, 0, 0, 0, 0] and offset.tolist() == [0]


def test_build_tables_of_no_member():
    """Only multiplicity-0 entries: no member anywhere; each reached node packed as [0, 0]."""
    out = K.build_tables(np.array([0, 1], dtype=np.int64), np.array([0, 1], dtype=np.int64),
                         np.zeros(2, dtype=np.int32), np.array([1.0, 2.0]), 2, 2)  # fmt: skip
    start, members, weight, size, m1, m2, packed, offset = out
    assert start.tolist() == [0, 0, 0] and members.size == 0 and packed.tolist() == [0, 0, 0, 0]
    assert size.tolist() == [0, 0] and m1.tolist() == [0, 0] and offset.tolist() == [0, 2]


def _many_chunk_leaves():
    """Entries of six leaves of 1, 6, 7, 12, 13 and 20 members (1, 1, 2, 2, 3 and 4 chunks of
    6) over 24 records: member ``j`` of leaf ``k`` is rank ``(5 j + k) mod 24`` (distinct within
    a leaf, shared across leaves) with multiplicity ``1 + (7 j + k) mod 4``."""
    sizes = (1, 6, 7, 12, 13, 20)
    leaf = np.concatenate([np.full(n, k) for k, n in enumerate(sizes)]).astype(np.int64)
    j = np.concatenate([np.arange(n) for n in sizes])
    rank = ((5 * j + leaf) % 24).astype(np.int64)
    count = (1 + (7 * j + leaf) % 4).astype(np.int32)
    return sizes, leaf, rank, count


def test_add_leaf_and_scatter_over_many_chunks_by_hand():
    """``_add_leaf`` on each leaf of :func:`_many_chunk_leaves` as ``build_tables`` packs it
    (chunk count in the first word, offsets tagged from two chunks on), onto a ``w`` that
    already holds weights: every member adds ``c * (sc / n)`` once, bit for bit, the padding
    adds nothing, the other entries keep their values, and the leaf size ``n`` is returned;
    then ``_scatter`` over a row that reaches the six leaves in six trees. Leaves of three and
    four chunks: a loop that stopped after the second chunk would drop members 13 to 20."""
    sizes, leaf, rank, count = _many_chunk_leaves()
    y = np.arange(leaf.size, dtype=np.float64)
    packed, offset = K.build_tables(leaf, rank, count, y, 6, 24)[6:]
    chunks = [-(-n // K.CHUNK) for n in sizes]
    assert chunks == [1, 1, 2, 2, 3, 4]
    base = np.arange(24, dtype=np.float64) / 8  # weights left by earlier leaves
    sc = 0.375
    scattered = base.copy()
    for k in range(len(sizes)):
        o = int(offset[k])
        assert o % 2 == (chunks[k] > 1) and packed[o - o % 2] == chunks[k]
        mine = leaf == k
        size = count[mine].sum()
        want = base.copy()
        for r, c in zip(rank[mine], count[mine], strict=True):
            want[r] += c * (sc / size)
            scattered[r] += c * (sc / size)
        w = base.copy()
        got = K._add_leaf(packed, np.uint64(o), w, sc)
        assert got == size
        np.testing.assert_array_equal(w, want)
    leaves = offset.astype(np.int64)[None, :]
    w = base.copy()
    total, cnt = K._scatter(leaves, 0, np.zeros(6, dtype=np.int64), np.array([sc]),
                            np.array([0.5]), packed, w)  # fmt: skip
    np.testing.assert_array_equal(w, scattered)
    assert total == 6 * sc and cnt == 0.5 * count.sum()


# ----------------------------------------------------------------------------- apply_rows
def _nan_forest():
    """Four scikit-learn trees on 60 records of 3 features, a fifth of them NaN in feature 0 or
    1 (so that NaN goes left at some nodes and right at others)."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 3)).astype(np.float32)
    y = 3 * X[:, 0] + np.sin(3 * X[:, 1]) + X[:, 2] + rng.normal(scale=0.1, size=60)
    X[rng.random(60) < 0.2, 0] = np.nan
    X[rng.random(60) < 0.2, 1] = np.nan
    rf = RandomForestRegressor(n_estimators=4, max_features=2, random_state=0).fit(X, y)
    return rf, X, rng


def test_apply_rows_equals_scikit_learn_apply():
    """Leaves of random rows, rows with NaN features and rows that sit exactly on a node's
    threshold (a training record through the node with the node's feature set to its float32
    threshold, which scikit-learn sends left): the global node numbers of scikit-learn's
    ``apply`` (tree-local node + the tree's offset)."""
    rf, X, rng = _nan_forest()
    a = forest_arrays([rf])
    assert 0 < a.nan_left[a.children[0::2] != np.arange(a.n_nodes)].mean() < 1
    rows = [rng.normal(size=(20, 3)).astype(np.float32)]
    nan_rows = rng.normal(size=(12, 3)).astype(np.float32)
    nan_rows[np.arange(12), np.arange(12) % 3] = np.nan
    nan_rows[-1] = np.nan
    rows.append(nan_rows)
    on_threshold = []
    for t, est in enumerate(rf.estimators_):
        tree = est.tree_
        paths = est.decision_path(X).toarray()
        # (scikit-learn splits "every value left, NaN right" at an infinite threshold)
        for node in np.flatnonzero((tree.children_left >= 0) & np.isfinite(tree.threshold)):
            rec = np.flatnonzero(paths[:, node])[0]
            row = X[rec].copy()
            row[tree.feature[node]] = a.threshold[a.tree_offsets[t] + node]
            on_threshold.append(row)
    rows.append(np.array(on_threshold, dtype=np.float32))
    rows = np.ascontiguousarray(np.concatenate(rows))
    want = np.stack([est.apply(rows) + a.tree_offsets[t] for t, est in enumerate(rf.estimators_)])
    got = K.apply_rows(rows, a.feature, a.threshold, a.children, a.nan_left, a.tree_offsets[:-1])
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    # rows exactly on a threshold met at a node they reach: not a vacuous check
    hits = 0
    for t, est in enumerate(rf.estimators_):
        path = est.decision_path(rows).toarray()
        thr = a.threshold[a.tree_offsets[t] : a.tree_offsets[t + 1]]
        feat = est.tree_.feature
        inner = est.tree_.children_left >= 0
        on = (rows[:, np.maximum(feat, 0)] == thr[None, :]) & inner[None, :]
        hits += int((on & (path > 0)).sum())
    assert hits >= 10


# ----------------------------------------------------------------------------- weights
def _unequal_forests(bootstrap=True):
    """Two scikit-learn-grown forests of 12 and 7 trees (19 trees in a batch: more than the
    scatter's prefetch distance) on different 36-record subsets of 48 records, their training
    indices, bootstrap counts, and 9 rows (4 of them training records)."""
    X, y, rng = _records(48, 3, 7)
    forests, train, inbag = [], [], []
    for r, trees in enumerate((12, 7)):
        fc = ForestConfig(trees=trees, nodesize=3, bootstrap=bootstrap)
        tr = np.sort(rng.choice(48, 36, replace=False))
        seed = np.random.SeedSequence(21, spawn_key=(r,))
        forests.append(fit_forest(X[tr], y[tr], forest=fc, seed=seed, trainer="sklearn"))
        train.append(tr)
        inbag.append(P.inbag_counts(n_train=tr.size, forest=fc, seed=seed))
    rows = np.concatenate([rng.normal(size=(5, 3)).astype(np.float32), X[train[0][:4]]])
    return X, y, forests, train, inbag, rows


@pytest.fixture(scope="module")
def unequal():
    """:func:`_unequal_forests`."""
    return _unequal_forests()


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_weights_of_unequal_forests_equal_brute_force(unequal, membership):
    """Pooled weights, totals and leaf-member counts (the linear rule's scale) of forests with
    different tree counts (each forest's trees weigh 1 / (2 x its trees)), in-bag
    multiplicities up to the bootstrap's, against plain loops over scikit-learn's trees."""
    X, y, forests, train, inbag, rows = unequal
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    if membership == "inbag":
        assert max(int(c.max()) for c in inbag) >= 3  # multiplicities above 1 are met
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, membership)
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    # measured: brute force and kernel agree to 2e-17 (different summation order)
    np.testing.assert_allclose(acc.weights, W, rtol=0, atol=1e-15)
    np.testing.assert_allclose(acc.totals, 1.0, rtol=1e-14)
    np.testing.assert_allclose(acc.counts, counts, rtol=1e-13)
    # forest 1 alone, its share 1/2 of a two-forest batch: half of its own weights
    half = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    half.add(tables.subset(1), rows, n_forests=2)
    W1, c1, _ = _brute_weights(X, y, forests[1:], train[1:], inbag[1:], rows, membership)
    np.testing.assert_allclose(half.weights, 0.5 * W1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(half.totals, 0.5, rtol=1e-14)
    np.testing.assert_allclose(half.counts, 0.5 * c1, rtol=1e-13)


@pytest.mark.parametrize("membership", ["all", "inbag"])
@pytest.mark.parametrize("rule", ["linear", "inverted_cdf"])
def test_summary_kernel_of_unequal_forests_equals_reference(unequal, membership, rule):
    """The summary kernel (scatter, compaction, quantiles, MAD; all rows in one tile, one
    weight vector reused from row to row) against the plain references on brute-force
    weights."""
    X, y, forests, train, inbag, rows = unequal
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, membership)
    got = P.predictive_summary(tables, rows, levels=LEVELS, rule=rule)
    checked = 0
    for i in range(rows.shape[0]):
        if rule == "linear":
            f = W[i] * counts[i]
            at = np.array(LEVELS) * (counts[i] - 1) + 1
            quant = _weighted_linear
        else:
            f, at, quant = W[i], np.array(LEVELS), _weighted_inverted
        med = quant(ys, f, 0.5)
        d = np.abs(ys - med)
        mad_cum = np.cumsum(f[np.argsort(d, kind="stable")])
        # the weights are simple fractions: a level that a cumulative weight (frequency) hits
        # exactly is decided by rounding, differently by a different summation order (at
        # level 1 the linear rule can then fall below the largest value: docs/testing.md)
        for k, q in enumerate(LEVELS):
            if np.abs(np.cumsum(f) - at[k]).min() > 1e-12:
                assert got.quantiles[i, k] == pytest.approx(quant(ys, f, q), rel=1e-12)
                checked += 1
        if np.abs(np.cumsum(f) - at[LEVELS.index(0.5)]).min() > 1e-12:
            assert got.median[i] == pytest.approx(med, rel=1e-12)
            if np.abs(mad_cum - at[LEVELS.index(0.5)]).min() > 1e-12:
                assert got.mad[i] == pytest.approx(_mad_ref(ys, f, med, quant), rel=1e-12)
                checked += 1
    assert checked >= 0.75 * rows.shape[0] * (len(LEVELS) + 1)


def test_point_mass_in_the_summary_kernel():
    """Fully grown trees (nodesize 1, no bootstrap: one record a leaf) of one forest of 2 trees
    put all of a training record's weight on that record: 1/2 + 1/2 = 1 exactly. Every
    quantile is the record's y and the MAD 0, under both rules; the rows before and after it in
    the tile keep their own answers (the weight vector is cleared between rows)."""
    X, y, _ = _records(16, 2, 5)
    fc = ForestConfig(trees=2, nodesize=1, bootstrap=False)
    forest = fit_forest(X, y, forest=fc, seed=np.random.SeedSequence(3), trainer="sklearn")
    tables = P.leaf_tables([forest], X=X, y=y, train_index=[np.arange(16)])
    assert (tables.leaf_size[tables.leaf_size > 0] == 1).all()
    rows = X[[3, 8, 3, 11]]
    for rule in ("linear", "inverted_cdf"):
        s = P.predictive_summary(tables, rows, levels=(0.1, 0.5, 0.9), rule=rule)
        want = y[[3, 8, 3, 11]]
        np.testing.assert_array_equal(s.quantiles, np.repeat(want[:, None], 3, axis=1))
        assert s.mad.tolist() == [0.0] * 4


# ----------------------------------------------------------------------------- quantiles, MAD
def _random_weights(rng, n_rows, n_values, density):
    W = rng.random((n_rows, n_values)) * (rng.random((n_rows, n_values)) < density)
    W[np.arange(n_rows), rng.integers(0, n_values, n_rows)] += 0.5  # no empty row
    return W


@pytest.mark.parametrize("rule", ["linear", "inverted_cdf"])
def test_quantiles_and_mad_of_random_weights_equal_reference(rule):
    """60 rows of random sparse weights (not normalised: the totals are the row sums) on 30
    sorted values, counts between 1 and 40: quantiles and MAD against the plain references
    (frequencies ``w x count / total`` for the linear rule). The inverted CDF on whole numbers
    with ties; the linear rule on distinct values: with tied distances its MAD depends on the
    order in which the tied values are walked (the kernel walks out from the median, the
    reference sorts the distances), an interpolation from the value before the tie either way
    but from a different cumulative frequency."""
    rng = np.random.default_rng(8)
    if rule == "linear":
        ys = np.sort(rng.normal(size=30) * 10)
    else:
        ys = np.sort(rng.integers(0, 12, 30)).astype(np.float64)
    W = _random_weights(rng, 60, 30, 0.3)
    counts = rng.uniform(1.0, 40.0, 60)
    counts[:5] = [1.0, 1.0, 2.0, 2.0, 3.0]
    levels = LEVELS[:-1]
    got = P.summary_of_weights(W, ys, levels=levels, rule=rule, counts=counts)
    for i in range(W.shape[0]):
        want, med, mad = reference_summary(ys, W[i], W[i] * (counts[i] / W[i].sum()), rule, levels)
        np.testing.assert_allclose(got.quantiles[i], want, rtol=1e-12, atol=1e-12)
        assert got.median[i] == pytest.approx(med, rel=1e-12, abs=1e-12)
        assert got.mad[i] == pytest.approx(mad, rel=1e-12, abs=1e-12)


def test_mad_by_hand_with_whole_weights():
    """Weights 1, 1, 1 (a total of 3, not 1) on 10, 20, 40. Inverted CDF: median 20 (the CDF
    reaches 1.5 at 20); distances 0 (20), 10 (10), 20 (40): the cumulative weight reaches 1.5
    at 10, MAD 10. Linear rule, count 3 (frequencies 1, 1, 1): median p = 2 -> 20; MAD
    p = 2 -> the second distance, 10. Equal distances on both sides (10 and 30 around 20,
    weights 1, 1, 1): the median 20 and the MAD 10 under either rule."""
    ys = np.array([10.0, 20.0, 40.0])
    w = np.array([[1.0, 1.0, 1.0]])
    inv = P.summary_of_weights(w, ys, levels=(0.5,), rule="inverted_cdf")
    assert inv.median.tolist() == [20.0] and inv.mad.tolist() == [10.0]
    lin = P.summary_of_weights(w, ys, levels=(0.5,), counts=np.array([3.0]))
    assert lin.median.tolist() == [20.0] and lin.mad.tolist() == [10.0]
    sym = np.array([10.0, 20.0, 30.0])
    for rule, counts in (("inverted_cdf", None), ("linear", np.array([3.0]))):
        s = P.summary_of_weights(np.array([[1.0, 1.0, 1.0]]), sym, levels=(0.5,), rule=rule,
                                 counts=counts)  # fmt: skip
        assert s.median.tolist() == [20.0] and s.mad.tolist() == [10.0]


def test_mad_and_quantile_kernels_by_hand():
    """``mad_of_weights`` and ``quantiles_of_weights`` called directly on compacted weights (the
    summary kernel and ``summary_of_weights`` drop the zero weights first; the kernels assume
    it): weights (1/4, 1/4, 1/2) on 2, 4, 6, median 4 (inverted CDF: the CDF reaches 1/2 at 4):
    distances 0 (4), 2 (2), 2 (6): MAD 2. Linear rule, count 4 (frequencies 1, 1, 2): median
    p = 2.5 -> 4 + 0.5 x 2 = 5; distances 1 (4, f 1), 1 (6, f 2), 3 (2, f 1); p = 2.5 -> 1."""
    y = np.array([2.0, 4.0, 6.0])
    w = np.array([0.25, 0.25, 0.5])
    assert K.mad_of_weights(w, y, 4.0, K.RULE_INVERTED_CDF, 1.0, 1.0) == 2.0
    assert K.mad_of_weights(w, y, 5.0, K.RULE_LINEAR, 1.0, 4.0) == 1.0
    out = np.empty(3)
    K.quantiles_of_weights(w, y, np.array([0.25, 0.5, 0.75]), K.RULE_INVERTED_CDF, 1.0, 1.0, out)
    assert out.tolist() == [2.0, 4.0, 6.0]
    K.quantiles_of_weights(w, y, np.array([0.0, 0.5, 1.0]), K.RULE_LINEAR, 1.0, 4.0, out)
    assert out.tolist() == [2.0, 5.0, 6.0]


def test_linear_level_at_a_cumulative_frequency_below_one_step():
    """Linear rule, weights (1/2, 1/4, 1/4) on 10, 20, 30 with count 2: frequencies 1, 1/2, 1/2,
    cumulative 1, 3/2, 2; levels 1/4 and 1/2 at positions p = 5/4 and 3/2 (p = q (2 - 1) + 1).
    5/4: last cumulative <= p is 1 (at 10): 10 + 1/4 x 10 = 12.5. 3/2 equals the cumulative
    frequency at 20 exactly: 20 + 0 x 10 = 20 (not 10 + 1/2 x 10 by interpolating over 20's
    frequency 1/2 from the previous value)."""
    y = np.array([10.0, 20.0, 30.0])
    w = np.array([0.5, 0.25, 0.25])
    out = np.empty(2)
    K.quantiles_of_weights(w, y, np.array([0.25, 0.5]), K.RULE_LINEAR, 1.0, 2.0, out)
    assert out.tolist() == [12.5, 20.0]
    assert [_weighted_linear(y, w * 2, q) for q in (0.25, 0.5)] == [12.5, 20.0]


def test_mad_walk_with_any_centre_equals_reference():
    """``mad_of_weights`` called directly (on nonzero weights, as its callers pass them) on 300
    small random cases: up to 6 distinct values (multiples of 5, so that distances tie across
    the centre), whole weights 0-3 (the zeros dropped), the centre at the reference median or
    at any of the values, a frequency scale (linear rule) of the total, half of it or 1 (a
    power-of-two total: every frequency exact in binary), against the plain reference
    (distances sorted stably in value order; ties across the centre are walked left first by
    both). Equal, bit for bit: both sum
    the same exact frequencies in the same order."""
    rng = np.random.default_rng(0)
    n_cases = 0
    while n_cases < 300:
        n = int(rng.integers(1, 7))
        y = np.sort(rng.choice(np.arange(0, 60, 5), n, replace=False)).astype(np.float64)
        w = rng.integers(0, 4, n).astype(np.float64)
        y, w = y[w > 0], w[w > 0]  # the callers' compaction
        total = w.sum()
        if total == 0:
            continue
        n_cases += 1
        if rng.random() < 0.5:
            u = rng.random()
            power_of_two = total in (1, 2, 4, 8)
            count = total if u < 0.4 else total / 2 if u < 0.8 or not power_of_two else 1.0
            f, rule, quant = w * (count / total), K.RULE_LINEAR, _weighted_linear
        else:
            count, f, rule, quant = 1.0, w, K.RULE_INVERTED_CDF, _weighted_inverted
        med = quant(y, f, 0.5) if rng.random() < 0.5 else float(rng.choice(y))
        got = K.mad_of_weights(w, y, med, rule, total, count)
        assert got == _mad_ref(y, f, med, quant), (w, y, med, rule, count)


def test_mad_distance_tie_is_walked_left_first():
    """Weights 1, 3, 2 on 10, 20, 30 with count 3 (frequencies 0.5, 1.5, 1): linear median
    p = 2 -> 20 (the cumulative frequency reaches 2 exactly at 20). Distances 0 (f 1.5), 10 at
    10 (f 0.5) and 10 at 30 (f 1): walked 0, then the tie left first, as the reference sorts
    it: cumulative 1.5, 2, 3; p = 2 is passed at the second 10: MAD 10 (walking 30 first, 2.5
    > 2 would interpolate 0 + 0.5 x 10 = 5)."""
    s = P.summary_of_weights(np.array([[1.0, 3.0, 2.0]]), np.array([10.0, 20.0, 30.0]),
                             levels=(0.5,), counts=np.array([3.0]))  # fmt: skip
    assert s.median.tolist() == [20.0] and s.mad.tolist() == [10.0]


def test_leaf_offsets_are_int32_while_the_packed_table_fits():
    """The weight kernels keep leaf offsets as int32 while every word offset of the packed table
    fits (fewer than 2**31 words), else int64. Tables of 2**31 words are 8 GiB: a broadcast view
    stands in for them (only the size is read)."""
    from types import SimpleNamespace

    def proto(words):
        return P._leaf_proto(SimpleNamespace(packed=np.broadcast_to(np.uint32(0), (words,))))

    assert proto(2**31 - 1).dtype == np.int32 and proto(100).dtype == np.int32
    assert proto(2**31).dtype == np.int64 and proto(3 * 2**31).dtype == np.int64


def test_a_row_without_weight_is_refused_with_the_whole_message():
    """Rows 1 and 3 of four have no weight: the message names the first and counts both."""
    W = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 0.0], [0.2, 0.8, 0.0], [0.0, 0.0, 0.0]])
    with pytest.raises(InputError) as e:
        P.summary_of_weights(W, np.array([1.0, 2.0, 3.0]), rule="inverted_cdf")
    assert str(e.value) == (
        "field 'weights': a row's weights sum to 0: it has no distribution "
        "(got 'row 1 (of 2 such rows)'); expected every row with a positive total weight"
    )


# ----------------------------------------------------------------------------- out-of-bag weights
# Leaves for the by-hand out-of-bag scatter: leaf -> out-of-bag members (rank,
# multiplicity); leaf 0 holds none (packed [0, 0], as build_tables writes it), leaf 4 takes two
# chunks (a tagged offset). Packed as build_tables packs (_oob_packed); the kernels' leaf lists
# hold the leaves' tagged offsets (_OOB_OFFSET).
_OOB_LEAVES = {
    0: [], 1: [(1, 1), (4, 2)], 2: [(0, 2)], 3: [(2, 1), (3, 1), (13, 1)],
    4: [(5, 1), (6, 3), (7, 1), (8, 1), (11, 2), (3, 1), (9, 1)],
}  # fmt: skip


def _oob_packed():
    words, offsets = [], {}
    for leaf, members in sorted(_OOB_LEAVES.items()):
        chunks = -(-len(members) // K.CHUNK)
        offsets[leaf] = len(words) + (chunks > 1)
        words += [chunks, sum(c for _, c in members)]
        words += [rank | c << K.RANK_BITS for rank, c in members]
        words += [q % K.CHUNK for q in range(len(members), K.CHUNK * chunks)]
    return np.array(words, dtype=np.uint32), offsets


_OOB_OFFSET = _oob_packed()[1]


def _oob_reference(leaves, tree_forest, share, n_records):
    """Plain loops over the leaf dictionary: each forest's trees whose leaf has >= 1 member
    (its count ``used``) give member ``c / n_leaf x share / used``; count: the contributing
    leaves' sizes times the share; NaN for both when a forest has no contributing tree."""
    w = np.zeros(n_records)
    used = [sum(1 for t, r in enumerate(tree_forest) if r == f and _OOB_LEAVES[leaves[t]])
            for f in range(len(share))]  # fmt: skip
    if min(used) == 0:
        return w, np.nan, np.nan
    total = count = 0.0
    for t, r in enumerate(tree_forest):
        members = _OOB_LEAVES[leaves[t]]
        if not members:
            continue
        n = sum(c for _, c in members)
        for rank, c in members:
            w[rank] += c / n * share[r] / used[r]
        total += share[r] / used[r]
        count += n * share[r]
    return w, total, count


def test_oob_scatter_by_hand():
    """``_scatter_oob`` (and ``_row_weights`` with ``honest``) on a hand-packed table, five
    trees of two forests with unequal shares, rows that meet the empty leaf before and after
    contributing trees, a row where forest 0 has no contributing tree (NaN, nothing added), a
    record reached through several trees, the largest rank, and a dirty ``used`` scratch: the
    weights, total and count of plain loops over the leaves."""
    packed = _oob_packed()[0]
    tree_forest = np.array([0, 0, 0, 1, 1], dtype=np.int64)
    share = np.array([0.6, 0.4])
    rows = [[1, 0, 2, 3, 0], [0, 0, 0, 3, 1], [3, 1, 2, 4, 2], [0, 2, 0, 0, 4], [2, 4, 2, 1, 1]]
    leaves = np.array([[_OOB_OFFSET[x] for x in row] for row in rows], dtype=np.int64)
    used = np.array([7.0, 9.0])  # left over from an earlier row: reset by the kernel
    for i, row in enumerate(rows):
        want, want_total, want_count = _oob_reference(row, tree_forest, share, 16)
        for f in (K._scatter_oob, K._row_weights):
            w = np.zeros(16)
            if f is K._scatter_oob:
                total, count = f(leaves, i, tree_forest, share, packed, w, used)
            else:  # forest_scale would give the all-member weights: must go unused
                total, count = f(leaves, i, tree_forest, share * 5, share, packed, w, True, used)
            if np.isnan(want_total):
                assert np.isnan(total) and np.isnan(count) and not w.any()
                continue
            nz = np.flatnonzero(w)
            assert nz.tolist() == np.flatnonzero(want).tolist()
            # measured: equal to 1 ulp (the kernel divides share by used before the product)
            np.testing.assert_allclose(w[nz], want[nz], rtol=1e-15, atol=0)
            np.testing.assert_allclose(total, want_total, rtol=1e-15)
            np.testing.assert_allclose(count, want_count, rtol=1e-15)
    assert used.tolist() == [3.0, 2.0]  # the last row's contributing trees per forest


def test_row_weights_without_honest_is_the_all_member_scatter():
    """``_row_weights`` with ``honest`` False is ``_scatter``: every member of every tree's
    leaf (one of them in two chunks), scaled by ``forest_scale``, count by ``forest_share``."""
    packed = _oob_packed()[0]
    tree_forest = np.array([0, 1, 1, 1], dtype=np.int64)
    scale, share = np.array([0.5, 0.25]), np.array([0.3, 0.7])
    leaves = np.array([[_OOB_OFFSET[x] for x in (2, 1, 3, 4)]], dtype=np.int64)
    w = np.zeros(16)
    total, count = K._row_weights(leaves, 0, tree_forest, scale, share, packed, w, False,
                                  np.zeros(2))  # fmt: skip
    want = np.zeros(16)
    want[0] = 0.5
    want[1], want[4] = 0.25 / 3, 0.5 / 3
    want[[2, 3, 13]] = 0.25 / 3
    want[[5, 7, 8, 3, 9]] += 0.25 / 10  # leaf 4 (size 10, two chunks): rank 3 in two leaves
    want[6], want[11] = 0.75 / 10, 0.5 / 10
    nz = np.flatnonzero(w)
    assert nz.tolist() == np.flatnonzero(want).tolist()
    np.testing.assert_allclose(w[nz], want[nz], rtol=1e-15, atol=0)
    assert total == 1.25
    np.testing.assert_allclose(count, 2 * 0.3 + 3 * 0.7 + 3 * 0.7 + 10 * 0.7, rtol=1e-15)


def test_oob_weights_of_unequal_forests_equal_brute_force(unequal):
    """Out-of-bag weights of forests of 12 and 7 trees (more trees than the prefetch distance):
    tables (empty leaves packed [0, 0]) and accumulator against the brute force of
    plain loops over scikit-learn's trees (each tree whose leaf holds >= 1 out-of-bag record
    gives each of them 1 / their number, the forest's sum divided by its count of such trees
    and by 2 forests); rows where a forest has no contributing tree are NaN."""
    X, y, forests, train, inbag, rows = unequal
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership="oob", inbag=inbag)
    rank = np.empty(y.size, dtype=np.int64)
    rank[np.argsort(y, kind="stable")] = np.arange(y.size)
    W = np.zeros((rows.shape[0], y.size))
    counts = np.zeros(rows.shape[0])
    undefined = np.zeros(rows.shape[0], dtype=bool)
    for r, forest in enumerate(forests):
        Wr = np.zeros_like(W)
        used = np.zeros(rows.shape[0])
        for t, tree in enumerate(as_sklearn(forest).estimators_):
            rec_leaf, row_leaf = tree.apply(X[train[r]]), tree.apply(rows)
            for i in range(rows.shape[0]):
                oob = train[r][(rec_leaf == row_leaf[i]) & (inbag[r][t] == 0)]
                if oob.size:
                    used[i] += 1
                    counts[i] += oob.size / 2
                    Wr[i, rank[oob]] += 1.0 / oob.size
        undefined |= used == 0
        W += Wr / np.maximum(used, 1)[:, None] / 2
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    ok = ~undefined
    assert ok.sum() >= 5  # (all 9 rows defined here; the undefined row: the by-hand test)
    assert np.array_equal(np.isnan(acc.totals), undefined)
    # measured: brute force and kernel agree to 6e-17 (totals 2e-16, counts exactly)
    np.testing.assert_allclose(acc.weights[ok], W[ok], rtol=0, atol=1e-15)
    np.testing.assert_allclose(acc.totals[ok], 1.0, rtol=1e-14)
    np.testing.assert_allclose(acc.counts[ok], counts[ok], rtol=1e-13)
