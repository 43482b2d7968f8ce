"""The numba tree grower grows scikit-learn's trees (srgpu.forest.numba_train)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from srgpu.config import ForestConfig
from srgpu.errors import ConfigError
from srgpu.forest.arrays import forest_arrays
from srgpu.forest.numba_engine import NumbaEngine
from srgpu.forest.numba_train import (
    GrownTrees,
    concat_grown,
    grow_forest,
    grow_tree_parts,
    node_dtype,
    rand_r_states,
    to_sklearn_trees,
)
from srgpu.forest.train import fit_forest, sklearn_tree_params


# -- helpers -------------------------------------------------------------------------------
def _data(n, p, seed=0, *, decimals=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(np.float32)
    if decimals is not None:  # ties between distinct rows
        X = np.round(X, decimals).astype(np.float32)
    y = 700 + 180 * X[:, 0] + 120 * np.sin(2 * X[:, -1]) + rng.normal(scale=150, size=n)
    return X, y


def fit_trees(X, y, *, boot, tree_seeds, mtry, nodesize, params, chunk=None, exact=False):
    """The grown trees (chunk by chunk, joined) as fitted ``DecisionTreeRegressor`` objects."""
    grown = concat_grown(
        grow_tree_parts(
            X, y, boot=boot, tree_seeds=tree_seeds, mtry=mtry, nodesize=nodesize, chunk=chunk,
            exact=exact,
        )
    )  # fmt: skip
    return to_sklearn_trees(grown, params=params, tree_seeds=np.atleast_1d(tree_seeds))


def _sk_tree(X, y, rows, *, nodesize, mtry, seed):
    """The reference: scikit-learn fitted on the explicitly duplicated rows."""
    est = DecisionTreeRegressor(
        min_samples_split=nodesize + 1, min_samples_leaf=1, max_features=mtry, random_state=seed
    )
    rows = np.arange(len(y)) if rows is None else rows
    return est.fit(X[rows], y[rows]).tree_


def _tree_slice(g: GrownTrees, t: int) -> dict:
    lo, hi = int(g.tree_offsets[t]), int(g.tree_offsets[t + 1])
    n = g.nodes[lo:hi]
    return {
        "children_left": n["left_child"],
        "children_right": n["right_child"],
        "feature": n["feature"],
        "threshold": n["threshold"],
        "n_node_samples": n["n_node_samples"],
        "weighted_n_node_samples": n["weighted_n_node_samples"],
        "missing_go_to_left": n["missing_go_to_left"],
        "value": g.value[lo:hi],
        "impurity": n["impurity"],
        "max_depth": int(g.max_depth[t]),
    }


def _assert_same_tree(g: GrownTrees, t: int, ref, *, rtol=1e-12):
    """Node for node: structure, features, thresholds and counts exactly; values and
    impurities to ``rtol`` (and an absolute ``rtol`` times the root's impurity)."""
    mine = _tree_slice(g, t)
    assert mine["max_depth"] == ref.max_depth
    assert mine["feature"].shape[0] == ref.node_count
    for name in (
        "children_left",
        "children_right",
        "feature",
        "threshold",
        "n_node_samples",
        "weighted_n_node_samples",
    ):
        np.testing.assert_array_equal(mine[name], getattr(ref, name), err_msg=name)
    internal = ref.children_left != -1  # scikit-learn leaves it 0 at leaves (zeroed memory)
    np.testing.assert_array_equal(
        mine["missing_go_to_left"][internal], ref.missing_go_to_left[internal]
    )
    assert not mine["missing_go_to_left"][~internal].any()
    np.testing.assert_allclose(mine["value"], ref.value[:, 0, 0], rtol=rtol, atol=0)
    scale = max(abs(float(ref.impurity[0])), 1.0)
    np.testing.assert_allclose(mine["impurity"], ref.impurity, rtol=rtol, atol=rtol * scale)


def _assert_bit_identical_forests(a, b):
    assert len(a.estimators_) == len(b.estimators_)
    for ea, eb in zip(a.estimators_, b.estimators_, strict=True):
        sa, sb = ea.tree_.__getstate__(), eb.tree_.__getstate__()
        assert sa["node_count"] == sb["node_count"]
        assert sa["max_depth"] == sb["max_depth"]
        assert sa["nodes"].tobytes() == sb["nodes"].tobytes()
        assert sa["values"].tobytes() == sb["values"].tobytes()


# -- the random stream ---------------------------------------------------------------------
def test_rand_r_states_match_numpy_random_state():
    """scikit-learn seeds its splitter with RandomState(seed).randint(0, 2**31 - 1); the
    grower replays MT19937's seeding for it."""
    seeds = np.concatenate(
        [[0, 1, 2, 5489, 2**31 - 2, 2**31 - 1, 2**31, 2**32 - 1]]
        + [np.random.default_rng(3).integers(0, 2**32, size=200)]
    )
    ref = [np.random.RandomState(int(s)).randint(0, 2**31 - 1) for s in seeds]
    np.testing.assert_array_equal(rand_r_states(seeds), ref)
    with pytest.raises(ValueError):
        rand_r_states(np.array([-1]))
    with pytest.raises(ValueError):
        rand_r_states(np.array([2**32]))


# -- 1. mtry = p, no bootstrap: scikit-learn's tree ----------------------------------------
@pytest.mark.parametrize(
    ("n", "p", "nodesize"),
    [(200, 3, 1), (200, 3, 5), (500, 5, 5), (300, 1, 2), (120, 4, 10), (60, 2, 3)],
)
def test_all_features_no_bootstrap_equals_sklearn(n, p, nodesize):
    X, y = _data(n, p, seed=n + p)
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([0]), mtry=p, nodesize=nodesize)
    ref = DecisionTreeRegressor(
        min_samples_split=nodesize + 1, max_features=None, random_state=0
    ).fit(X, y)
    _assert_same_tree(g, 0, ref.tree_)
    assert g.node_count[0] > 1


