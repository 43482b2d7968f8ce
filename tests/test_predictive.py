"""Predictive distributions (quantile regression forests): brute-force weights on tiny forests,
moments, exact pooled quantiles/median/MAD, quantile-forest as the oracle on the same trees and
rows, nvForest (device="cpu") on the moments path, quantregForest's one-value-per-leaf scheme."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.errors import ConfigError, InputError
from srgpu.forest import predictive as P
from srgpu.forest.grown import as_sklearn
from srgpu.forest.train import fit_forest
from srgpu.run.sampling import PURPOSE_FOREST, PURPOSE_IMPORTANCE, PURPOSE_SAMPLE
from tests import requires_nvforest

LEVELS = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)


def _records(n: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    y = 600 + 150 * X[:, 0] + 80 * np.sin(2 * X[:, 1]) + rng.normal(scale=60, size=n)
    return X, y, rng


def tiny_forests():
    """Two tiny forests (numba grower, 6 trees each) on different 75 % subsets (36 records) of
    48 records, their training indices and bootstrap counts, and 25 rows."""
    X, y, rng = _records(48, 3, 7)
    fc = ForestConfig(trees=6)
    forests, train, inbag = [], [], []
    for r in range(2):
        tr = np.sort(rng.choice(48, 36, replace=False))
        seed = np.random.SeedSequence(11, spawn_key=(r,))
        forests.append(fit_forest(X[tr], y[tr], forest=fc, seed=seed))
        train.append(tr)
        inbag.append(P.inbag_counts(n_train=tr.size, forest=fc, seed=seed))
    rows = rng.normal(size=(25, 3)).astype(np.float32)
    return X, y, forests, train, inbag, rows


@pytest.fixture(scope="module")
def tiny():
    """:func:`tiny_forests`."""
    return tiny_forests()


def _brute_weights(X, y, forests, train, inbag, rows, membership):
    """The pooled weight matrix (rows x records in y order) by plain loops over trees, records
    and rows, with scikit-learn's ``apply``."""
    order = np.argsort(y, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(y.size)
    W = np.zeros((rows.shape[0], y.size))
    counts = np.zeros(rows.shape[0])
    K = len(forests)
    for r, forest in enumerate(forests):
        trees = as_sklearn(forest).estimators_
        T = len(trees)
        for t, tree in enumerate(trees):
            rec_leaf = tree.apply(X[train[r]])
            row_leaf = tree.apply(rows)
            for i in range(rows.shape[0]):
                mult = {}
                for j, rec in enumerate(train[r]):
                    if rec_leaf[j] == row_leaf[i]:
                        c = 1 if membership == "all" else int(inbag[r][t, j])
                        if c:
                            mult[rec] = mult.get(rec, 0) + c
                n_leaf = sum(mult.values())
                for rec, c in mult.items():
                    W[i, rank[rec]] += c / n_leaf / T / K
                counts[i] += n_leaf / K
    return W, counts, y[order]


def _weighted_linear(values, freq, q):
    """quantile-forest's weighted quantile, written plainly: frequencies ``freq`` on sorted
    ``values``; p = q (S - 1) + 1; last j with C_j <= p, next k:
    y_j + min(p - C_j, 1)(y_k - y_j)."""
    keep = freq > 0
    v, f = values[keep], freq[keep]
    c = np.cumsum(f)
    p = q * (c[-1] - 1) + 1
    j = np.searchsorted(c, p, side="right") - 1
    if j < 0:
        return v[0]
    if j >= v.size - 1:
        return v[-1]
    return v[j] + min(p - c[j], 1.0) * (v[j + 1] - v[j])


def _weighted_inverted(values, w, q):
    keep = w > 0
    v, c = values[keep], np.cumsum(w[keep])
    return v[min(np.searchsorted(c, q * c[-1], side="left"), v.size - 1)]


def _mad_ref(values, w, med, quantile):
    d = np.abs(values - med)
    o = np.argsort(d, kind="stable")
    return quantile(d[o], w[o], 0.5)


def reference_summary(ys, w, freq, rule, levels):
    """(quantiles at ``levels``, median, MAD) of one row by the plain references: the linear
    rule on the frequencies ``freq``, the inverted CDF on the weights ``w``."""
    if rule == "linear":
        quant, v = _weighted_linear, freq
    else:
        quant, v = _weighted_inverted, w
    med = quant(ys, v, 0.5)
    return [quant(ys, v, q) for q in levels], med, _mad_ref(ys, v, med, quant)


def assert_summary_equals_reference(got, ys, W, counts, rule):
    """Every row of the summary ``got`` (at :data:`LEVELS`) against :func:`reference_summary`
    of the brute-force weights ``W`` and member counts ``counts``."""
    for i in range(W.shape[0]):
        want, med, mad = reference_summary(ys, W[i], W[i] * counts[i], rule, LEVELS)
        np.testing.assert_allclose(got.quantiles[i], want, rtol=1e-12)
        np.testing.assert_allclose(got.median[i], med, rtol=1e-12)
        np.testing.assert_allclose(got.mad[i], mad, rtol=1e-10, atol=1e-9)


# ----------------------------------------------------------------------------- tables
def test_inbag_counts_replay_the_bootstrap_of_both_trainers():
    X, y, _ = _records(120, 4, 3)
    fc = ForestConfig(trees=8)
    seed = np.random.SeedSequence(5)
    counts = P.inbag_counts(n_train=120, forest=fc, seed=seed)
    assert counts.shape == (8, 120) and (counts.sum(axis=1) == 120).all()
    for trainer in ("numba", "sklearn"):
        forest = fit_forest(X, y, forest=fc, seed=seed, trainer=trainer)
        tables = P.leaf_tables(
            [forest], X=X, y=y, train_index=[np.arange(120)], membership="inbag", inbag=[counts]
        )
        a = tables.arrays
        leaf = a.children[0::2] == np.arange(a.n_nodes)
        n_node = np.concatenate(
            [e.tree_.weighted_n_node_samples for e in as_sklearn(forest).estimators_]
        )
        np.testing.assert_array_equal(tables.leaf_size[leaf], n_node[leaf])
        # in-bag leaf means of y are the trees' own leaf values: the conditional mean is the
        # forest mean
        np.testing.assert_allclose(tables.moment1[leaf], a.value[leaf], rtol=1e-13)
    no_boot = P.inbag_counts(n_train=10, forest=ForestConfig(trees=2, bootstrap=False), seed=seed)
    assert (no_boot == 1).all()


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_weights_equal_brute_force(tiny, membership):
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, membership)
    np.testing.assert_allclose(acc.weights, W, rtol=0, atol=1e-15)
    np.testing.assert_allclose(acc.weights.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(acc.totals, 1.0, rtol=1e-14)
    np.testing.assert_allclose(acc.counts, counts, rtol=1e-13)
    np.testing.assert_array_equal(tables.y_sorted, ys)
    # records outside both training sets never get weight
    untrained = np.setdiff1d(np.arange(y.size), np.union1d(*train))
    assert (acc.weights[:, tables.record_rank[untrained]] == 0).all()
    # accumulating the two forests one batch at a time gives the same pooled weights
    acc2 = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    for r in range(2):
        acc2.add(tables.subset(r), rows, n_forests=2)
    np.testing.assert_allclose(acc2.weights, W, rtol=0, atol=1e-15)


def test_per_cell_mixture_over_years(tiny):
    """A year-major grid of 5 cells x 5 years: the per-cell (time-mean) distribution is the
    average of the cell's five cell-year weight vectors."""
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train)
    rows = rows[:25]
    per_row = P.WeightAccumulator.zeros(n_rows=25, n_records=y.size)
    per_row.add(tables, rows)
    per_cell = P.WeightAccumulator.zeros(n_rows=5, n_records=y.size)
    per_cell.add(tables, rows, dest=np.arange(25) % 5, share=1 / 5)
    want = per_row.weights.reshape(5, 5, -1).mean(axis=0)
    np.testing.assert_allclose(per_cell.weights, want, rtol=1e-13, atol=1e-17)
    np.testing.assert_allclose(per_cell.totals, 1.0, rtol=1e-13)
    np.testing.assert_allclose(per_cell.counts, per_row.counts.reshape(5, 5).mean(axis=0))
    summ = per_cell.summary(tables.y_sorted)
    assert summ.quantiles.shape == (5, len(LEVELS)) and np.all(summ.mad > 0)
    with pytest.raises(InputError, match="dest"):
        per_cell.add(tables, rows, dest=np.arange(3))


