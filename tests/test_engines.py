"""Inference engines: the numba kernel must equal scikit-learn's ``predict`` bit for bit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from srgpu.errors import BackendError, ConfigError, InputError
from srgpu.forest import numba_engine, row_plans
from srgpu.forest.arrays import float32_floor, forest_arrays
from srgpu.forest.engines import get_engine
from srgpu.forest.numba_engine import (
    MIN_TILE,
    ORDER_MIN_TREES,
    TILE,
    NumbaEngine,
    tile_rows,
)
from srgpu.forest.protocol import CompiledForests, InferenceEngine
from srgpu.forest.row_plans import row_order
from srgpu.forest.sklearn_engine import SklearnEngine
from tests import requires_nvforest


def _fit(seed, *, n=300, p=5, trees=20, max_depth=None, mss=6, grid=False, const=False, nan=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    if grid:  # few distinct values: many ties, thresholds at exact midpoints
        X = np.round(X * 2) / 2
    y = np.zeros(n) if const else X[:, 0] + np.sin(2 * X[:, -1]) + rng.normal(scale=0.3, size=n)
    if nan:
        X[rng.random(X.shape) < 0.1] = np.nan
    rf = RandomForestRegressor(
        n_estimators=trees,
        max_features=max(p // 3, 1),
        min_samples_split=mss,
        max_depth=max_depth,
        random_state=seed,
    ).fit(X, y)
    return rf, X


def _reference(forests, X):
    return np.stack([f.predict(X) for f in forests])


def _query(X_train, seed, n=517):
    """Fresh rows, training rows, thresholds and float32 neighbours of training values."""
    rng = np.random.default_rng(seed + 1000)
    p = X_train.shape[1]
    fresh = rng.normal(size=(n, p))
    train = X_train[rng.integers(0, len(X_train), n)]
    x32 = np.nan_to_num(train.astype(np.float32))
    up = np.nextafter(x32, np.float32(np.inf))
    down = np.nextafter(x32, np.float32(-np.inf))
    return np.concatenate([fresh, train, up, down, -0.0 * np.ones((3, p))])


def _at_thresholds(forests, p, seed):
    """Rows whose values are exactly the trees' thresholds (as float32 and float64)."""
    thr = np.concatenate([e.tree_.threshold[e.tree_.feature >= 0] for f in forests for e in f])
    thr = np.concatenate([thr, [0.0]])  # single-node trees have none
    rng = np.random.default_rng(seed)
    rows = rng.choice(thr, size=(400, p))
    return np.concatenate([rows, float32_floor(rows).astype(np.float64)])


CASES = [
    dict(seed=0),
    dict(seed=1, max_depth=3),
    dict(seed=2, mss=2, trees=7),
    dict(seed=3, grid=True),
    dict(seed=4, p=1),
    dict(seed=5, p=7, n=1000, trees=31),
    dict(seed=6, const=True),
    dict(seed=7, n=6, trees=5),
]


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_numba_equals_sklearn_bit_for_bit(case):
    rf, X = _fit(**case)
    c = NumbaEngine().compile([rf])
    for Q in (_query(X, case["seed"]), _at_thresholds([rf], X.shape[1], case["seed"])):
        got = c.predict(Q)
        assert got.shape == (1, len(Q))
        assert got.dtype == np.float64
        assert np.array_equal(got, _reference([rf], Q))


def test_single_node_trees():
    rf, X = _fit(6, const=True, trees=3)
    assert all(e.tree_.node_count == 1 for e in rf.estimators_)
    got = NumbaEngine().compile([rf]).predict(X)
    assert np.array_equal(got, _reference([rf], X))
    assert np.all(got == 0.0)


def test_nan_follows_sklearn_missing_go_to_left():
    rf, X = _fit(11, trees=15)
    Q = _query(X, 11)
    rng = np.random.default_rng(0)
    Q[rng.random(Q.shape) < 0.2] = np.nan
    Q[:5] = np.nan  # all-NaN rows
    got = NumbaEngine().compile([rf]).predict(Q)
    assert np.array_equal(got, _reference([rf], Q))
    # the rule is exercised: some split sends NaN right, some left
    mgl = np.concatenate([e.tree_.missing_go_to_left[e.tree_.feature >= 0] for e in rf])
    assert mgl.any() and not mgl.all()


def test_forest_fitted_with_nan():
    rf, X = _fit(12, nan=True, trees=10)
    Q = np.concatenate([X, _query(np.nan_to_num(X), 12)])
    assert np.array_equal(NumbaEngine().compile([rf]).predict(Q), _reference([rf], Q))