def test_fewer_rows_than_a_split_needs_is_one_leaf():
    X, y = _data(4, 3)
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([0]), mtry=3, nodesize=5)
    ref = _sk_tree(X, y, None, nodesize=5, mtry=3, seed=0)
    assert ref.node_count == 1
    _assert_same_tree(g, 0, ref)
    n = g.nodes
    assert n["left_child"][0] == -1 and n["feature"][0] == -2 and n["threshold"][0] == -2.0
    assert g.value[0] == pytest.approx(y.mean(), rel=1e-15)


@pytest.mark.parametrize("level", [1.0, 3.7, -0.1])
def test_constant_y(level):
    """A constant y is a single leaf when its impurity is exactly 0 (1.0); otherwise rounding
    can make scikit-learn split it: the grower takes the same decisions either way."""
    X, _ = _data(150, 3)
    y = np.full(150, level)
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([0]), mtry=3, nodesize=5)
    _assert_same_tree(g, 0, _sk_tree(X, y, None, nodesize=5, mtry=3, seed=0))
    if level == 1.0:
        assert g.node_count[0] == 1
    assert np.all(g.value == level) or np.allclose(g.value, level, rtol=1e-14)


def test_constant_feature_column_is_never_split_on():
    X, y = _data(300, 4)
    X[:, 1] = 2.5
    for mtry in (4, 1):
        g = grow_forest(X, y, boot=None, tree_seeds=np.array([7]), mtry=mtry, nodesize=5)
        _assert_same_tree(g, 0, _sk_tree(X, y, None, nodesize=5, mtry=mtry, seed=7))
        assert not np.any(g.nodes["feature"] == 1)