@pytest.mark.parametrize("membership", ["all", "inbag"])
def test_moments_equal_brute_force(tiny, membership):
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    W, _, ys = _brute_weights(X, y, forests, train, inbag, rows, membership)
    mom = P.predictive_moments(tables, rows)
    mean, sd = mom.pooled()
    np.testing.assert_allclose(mean, W @ ys, rtol=1e-13)
    np.testing.assert_allclose(sd, np.sqrt(W @ ys**2 - (W @ ys) ** 2), rtol=1e-8)
    for r in range(2):  # each forest alone
        Wr, _, _ = _brute_weights(X, y, forests[r : r + 1], train[r : r + 1], inbag[r : r + 1],
                                  rows, membership)  # fmt: skip
        np.testing.assert_allclose(mom.mean[r], Wr @ ys, rtol=1e-13)
        np.testing.assert_allclose(mom.second[r], Wr @ ys**2, rtol=1e-13)
    if membership == "inbag":
        forest_mean = np.stack([f.predict(rows) for f in forests])
        np.testing.assert_allclose(mom.mean, forest_mean, rtol=1e-13)


@pytest.mark.parametrize("membership", ["all", "inbag"])
@pytest.mark.parametrize("rule", ["linear", "inverted_cdf"])
def test_summary_equals_reference_on_brute_force_weights(tiny, membership, rule):
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    W, counts, ys = _brute_weights(X, y, forests, train, inbag, rows, membership)
    got = P.predictive_summary(tables, rows, levels=LEVELS, rule=rule)
    assert_summary_equals_reference(got, ys, W, counts, rule)
    np.testing.assert_allclose(got.quantile(0.5), got.median, rtol=1e-12)
    np.testing.assert_allclose(got.mad_scaled, 1.482602218505602 * got.mad, rtol=1e-15)
    assert (np.diff(got.quantiles, axis=1) >= 0).all()


