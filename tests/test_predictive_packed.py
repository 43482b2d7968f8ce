"""The weight kernels' packed leaf tables (one uint32 a member) and the accumulator's fast path
(Morton row order, destination rows streamed through a local vector): the same weights as a
brute-force computation, and the same bits whichever path adds them."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.errors import InputError
from srgpu.forest import predictive as P
from srgpu.forest import predictive_kernels as K
from srgpu.forest.grown import as_sklearn
from srgpu.forest.train import fit_forest


@pytest.fixture(scope="module")
def forest_130():
    """A 130-tree forest (enough trees for the Morton order and the streamed rows) on 300
    records, its in-bag counts, and 1200 rows (enough rows for the Morton order)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = 500 + 120 * X[:, 0] + 60 * np.sin(2 * X[:, 1]) + rng.normal(scale=40, size=300)
    train = np.sort(rng.choice(300, 240, replace=False))
    fc = ForestConfig(trees=130)
    seed = np.random.SeedSequence(9)
    forest = fit_forest(X[train], y[train], forest=fc, seed=seed)
    inbag = P.inbag_counts(n_train=train.size, forest=fc, seed=seed)
    rows = rng.normal(size=(1200, 4)).astype(np.float32)
    return X, y, forest, train, inbag, rows


def _brute(X, y, forest, train, inbag, rows, membership):
    """Weights (rows x records in y order) from scikit-learn's ``apply``, tree by tree."""
    order = np.argsort(y, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(y.size)
    trees = as_sklearn(forest).estimators_
    W = np.zeros((rows.shape[0], y.size))
    counts = np.zeros(rows.shape[0])
    for t, tree in enumerate(trees):
        c = np.ones(train.size) if membership == "all" else inbag[t].astype(float)
        same = tree.apply(rows)[:, None] == tree.apply(X[train])[None, :]
        mult = same * c[None, :]
        n_leaf = mult.sum(axis=1)
        W[:, rank[train]] += mult / n_leaf[:, None] / len(trees)
        counts += n_leaf
    return W, counts


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_packed_table_holds_every_member_once(forest_130, membership):
    X, y, forest, train, inbag, rows = forest_130
    t = P.leaf_tables(
        [forest], X=X, y=y, train_index=[train], membership=membership, inbag=[inbag]
    )  # fmt: skip
    assert t.packed.dtype == np.uint32
    leaves = np.nonzero(t.leaf_start[1:] > t.leaf_start[:-1])[0]
    n_words = 0
    for k in leaves:
        tagged = int(t.leaf_offset[k])
        o = tagged & ~1
        m = int(t.leaf_start[k + 1] - t.leaf_start[k])
        chunks = int(t.packed[o])
        assert chunks == -(-m // K.CHUNK) and tagged - o == (chunks > 1)
        assert t.packed[o + 1] == t.leaf_size[k]
        words = t.packed[o + 2 : o + 2 + m]
        ranks = words & K.RANK_MASK
        mult = words >> K.RANK_BITS
        np.testing.assert_array_equal(ranks, t.members[t.leaf_start[k] : t.leaf_start[k + 1]])
        np.testing.assert_array_equal(
            mult / t.leaf_size[k], t.member_weight[t.leaf_start[k] : t.leaf_start[k + 1]]
        )
        assert mult.sum() == t.leaf_size[k] and mult.min() >= 1
        padding = t.packed[o + 2 + m : o + 2 + K.CHUNK * chunks]
        assert (padding >> K.RANK_BITS == 0).all()  # multiplicity 0: adds zeros
        assert ((padding & K.RANK_MASK) < y.size).all()
        n_words += 2 + K.CHUNK * chunks
    assert t.packed.size == n_words
    sizes = np.bincount(t.leaf_start[leaves + 1] - t.leaf_start[leaves])
    assert sizes[1 : K.CHUNK + 1].sum() > 0  # leaves of one chunk ...
    if membership == "all":  # ... and of two or more (in-bag leaves here hold at most 6)
        assert sizes[K.CHUNK + 1 :].sum() > 0


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_fast_accumulation_equals_brute_force_and_every_path_the_same_bits(forest_130, membership):
    X, y, forest, train, inbag, rows = forest_130
    t = P.leaf_tables(
        [forest], X=X, y=y, train_index=[train], membership=membership, inbag=[inbag]
    )  # fmt: skip
    n = rows.shape[0]
    fast = P.WeightAccumulator.zeros(n_rows=n, n_records=y.size)
    fast.add(t, rows)  # Morton order, rows streamed (130 trees), all threads
    W, counts = _brute(X, y, forest, train, inbag, rows, membership)
    np.testing.assert_allclose(fast.weights, W, rtol=0, atol=1e-15)
    np.testing.assert_allclose(fast.counts, counts, rtol=1e-13)
    np.testing.assert_allclose(fast.totals, 1.0, rtol=1e-14)
    # the given order on one thread (dest given), and the kernel without streaming
    given = P.WeightAccumulator.zeros(n_rows=n, n_records=y.size)
    given.add(t, rows, dest=np.arange(n))
    direct = P.WeightAccumulator.zeros(n_rows=n, n_records=y.size)
    a = t.arrays
    tree_offsets, tree_forest, scale, share = P._batch_trees(t)
    K.accumulate_kernel(
        rows, np.arange(n, dtype=np.int64), *P._tree_args(a)[:4], t.leaf_offset, tree_offsets,
        tree_forest, scale, share, int(a.tree_depth.max()), 256, np.empty(0, np.int64),
        t.packed, np.arange(n, dtype=np.int64), direct.weights, direct.totals, direct.counts,
        False,
    )  # fmt: skip
    for other in (given, direct):
        np.testing.assert_array_equal(other.weights, fast.weights)
        np.testing.assert_array_equal(other.totals, fast.totals)
        np.testing.assert_array_equal(other.counts, fast.counts)
    # and the summary kernel reads the same distribution
    s = P.predictive_summary(t, rows)
    ref = fast.summary(t.y_sorted)
    np.testing.assert_array_equal(s.quantiles, ref.quantiles)
    np.testing.assert_array_equal(s.mad, ref.mad)


def test_multiplicity_beyond_the_packed_field_is_refused(forest_130):
    X, y, forest, train, inbag, rows = forest_130
    bad = inbag.copy()
    bad[0, 0] = K.MAX_MULTIPLICITY + 1
    with pytest.raises(InputError, match="bootstrap counts"):
        P.leaf_tables([forest], X=X, y=y, train_index=[train], membership="inbag", inbag=[bad])