@pytest.mark.parametrize(
    "n_rows", [0, 1, 2, 15, MIN_TILE + 1, TILE - 1, TILE + 3, 2 * TILE + 16, 8 * TILE + 5]
)
def test_row_counts(n_rows):
    forests = [_fit(s, trees=4 + s)[0] for s in range(3)]
    Q = np.random.default_rng(n_rows).normal(size=(n_rows, 5))
    got = NumbaEngine().compile(forests).predict(Q)
    assert got.shape == (3, n_rows)
    assert np.array_equal(got, SklearnEngine().compile(forests).predict(Q))


def test_tile_rows():
    assert tile_rows(95_000, 2) == TILE  # the benchmark's 5 %: 24 tiles of 4096
    assert tile_rows(19_000, 2) == 2048  # 1 %: 10 tiles of 2048, not 5 of 4096 on 2 threads
    assert tile_rows(19_000, 1) == TILE
    assert tile_rows(500, 2) == MIN_TILE == tile_rows(0, 1)
    assert tile_rows(10**7, 64) == TILE
    for n, th in [(1, 1), (5000, 2), (40_000, 3), (10**6, 16)]:
        t = tile_rows(n, th)
        assert MIN_TILE <= t <= TILE and t & (t - 1) == 0
        assert t == MIN_TILE or n >= 4 * th * t


@pytest.mark.parametrize("tile", [MIN_TILE, 2048, TILE])
def test_tile_size_does_not_change_result(monkeypatch, tile):
    """Every tile size gives scikit-learn's bits (ordered walk, NaN, repeats, ragged last tile)."""
    monkeypatch.setattr(numba_engine, "tile_rows", lambda n, threads: tile)
    forests = [_fit(60, trees=ORDER_MIN_TREES)[0], _fit(61, trees=9)[0]]
    rng = np.random.default_rng(9)
    Q = rng.normal(size=(3 * TILE + 77, 5))
    Q[rng.random(Q.shape) < 0.01] = np.nan
    Q[-200:] = Q[:200]
    assert np.array_equal(NumbaEngine().compile(forests).predict(Q), _reference(forests, Q))


def test_packed_replicates_with_different_tree_counts():
    forests = [_fit(s, trees=t, p=3)[0] for s, t in [(20, 1), (21, 9), (22, 40), (23, 2)]]
    arrays = forest_arrays(forests)
    assert list(arrays.trees_per_forest) == [1, 9, 40, 2]
    assert arrays.n_trees == 52 and arrays.n_forests == 4 and arrays.n_features == 3
    Q = np.random.default_rng(3).normal(size=(999, 3)).astype(np.float32)
    got = NumbaEngine().compile(forests).predict(Q)
    assert np.array_equal(got, _reference(forests, Q))
    # a second call with other forests, other feature count
    forests2 = [_fit(s, p=2, trees=5)[0] for s in (30, 31)]
    Q2 = Q[:, :2]
    assert np.array_equal(NumbaEngine().compile(forests2).predict(Q2), _reference(forests2, Q2))


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_result(threads):
    forests = [_fit(s, trees=6)[0] for s in (40, 41)]
    Q = np.random.default_rng(1).normal(size=(3 * TILE + 5, 5))
    a = NumbaEngine(threads=1).compile(forests).predict(Q)
    b = NumbaEngine().compile(forests).predict(Q, threads=min(threads, _max_threads()))
    assert np.array_equal(a, b)
    assert np.array_equal(a, _reference(forests, Q))


def test_ordered_walk_equals_sklearn(monkeypatch):
    """Calls with many trees and rows walk the rows in Morton order: results stay bit-identical
    and land on their own rows (NaN rows, duplicates, ties at thresholds, shuffled input)."""
    forests = [_fit(50, trees=ORDER_MIN_TREES - 40)[0], _fit(51, trees=40)[0]]
    rng = np.random.default_rng(2)
    Q = np.concatenate(
        [
            rng.normal(size=(2 * TILE, 5)),
            _at_thresholds(forests, 5, 3),
            np.repeat(rng.normal(size=(7, 5)), 30, axis=0),
        ]
    )
    Q[rng.random(Q.shape) < 0.01] = np.nan
    Q = Q[rng.permutation(len(Q))]
    calls = []
    keys = row_plans.morton_keys
    monkeypatch.setattr(row_plans, "morton_keys", lambda X: calls.append(len(X)) or keys(X))
    got = NumbaEngine().compile(forests).predict(Q)
    assert calls == [len(Q)]  # the ordered path ran
    assert np.array_equal(got, _reference(forests, Q))
    few = NumbaEngine().compile(forests[1:]).predict(Q)  # 40 trees: given order
    assert calls == [len(Q)]
    assert np.array_equal(few, _reference(forests[1:], Q))