# -- 2. mtry = p with a bootstrap: scikit-learn on the duplicated rows ----------------------
@pytest.mark.parametrize(("n", "p", "nodesize"), [(400, 3, 5), (538, 7, 5), (250, 2, 1)])
def test_all_features_bootstrap_equals_sklearn_on_duplicated_rows(n, p, nodesize):
    X, y = _data(n, p, seed=1)
    rng = np.random.default_rng(2)
    boot = rng.integers(0, n, size=(4, n))
    seeds = rng.integers(0, np.iinfo(np.int32).max, size=4)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=p, nodesize=nodesize)
    for t in range(4):
        ref = _sk_tree(X, y, boot[t], nodesize=nodesize, mtry=p, seed=int(seeds[t]))
        _assert_same_tree(g, t, ref)
        # nodes of at most nodesize samples (duplicates counted) are leaves
        internal = ref.children_left != -1
        assert np.all(
            g.nodes["n_node_samples"][g.tree_offsets[t] : g.tree_offsets[t + 1]][internal]
            > nodesize
        )


# -- 3. mtry < p: scikit-learn's random stream, same trees as the sklearn trainer ------------
@pytest.mark.parametrize(("n", "p", "mtry"), [(2132, 5, 1), (538, 7, 2)])
def test_subsampled_features_equal_sklearn_tree_by_tree(n, p, mtry):
    X, y = _data(n, p, seed=4)
    rng = np.random.default_rng(5)
    boot = rng.integers(0, n, size=(6, n))
    seeds = rng.integers(0, np.iinfo(np.int32).max, size=6)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=mtry, nodesize=5)
    for t in range(6):
        _assert_same_tree(g, t, _sk_tree(X, y, boot[t], nodesize=5, mtry=mtry, seed=int(seeds[t])))


def test_deterministic_and_seed_dependent():
    X, y = _data(500, 5)
    boot = np.random.default_rng(0).integers(0, 500, size=(10, 500))
    a = grow_forest(X, y, boot=boot, tree_seeds=np.arange(10), mtry=1, nodesize=5)
    b = grow_forest(X, y, boot=boot, tree_seeds=np.arange(10), mtry=1, nodesize=5)
    c = grow_forest(X, y, boot=boot, tree_seeds=np.arange(10) + 100, mtry=1, nodesize=5)
    assert a.nodes.tobytes() == b.nodes.tobytes()
    np.testing.assert_array_equal(a.value, b.value)
    np.testing.assert_array_equal(a.tree_offsets, b.tree_offsets)
    for t in range(10):  # the feature draws differ tree by tree
        assert not np.array_equal(_tree_slice(a, t)["feature"], _tree_slice(c, t)["feature"])


@pytest.mark.parametrize(("n", "p"), [(2132, 5), (538, 7)])
def test_fit_forest_numba_equals_sklearn_trainer(n, p):
    """The paper's shapes, 200 trees: the two trainers grow the same forest, bit for bit (so the
    statistics agree trivially: node counts, depths, held-out predictions)."""
    X, y = _data(n, p, seed=6)
    X_new, _ = _data(1000, p, seed=7)
    cfg = ForestConfig(trees=200)
    seed = np.random.SeedSequence(11)
    a = fit_forest(X, y, forest=cfg, seed=seed, trainer="numba")
    b = fit_forest(X, y, forest=cfg, seed=seed, trainer="sklearn")
    _assert_bit_identical_forests(a, b)
    np.testing.assert_array_equal(a.predict(X_new), b.predict(X_new))
    nodes_a = np.mean([e.tree_.node_count for e in a.estimators_])
    nodes_b = np.mean([e.tree_.node_count for e in b.estimators_])
    assert nodes_a == nodes_b > 100


def test_fit_forest_without_bootstrap_equals_sklearn_trainer():
    X, y = _data(300, 4, seed=17)
    cfg = ForestConfig(trees=8, bootstrap=False, mtry=2)
    seed = np.random.SeedSequence(3)
    a = fit_forest(X, y, forest=cfg, seed=seed)
    b = fit_forest(X, y, forest=cfg, seed=seed, trainer="sklearn")
    _assert_bit_identical_forests(a, b)
    assert all(e.tree_.n_node_samples[0] == 300 for e in a.estimators_)