def test_inverted_cdf_equals_numpy_weighted_quantile(tiny):
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train)
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    levels = (0.1, 0.3, 0.5, 0.7, 0.9)
    got = acc.summary(tables.y_sorted, levels=levels, rule="inverted_cdf")
    checked = 0
    for i in range(rows.shape[0]):
        want = np.quantile(tables.y_sorted, levels, weights=acc.weights[i], method="inverted_cdf")
        cum = np.cumsum(acc.weights[i])
        for k, q in enumerate(levels):
            # a tiny forest's weights are simple fractions: a level the cumulative weight hits
            # exactly is decided by rounding, differently by a different summation order
            if np.abs(cum - q).min() > 1e-12:
                assert got.quantiles[i, k] == want[k]
                checked += 1
    assert checked >= 0.8 * rows.shape[0] * len(levels)


def test_levels_in_any_order_and_errors(tiny):
    X, y, forests, train, inbag, rows = tiny
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train)
    a = P.predictive_summary(tables, rows, levels=(0.9, 0.1, 0.5))
    b = P.predictive_summary(tables, rows, levels=(0.1, 0.5, 0.9))
    np.testing.assert_array_equal(a.quantiles[:, [1, 2, 0]], b.quantiles)
    with pytest.raises(ConfigError, match="levels"):
        P.predictive_summary(tables, rows, levels=(1.5,))
    with pytest.raises(ConfigError, match="rule"):
        P.predictive_summary(tables, rows, rule="nearest")
    with pytest.raises(ConfigError, match="membership"):
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="honest")
    with pytest.raises(InputError, match="bootstrap counts"):
        P.leaf_tables(forests, X=X, y=y, train_index=train, membership="inbag")
    with pytest.raises(InputError, match="training index"):
        P.leaf_tables(forests, X=X, y=y, train_index=train[:1])
    with pytest.raises(InputError, match="wrong shape"):
        P.predictive_moments(tables, rows[:, :2])