@pytest.mark.parametrize("trees", [12, ORDER_MIN_TREES])
def test_rows_straddling_thresholds(trees):
    """Rows on a threshold and one float32 step either side of it each take their own side,
    predicted all together (given order with 12 trees, Morton order with 128) and group by group:
    then a tile's bounding box sits exactly on the split (all rows on it: every row goes left; all
    one step above: every row goes right), the case where a wrong skip would show."""
    forests = [_fit(53, trees=trees)[0]]
    base = _at_thresholds(forests, 5, 5).astype(np.float32)[:300]
    rng = np.random.default_rng(6)
    groups = []
    for row in base:
        g = np.repeat(row[None, :], 16, axis=0)
        f = rng.integers(0, 5)
        g[::3, f] = np.nextafter(g[::3, f], np.float32(np.inf))
        g[1::3, f] = np.nextafter(g[1::3, f], np.float32(-np.inf))
        up = np.repeat(row[None, :], 4, axis=0)
        up[:, f] = np.nextafter(up[:, f], np.float32(np.inf))
        groups += [g, np.repeat(row[None, :], 4, axis=0), up]
    Q = np.concatenate(groups)
    compiled = NumbaEngine().compile(forests)
    ref = _reference(forests, Q)
    assert np.array_equal(compiled.predict(Q), ref)
    alone = np.concatenate([compiled.predict(g) for g in groups[:150]], axis=1)
    assert np.array_equal(alone, ref[:, : alone.shape[1]])


def test_nan_in_one_feature_of_a_narrow_tile():
    """A tile whose rows are close together (their box decides the upper levels) with NaN in one
    feature only: nodes on the other features may be skipped, nodes on the NaN feature not; NaN
    goes where ``missing_go_to_left`` sends it, both ways."""
    rf, X = _fit(14, nan=True, trees=ORDER_MIN_TREES)
    forests = [rf]
    rng = np.random.default_rng(8)
    centre = np.nanmedian(X, axis=0)
    Q = centre + rng.normal(scale=0.05, size=(3000, X.shape[1]))
    Q[rng.random(len(Q)) < 0.3, 2] = np.nan
    Q[:50, 2] = np.nan
    assert np.array_equal(NumbaEngine().compile(forests).predict(Q), _reference(forests, Q))
    mgl = np.concatenate([e.tree_.missing_go_to_left[e.tree_.feature == 2] for e in rf])
    assert mgl.any() and not mgl.all()


def test_repeated_rows_are_walked_once(monkeypatch):
    """Rows repeated over 31 years (a static field tiled over a yearly grid): each distinct row
    is walked once, every copy gets the same bits as scikit-learn's own prediction of it."""
    forests = [_fit(52, trees=ORDER_MIN_TREES)[0]]
    rng = np.random.default_rng(4)
    cells = rng.normal(size=(300, 5))
    cells[:3, 1] = np.nan  # rows with a NaN repeat too
    Q = np.tile(cells, (31, 1))
    Q[-1, 0] = -0.0 if Q[-1, 0] == 0 else Q[-1, 0] + 1  # one row differs from its copies
    walked = []
    monkeypatch.setattr(row_plans, "row_order", lambda X: walked.append(len(X)) or row_order(X))
    got = NumbaEngine().compile(forests).predict(Q)
    assert walked == [301]
    assert np.array_equal(got, _reference(forests, Q))
    U, inverse = row_plans.distinct_rows(Q.astype(np.float32))
    assert len(U) == 301 and np.array_equal(U[inverse], Q.astype(np.float32), equal_nan=True)
    few = rng.normal(size=(2000, 5)).astype(np.float32)
    few[:50] = few[50:100]  # 2.5 % repeats: not worth a copy
    same, none = row_plans.distinct_rows(few)
    assert none is None and same is few


@pytest.mark.parametrize(("p", "closer"), [(1, 0.01), (3, 0.2), (7, 0.5), (70, 0.65)])
def test_row_order_is_a_local_permutation(p, closer):
    rng = np.random.default_rng(p)
    X = rng.lognormal(size=(5000, p)).astype(np.float32)  # skewed, like precipitation
    X[rng.random(X.shape) < 0.002] = np.nan
    order = row_order(X)
    assert order.dtype == np.int64
    assert np.array_equal(np.sort(order), np.arange(len(X)))
    assert np.array_equal(order, row_order(X.copy()))  # deterministic
    # neighbours in the order are neighbours in (rank) space: much closer than in input order
    ranks = np.argsort(np.argsort(np.nan_to_num(X, nan=np.inf), axis=0), axis=0)[:, :10]
    step = lambda r: np.abs(np.diff(r, axis=0)).sum(axis=1).mean()  # noqa: E731
    assert step(ranks[order]) < closer * step(ranks)  # 5000 rows: 0.004, 0.12, 0.41, 0.54
    if p == 1:  # one feature: sorted up to the width of a quantile bin (256 bins); NaN in the last
        assert np.all(np.diff(ranks[order, 0]) >= -2 * len(X) / 256)
        assert np.nonzero(np.isnan(X[order, 0]))[0].min() >= len(X) * (1 - 2 / 256)