def test_ties_between_rows_same_trees_in_distribution():
    """With ties between distinct rows, scikit-learn's unstable sort can order tied rows
    differently, so a tree may go apart from its sklearn twin after a split whose criterion
    ties up to rounding; most trees stay the same and the forests agree statistically."""
    X, y = _data(2132, 5, seed=8, decimals=1)
    X_new, _ = _data(1000, 5, seed=9)
    cfg = ForestConfig(trees=200)
    seed = np.random.SeedSequence(12)
    a = fit_forest(X, y, forest=cfg, seed=seed, trainer="numba")
    b = fit_forest(X, y, forest=cfg, seed=seed, trainer="sklearn")
    same = sum(
        ea.tree_.node_count == eb.tree_.node_count
        and np.array_equal(ea.tree_.feature, eb.tree_.feature)
        and np.array_equal(ea.tree_.threshold, eb.tree_.threshold)
        for ea, eb in zip(a.estimators_, b.estimators_, strict=True)
    )
    assert same >= 0.8 * 200
    for stat in (lambda e: e.tree_.node_count, lambda e: e.tree_.max_depth):
        ma = np.mean([stat(e) for e in a.estimators_])
        mb = np.mean([stat(e) for e in b.estimators_])
        assert abs(ma - mb) <= 0.03 * mb
    assert np.corrcoef(a.predict(X_new), b.predict(X_new))[0, 1] > 0.99