def test_rows_in_morton_order_give_the_same_answer():
    """Enough rows and trees to take the engine's deduplicated, Morton-ordered path."""
    X, y, rng = _records(300, 4, 21)
    forest = fit_forest(X, y, forest=ForestConfig(trees=130), seed=np.random.SeedSequence(2))
    tables = P.leaf_tables([forest], X=X, y=y, train_index=[np.arange(300)])
    rows = rng.normal(size=(1500, 4)).astype(np.float32)
    rows[700:900] = rows[:200]  # repeats: deduplicated
    got = P.predictive_summary(tables, rows)
    mom = P.predictive_moments(tables, rows)
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=300)
    acc.add(tables, rows)  # row by row, in the given order
    want = acc.summary(tables.y_sorted)
    np.testing.assert_array_equal(got.quantiles, want.quantiles)
    np.testing.assert_array_equal(got.mad, want.mad)
    np.testing.assert_allclose(mom.mean[0], acc.weights @ tables.y_sorted, rtol=1e-12)


# ----------------------------------------------------------------------------- the oracle
def _oracle(n=400, trees=40, seed=3, y_step=None):
    """quantile-forest's forest on synthetic records (``y`` rounded to multiples of ``y_step``
    when given: tied values), its in-bag counts and 300 rows."""
    qf_mod = pytest.importorskip("quantile_forest")
    from sklearn.ensemble._forest import _generate_sample_indices

    X, y, rng = _records(n, 4, seed)
    if y_step is not None:
        y = np.round(y / y_step) * y_step
    qf = qf_mod.RandomForestQuantileRegressor(
        n_estimators=trees, max_features=1, min_samples_split=6, max_samples_leaf=None,
        bootstrap=True, random_state=seed, n_jobs=1,
    ).fit(X, y)  # fmt: skip
    inbag = np.stack(
        [
            np.bincount(_generate_sample_indices(e.random_state, n, n, None), minlength=n)
            for e in qf.estimators_
        ]
    )
    rows = rng.normal(size=(300, 4)).astype(np.float32)
    return qf_mod, qf, X, y, inbag, rows


def _qf_all_rows(qf_mod, qf, X, y):
    """quantile-forest's own leaf tables rebuilt with every training row as a leaf member
    (its ``bootstrap=False`` branch, on the same trees)."""
    from quantile_forest._quantile_forest_fast import QuantileForest

    y2 = y.reshape(-1, 1)
    sorter = np.argsort(y2, axis=0)
    y_sorted = y2[sorter[:, 0]]
    qf.bootstrap = False
    try:
        leaves = qf._get_y_train_leaves(X, y_sorted, sorter=sorter)
    finally:
        qf.bootstrap = True
    bounds = qf._get_y_bound_leaves(y_sorted, leaves)
    qf.forest_ = QuantileForest(y_sorted.astype(np.float64).T, leaves, bounds)
    return qf