def _max_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_float32_floor_is_exact():
    rng = np.random.default_rng(0)
    t64 = np.concatenate([rng.normal(size=10_000), [1e39, -1e39, np.inf, -np.inf, 0.0, -0.0]])
    t32 = float32_floor(t64)
    assert t32.dtype == np.float32
    assert np.all(t32.astype(np.float64) <= t64)
    finite = np.isfinite(t64)
    nxt = np.nextafter(t32[finite], np.float32(np.inf)).astype(np.float64)
    assert np.all(nxt > t64[finite])  # the largest such float32
    # comparisons agree for float32 neighbours of each threshold
    for x in (t32, np.nextafter(t32, np.float32(np.inf)), np.nextafter(t32, np.float32(-np.inf))):
        assert np.array_equal(x.astype(np.float64) <= t64, x <= t32)


def test_forest_arrays_layout_and_pickle():
    rf, _ = _fit(50, trees=3)
    a = forest_arrays([rf])
    assert a.feature.dtype == np.int32 and a.threshold.dtype == np.float32
    assert a.children.dtype == np.int32 and a.value.dtype == np.float64
    assert a.n_nodes == sum(e.tree_.node_count for e in rf.estimators_)
    leaves = a.children[0::2] == np.arange(a.n_nodes)
    assert np.array_equal(leaves, a.children[1::2] == np.arange(a.n_nodes))
    assert leaves.sum() == sum(e.tree_.n_leaves for e in rf.estimators_)
    assert list(a.tree_depth) == [e.tree_.max_depth for e in rf.estimators_]
    b = pickle.loads(pickle.dumps(a))
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("children", "value"))
    assert a.nbytes > 0


def test_errors():
    rf, _ = _fit(60, trees=2, p=3)
    rf4, _ = _fit(61, trees=2, p=4)
    with pytest.raises(InputError, match="share their predictors"):
        forest_arrays([rf, rf4])
    with pytest.raises(InputError, match="not fitted"):
        forest_arrays([RandomForestRegressor()])
    with pytest.raises(InputError, match="no forests"):
        forest_arrays([])
    c = NumbaEngine().compile([rf])
    with pytest.raises(InputError, match="wrong shape"):
        c.predict(np.zeros((4, 5)))
    with pytest.raises(ConfigError):
        NumbaEngine(threads=0)


def test_sklearn_engine_is_serial_reference():
    rf, X = _fit(70, trees=8)
    rf.set_params(n_jobs=2)
    c = SklearnEngine().compile([rf, rf])
    assert rf.n_jobs == 2  # the user's object is untouched
    Q = _query(X, 70)
    rf1 = pickle.loads(pickle.dumps(rf)).set_params(n_jobs=1)
    assert np.array_equal(c.predict(Q), np.stack([rf1.predict(Q)] * 2))
    assert c.predict(Q[:0]).shape == (2, 0)


def test_protocol_and_registry():
    for name in ("numba", "sklearn", "auto"):
        eng = get_engine(name)
        assert isinstance(eng, InferenceEngine)
    assert get_engine("auto").name == "numba"
    rf, _ = _fit(80, trees=2)
    assert isinstance(get_engine("numba").compile([rf]), CompiledForests)
    assert isinstance(get_engine("sklearn").compile([rf]), CompiledForests)
    with pytest.raises(ConfigError):
        get_engine("xgboost")
    with pytest.raises(ConfigError):
        get_engine("numba", device="tpu")
    with pytest.raises(BackendError):
        get_engine("sklearn", device="gpu")


@requires_nvforest
def test_nvforest_engine_cpu_close_to_sklearn():
    rf, X = _fit(90, trees=10)
    # nvforest is installed (requires_nvforest): a BackendError here is a failure, not a skip
    eng = get_engine("nvforest", device="cpu")
    got = np.asarray(eng.compile([rf]).predict(X.astype(np.float32)))
    # nvForest (single precision, its own summation order) is close, not bit for bit:
    # observed max abs difference 3e-7, max rel 1.8e-6 on this case
    np.testing.assert_allclose(got, _reference([rf], X), rtol=1e-5, atol=1e-6)