def test_threads_give_the_same_forests():
    """nogil: forests grown in threads at once are those grown one after the other."""
    X, y = _data(538, 7, seed=10)
    cfg = ForestConfig(trees=30)
    seeds = [np.random.SeedSequence([1, r]) for r in range(4)]
    serial = [fit_forest(X, y, forest=cfg, seed=s) for s in seeds]
    out = [None] * 4

    def work(i):
        out[i] = fit_forest(X, y, forest=cfg, seed=seeds[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b in zip(serial, out, strict=True):
        _assert_bit_identical_forests(a, b)


# -- 4. the wrapped forest works everywhere ------------------------------------------------
def test_wrapped_forest_predicts_and_explains():
    X, y = _data(538, 7, seed=13)
    X_new, _ = _data(3000, 7, seed=14)
    rf = fit_forest(X, y, forest=ForestConfig(trees=40), seed=np.random.SeedSequence(1))
    pred = rf.predict(X_new)
    np.testing.assert_allclose(
        pred, np.mean([e.predict(X_new) for e in rf.estimators_], axis=0), rtol=1e-12
    )
    imp = rf.feature_importances_
    assert imp.shape == (7,) and np.all(imp >= 0) and imp.sum() == pytest.approx(1.0)
    assert imp[0] == imp.max()  # y is driven by predictor 0
    est = rf.estimators_[0]
    leaves = est.apply(X_new[:50])
    assert np.all(est.tree_.children_left[leaves] == -1)
    path = est.decision_path(X_new[:50])
    assert path.shape == (50, est.tree_.node_count)
    assert est.get_depth() == est.tree_.max_depth and est.get_n_leaves() > 1
    arrays = forest_arrays([rf])
    assert arrays.n_trees == 40 and arrays.n_nodes == sum(
        e.tree_.node_count for e in rf.estimators_
    )
    numba_pred = NumbaEngine().compile([rf]).predict(X_new)[0]
    np.testing.assert_array_equal(numba_pred, pred)


def test_to_sklearn_trees_fitted_attributes():
    X, y = _data(300, 3, seed=15)
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([3, 4]), mtry=1, nodesize=5)
    params = sklearn_tree_params(ForestConfig(), n_features=3)
    trees = to_sklearn_trees(g, params=params, tree_seeds=np.array([3, 4]))
    assert len(trees) == 2
    for t, est in enumerate(trees):
        assert est.n_features_in_ == 3 and est.n_outputs_ == 1 and est.max_features_ == 1
        assert est.random_state == [3, 4][t]
        assert est.min_samples_split == 6
        assert est.tree_.__getstate__()["nodes"].dtype == node_dtype()
        ref = DecisionTreeRegressor(min_samples_split=6, max_features=1, random_state=[3, 4][t])
        ref.fit(X, y)
        np.testing.assert_array_equal(est.tree_.threshold, ref.tree_.threshold)
        np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_node_buffer_grows_and_chunks_change_nothing():
    """nodesize 1 without a bootstrap: trees of 2n - 1 nodes overflow the first node buffer."""
    X, y = _data(150, 3, seed=16)
    seeds = np.arange(6)
    g = grow_forest(X, y, boot=None, tree_seeds=seeds, mtry=1, nodesize=1)
    assert np.all(g.node_count == 2 * 150 - 1)
    for t in range(6):
        _assert_same_tree(g, t, _sk_tree(X, y, None, nodesize=1, mtry=1, seed=t))
    params = sklearn_tree_params(ForestConfig(nodesize=1), n_features=3)
    boot = np.random.default_rng(0).integers(0, 150, size=(6, 150))
    one = fit_trees(X, y, boot=boot, tree_seeds=seeds, mtry=1, nodesize=1, params=params)
    few = fit_trees(X, y, boot=boot, tree_seeds=seeds, mtry=1, nodesize=1, params=params, chunk=4)
    for a, b in zip(one, few, strict=True):
        assert (
            a.tree_.__getstate__()["nodes"].tobytes() == b.tree_.__getstate__()["nodes"].tobytes()
        )


# -- 5. edge cases -------------------------------------------------------------------------
def test_one_row():
    X = np.array([[1.5, -2.0]], dtype=np.float32)
    y = np.array([4.25])
    g = grow_forest(
        X, y, boot=np.zeros((3, 1), dtype=np.int64), tree_seeds=np.arange(3), mtry=1, nodesize=5
    )
    assert list(g.node_count) == [1, 1, 1]
    np.testing.assert_array_equal(g.value, 4.25)
    np.testing.assert_array_equal(g.nodes["impurity"], 0.0)
    rf = fit_forest(X, y, forest=ForestConfig(trees=3), seed=np.random.SeedSequence(0))
    np.testing.assert_array_equal(rf.predict(X), [4.25])


def test_identical_rows_are_one_leaf():
    X = np.tile(np.array([[0.5, 1.0, -3.0]], dtype=np.float32), (50, 1))
    y = np.full(50, 12.0)
    y[::2] = 14.0  # same predictors, different responses: nothing to split on
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([0]), mtry=2, nodesize=5)
    ref = _sk_tree(X, y, None, nodesize=5, mtry=2, seed=0)
    _assert_same_tree(g, 0, ref)
    assert g.node_count[0] == 1 and g.value[0] == 13.0


def test_nodesize_larger_than_n():
    X, y = _data(30, 3)
    rf = fit_forest(X, y, forest=ForestConfig(trees=5, nodesize=40), seed=np.random.SeedSequence(0))
    assert all(e.tree_.node_count == 1 for e in rf.estimators_)


def test_argument_checks():
    X, y = _data(20, 2)
    with pytest.raises(ValueError, match="mtry"):
        grow_forest(X, y, boot=None, tree_seeds=np.array([0]), mtry=3, nodesize=5)
    with pytest.raises(ValueError, match="boot"):
        grow_forest(X, y, boot=np.full((1, 20), 20), tree_seeds=np.array([0]), mtry=1, nodesize=5)
    with pytest.raises(ValueError, match="y must"):
        grow_forest(X, y[:-1], boot=None, tree_seeds=np.array([0]), mtry=1, nodesize=5)
    with pytest.raises(ConfigError, match="trainer"):
        fit_forest(X, y, forest=ForestConfig(trees=2), seed=np.random.SeedSequence(0), trainer="r")