@pytest.mark.parametrize("membership", ["inbag", "all"])
def test_quantiles_equal_quantile_forest_on_the_same_trees(membership):
    """Tolerance: 1e-12 relative (observed: at most 4e-14, three quarters of the values bit for
    bit equal; the weights are summed in another order)."""
    qf_mod, qf, X, y, inbag, rows = _oracle()
    tables = P.leaf_tables(
        [qf], X=X, y=y, train_index=[np.arange(y.size)], membership=membership, inbag=[inbag]
    )
    if membership == "all":
        qf = _qf_all_rows(qf_mod, qf, X, y)
    want = qf.predict(rows, quantiles=list(LEVELS), weighted_quantile=True, weighted_leaves=True)
    got = P.predictive_summary(tables, rows, levels=LEVELS, rule="linear")
    np.testing.assert_allclose(got.quantiles, want, rtol=1e-12)
    want_mean = qf.predict(rows, quantiles="mean", weighted_quantile=True, weighted_leaves=True)
    mom = P.predictive_moments(tables, rows)
    np.testing.assert_allclose(mom.mean[0], want_mean, rtol=1e-12)
    if membership == "inbag":  # the in-bag conditional mean is the forest mean
        forest_mean = np.mean([e.predict(rows) for e in qf.estimators_], axis=0)
        np.testing.assert_allclose(mom.mean[0], forest_mean, rtol=1e-12)


def test_mad_equals_quantile_forest_weighted_quantile_routine():
    """The MAD walk against quantile-forest's own weighted-quantile routine applied to the sorted
    absolute deviations with the same frequencies."""
    qf_mod, qf, X, y, inbag, rows = _oracle(n=300, trees=30, seed=5)
    from quantile_forest._quantile_forest_fast import calc_weighted_quantile

    tables = P.leaf_tables([qf], X=X, y=y, train_index=[np.arange(y.size)])
    acc = P.WeightAccumulator.zeros(n_rows=rows.shape[0], n_records=y.size)
    acc.add(tables, rows)
    got = P.predictive_summary(tables, rows)
    for i in range(rows.shape[0]):
        freq = acc.weights[i] * acc.counts[i]
        med = calc_weighted_quantile(list(tables.y_sorted), list(freq), [0.5], b"linear", True)[0]
        d = np.abs(tables.y_sorted - med)
        o = np.argsort(d, kind="stable")
        mad = calc_weighted_quantile(list(d[o]), list(freq[o]), [0.5], b"linear", True)[0]
        np.testing.assert_allclose(got.median[i], med, rtol=1e-9)
        np.testing.assert_allclose(got.mad[i], mad, rtol=1e-9, atol=1e-9)


def test_quantile_forest_differs_only_in_its_order_of_tied_values():
    """Tied y (records rounded to multiples of 10, as SRDB's are). The linear rule reads the
    weights as frequencies, which can be below 1; then the order of records with the same y
    decides where that value's jump lies (see the next test), and quantile-forest orders them by
    an unstable ``np.argsort``, srgpu stably (record order). With the records passed in
    quantile-forest's own order (its ``sorter_``), srgpu's stable order is quantile-forest's and
    every quantile equals its to 1e-12 relative (measured: at most 2.5e-14); in the table's
    order some differ (measured: 7 of 2100, up to 0.9 %). On the real 0.5 deg grid (SRDB v5.0
    SR, 500 trees) the same holds: 80 of the 87 values beyond 1e-12 are this (checked with
    exact rational weights: each library's value is the rule's exact answer in its order, and
    no cumulative frequency equals a quantile position exactly); the other 7 are rounding
    (docs/predictive.md, Cost)."""
    qf_mod, qf, X, y, inbag, rows = _oracle(y_step=10.0)
    want = qf.predict(rows, quantiles=list(LEVELS), weighted_quantile=True, weighted_leaves=True)
    s = qf.sorter_[:, 0]
    position = np.empty_like(s)
    position[s] = np.arange(s.size)  # record j of quantile-forest's table is record position[j]
    ordered = P.leaf_tables(
        [qf], X=X[s], y=y[s], train_index=[position], membership="inbag", inbag=[inbag]
    )
    got = P.predictive_summary(ordered, rows, levels=LEVELS, rule="linear").quantiles
    np.testing.assert_allclose(got, want, rtol=1e-12)
    tables = P.leaf_tables(
        [qf], X=X, y=y, train_index=[np.arange(y.size)], membership="inbag", inbag=[inbag]
    )
    ours = P.predictive_summary(tables, rows, levels=LEVELS, rule="linear").quantiles
    assert np.sum(np.abs(ours - want) > 1e-6 * np.abs(want)) > 0  # the order mattered here


def test_linear_rule_depends_on_the_order_of_tied_values():
    """Values 0, 10, 10 with frequencies 1.5, then 0.5 and 1.0 in either order (S = 3): at
    q = 0.6 the position is p = q (S - 1) + 1 = 2.2. First 0.5: the cumulative frequency of the
    first 10 is 2.0 <= p, so the quantile is 10; first 1.0: it is 2.5 > p, so the quantile
    interpolates from 0 by min(p - 1.5, 1) = 0.7 to 7 (quantile-forest's routine gives the
    same two answers). Both are the rule's exact answer: no rounding is involved."""
    from srgpu.forest import predictive_kernels as K

    y = np.array([0.0, 10.0, 10.0])
    levels = np.array([0.6])
    out = np.empty(1)
    for freq, want in (([1.5, 0.5, 1.0], 10.0), ([1.5, 1.0, 0.5], 7.0)):
        w = np.array(freq) / 3.0
        K.quantiles_of_weights(w, y, levels, K.RULE_LINEAR, 1.0, 3.0, out)
        np.testing.assert_allclose(out[0], want, rtol=1e-14)
    qf_fast = pytest.importorskip("quantile_forest._quantile_forest_fast")
    for freq, want in (([1.5, 0.5, 1.0], 10.0), ([1.5, 1.0, 0.5], 7.0)):
        got = qf_fast.calc_weighted_quantile(list(y), freq, [0.6], b"linear", True)[0]
        np.testing.assert_allclose(got, want, rtol=1e-14)


# ----------------------------------------------------------------------------- engines
def _sr_like_tables(membership="all"):
    X, y, rng = _records(500, 5, 17)
    fc = ForestConfig(trees=25)
    forests, train, inbag = [], [], []
    for r in range(2):
        tr = np.sort(rng.choice(500, 400, replace=False))
        seed = np.random.SeedSequence(4, spawn_key=(r,))
        forests.append(fit_forest(X[tr], y[tr], forest=fc, seed=seed))
        train.append(tr)
        inbag.append(P.inbag_counts(n_train=400, forest=fc, seed=seed))
    tables = P.leaf_tables(forests, X=X, y=y, train_index=train, membership=membership, inbag=inbag)
    rows = rng.normal(size=(700, 5)).astype(np.float32)
    rows[::50, 2] = np.nan  # missing values follow scikit-learn's rule in every engine
    return tables, rows


def test_moment_forests_through_the_existing_engines():
    """The two moment forests through the unchanged mean-only engines (scikit-learn, the numba
    kernel) equal the fused two-accumulator walk."""
    from srgpu.forest.numba_engine import NumbaEngine
    from srgpu.forest.sklearn_engine import SklearnEngine

    tables, rows = _sr_like_tables()
    want = P.predictive_moments(tables, rows)
    for engine in (SklearnEngine(), NumbaEngine()):
        got = P.predictive_moments(tables, rows, engine=engine)
        np.testing.assert_allclose(got.mean, want.mean, rtol=1e-13)
        np.testing.assert_allclose(got.second, want.second, rtol=1e-13)


@requires_nvforest
@pytest.mark.nvforest
def test_nvforest_cpu_moments_equal_numba():
    """nvForest ``device="cpu"``: ``precision="double"`` agrees with the numba kernel to 1e-12
    relative; ``"single"`` (float32 leaves and sums) to 1e-5 relative on the mean and second
    moment and 1e-3 absolute per unit of SD on the SD (cancellation in E[Y^2] - E[Y]^2)."""
    tables, rows = _sr_like_tables()
    # NaN rows left out: nvForest sends a NaN down a different child than scikit-learn's
    # missing_go_to_left for these trees (the plain mean-only engine does the same)
    rows = rows[~np.isnan(rows).any(axis=1)]
    want, single = nvforest_cpu_moments_match_numba(tables, rows)
    np.testing.assert_allclose(single.sd(), want.sd(), atol=1e-3 * want.sd().mean())


def nvforest_cpu_moments_match_numba(tables, rows):
    """Assert nvForest ``device="cpu"``'s moments equal the numba walk's: ``"double"`` to 1e-12
    relative, ``"single"`` to 1e-5; return (numba's, single precision's)."""
    from srgpu.forest.nvforest_engine import NvForestEngine

    want = P.predictive_moments(tables, rows)
    got = P.predictive_moments(
        tables, rows, engine=NvForestEngine(device="cpu", precision="double")
    )
    np.testing.assert_allclose(got.mean, want.mean, rtol=1e-12)
    np.testing.assert_allclose(got.second, want.second, rtol=1e-12)
    single = P.predictive_moments(tables, rows, engine=NvForestEngine(device="cpu"))
    np.testing.assert_allclose(single.mean, want.mean, rtol=1e-5)
    np.testing.assert_allclose(single.second, want.second, rtol=1e-5)
    return want, single


# ----------------------------------------------------------------------------- quantregForest
def test_qrf_sample_scheme():
    tables, rows = _sr_like_tables()
    seeds = [P.qrf_sample_seed(9, r, "SR") for r in range(2)]
    assert P.PURPOSE_QRF_SAMPLE not in (PURPOSE_SAMPLE, PURPOSE_FOREST, PURPOSE_IMPORTANCE)
    values = P.qrf_sample_leaf_values(tables, seeds=seeds)
    np.testing.assert_array_equal(values, P.qrf_sample_leaf_values(tables, seeds=seeds))
    a = tables.arrays
    leaf = a.children[0::2] == np.arange(a.n_nodes)
    assert np.isnan(values[~leaf]).all() and np.isfinite(values[leaf]).all()
    for n in np.flatnonzero(leaf)[:200]:  # each kept value is one of the leaf's members
        members = tables.y_sorted[tables.members[tables.leaf_start[n] : tables.leaf_start[n + 1]]]
        assert values[n] in members
    mean, sd, summ = P.qrf_sample_summary(tables, rows, leaf_values=values, levels=LEVELS)
    # brute force: the K * T values each row reaches, through scikit-learn's apply
    per_row = []
    for r, forest in enumerate(tables.forests):
        for k, est in enumerate(as_sklearn(forest).estimators_):
            root = a.tree_offsets[a.forest_offsets[r] + k]
            per_row.append(values[root + est.apply(rows)])
    V = np.stack(per_row, axis=1)
    np.testing.assert_allclose(mean, V.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(sd, V.std(axis=1), rtol=1e-10)
    np.testing.assert_allclose(summ.quantiles, np.quantile(V, LEVELS, axis=1).T, rtol=1e-13)
    med = np.median(V, axis=1)
    np.testing.assert_allclose(summ.mad, np.median(np.abs(V - med[:, None]), axis=1))
    # a random member per leaf: over many draws, the scheme's mean approaches the all-rows
    # conditional mean (the expectation of one draw is the leaf mean)
    draws = [
        P.qrf_sample_summary(
            tables, rows[:50],
            leaf_values=P.qrf_sample_leaf_values(
                tables, seeds=[P.qrf_sample_seed(s, r, "SR") for r in range(2)]
            ),
        )[0]
        for s in range(40)
    ]  # fmt: skip
    exact = P.predictive_moments(tables, rows[:50]).pooled()[0]
    assert np.abs(np.mean(draws, axis=0) - exact).mean() < 0.02 * exact.mean()
