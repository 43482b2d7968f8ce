"""The growers for tied predictors (srgpu.forest.numba_tied) against scikit-learn.

SRDB-like data: records in one 0.5 deg cell share every predictor value, so whole rows repeat
with different responses. ``exact=True`` replays scikit-learn's sort and grows its trees bit
for bit; the default unit grower runs the same algorithm on distinct rows, so its trees are
scikit-learn's bit for bit whenever every sum is exact in any order (integer responses) and
the same up to rounding otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from srgpu.config import ForestConfig
from srgpu.forest.numba_train import grow_forest, tie_kind
from srgpu.forest.train import fit_forest

REAL_SET = ("MAT", "Prec", "Prec_GS", "PAR", "PAR_GS", "LAI_GS")


def _cells(n_cells, p, seed, *, max_records=7, integer_y=False):
    """``n_cells`` distinct predictor rows, each repeated 1..max_records times (one row per
    record, shuffled), with responses that differ between the records of a cell."""
    rng = np.random.default_rng(seed)
    Xc = rng.normal(size=(n_cells, p)).astype(np.float32)
    reps = rng.integers(1, max_records + 1, size=n_cells)
    cell = np.repeat(np.arange(n_cells), reps)
    rng.shuffle(cell)
    X = Xc[cell]
    y = 700 + 180 * X[:, 0] + 120 * np.sin(2 * X[:, -1]) + rng.normal(scale=150, size=len(cell))
    y = np.round(y) if integer_y else np.round(y, 2)  # SRDB: mostly integers, some decimals
    return X, y


def _boot_seeds(n, trees, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(trees, n)), rng.integers(0, 2**31 - 1, size=trees)


def _identical(g, X, y, boot, seeds, *, mtry, nodesize):
    """How many of the grown trees are scikit-learn's bit for bit (every node field, every
    value, the depth), and the same trees as fitted by scikit-learn."""
    same = 0
    ref = []
    for t in range(len(seeds)):
        est = DecisionTreeRegressor(
            min_samples_split=nodesize + 1, max_features=mtry, random_state=int(seeds[t])
        ).fit(X[boot[t]], y[boot[t]])
        state = est.tree_.__getstate__()
        lo, hi = int(g.tree_offsets[t]), int(g.tree_offsets[t + 1])
        same += (
            hi - lo == state["node_count"]
            and int(g.max_depth[t]) == state["max_depth"]
            and g.nodes[lo:hi].tobytes() == state["nodes"].tobytes()
            and g.value[lo:hi].tobytes() == state["values"].reshape(-1).tobytes()
        )
        ref.append(est)
    return same, ref


def test_tie_kind():
    X, _ = _cells(50, 3, 0)
    kind, units, unit = tie_kind(X)
    assert kind == "rows" and units.shape == (50, 3)
    np.testing.assert_array_equal(units[unit], X)
    rng = np.random.default_rng(1)
    assert tie_kind(rng.normal(size=(40, 3)))[0] == "none"
    Xv = np.unique(np.round(rng.normal(size=(400, 3)), 1), axis=0)  # columns tie, rows do not
    assert Xv.shape[0] > 300
    assert tie_kind(Xv)[0] == "values"


@pytest.mark.parametrize(("mtry", "nodesize", "max_records"), [(2, 5, 7), (1, 5, 3), (3, 1, 5)])
def test_exact_grows_sklearn_trees_on_repeated_rows(mtry, nodesize, max_records):
    """scikit-learn's introsort, replayed: every tree identical, non-integer responses."""
    X, y = _cells(300, 5, seed=mtry + nodesize, max_records=max_records)
    assert tie_kind(X)[0] == "rows"
    boot, seeds = _boot_seeds(len(y), 25, seed=3)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=mtry, nodesize=nodesize, exact=True)
    same, _ = _identical(g, X, y, boot, seeds, mtry=mtry, nodesize=nodesize)
    assert same == 25


def test_exact_grows_sklearn_trees_on_tied_columns():
    """Ties in single columns only (rounded predictors, constant columns in nodes)."""
    rng = np.random.default_rng(5)
    X = np.round(rng.normal(size=(600, 4)), 1).astype(np.float32)
    X[:, 3] = np.round(X[:, 3])  # few distinct values: constant in many nodes
    y = np.round(500 + 100 * X[:, 0] + rng.normal(scale=80, size=600), 1)
    boot, seeds = _boot_seeds(600, 20, seed=6)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=1, nodesize=5, exact=True)
    assert _identical(g, X, y, boot, seeds, mtry=1, nodesize=5)[0] == 20


def test_exact_without_bootstrap_and_with_float32_near_ties():
    """All rows once (``boot=None``), values 1 float32 ulp apart (FEATURE_THRESHOLD)."""
    X, y = _cells(200, 3, seed=9)
    X[::7, 1] = np.nextafter(X[::7, 1], np.float32(np.inf))  # breaks some rows' ties by 1 ulp
    g = grow_forest(X, y, boot=None, tree_seeds=np.array([4]), mtry=3, nodesize=2, exact=True)
    boot = np.arange(len(y))[None, :]
    assert _identical(g, X, y, boot, np.array([4]), mtry=3, nodesize=2)[0] == 1


def test_unit_grower_is_sklearn_when_sums_are_exact():
    """With integer responses every sum is exact in any order, so the unit grower (default on
    repeated rows) must grow scikit-learn's trees bit for bit: it runs the same algorithm."""
    X, y = _cells(400, 5, seed=11, integer_y=True)
    boot, seeds = _boot_seeds(len(y), 30, seed=12)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=2, nodesize=5)
    assert _identical(g, X, y, boot, seeds, mtry=2, nodesize=5)[0] == 30


def test_unit_grower_same_trees_up_to_rounding():
    """Non-integer responses: sums in another order, so near-equal splits may flip; the
    forests agree statistically (node counts, depths, predictions)."""
    X, y = _cells(500, 5, seed=13)
    X_new = np.random.default_rng(14).normal(size=(2000, 5)).astype(np.float32)
    cfg = ForestConfig(trees=100, mtry=2)
    seed = np.random.SeedSequence(15)
    a = fit_forest(X, y, forest=cfg, seed=seed, trainer="numba")
    b = fit_forest(X, y, forest=cfg, seed=seed, trainer="sklearn")
    exact = fit_forest(X, y, forest=cfg, seed=seed, trainer="numba-exact")
    for ea, eb in zip(exact.estimators_, b.estimators_, strict=True):
        assert ea.tree_.__getstate__()["nodes"].tobytes() == (
            eb.tree_.__getstate__()["nodes"].tobytes()
        )
    for stat in (lambda e: e.tree_.node_count, lambda e: e.tree_.max_depth):
        ma = np.mean([stat(e) for e in a.estimators_])
        mb = np.mean([stat(e) for e in b.estimators_])
        assert abs(ma - mb) <= 0.03 * mb
    # the differences stay below those between two scikit-learn forests of different seeds
    c = fit_forest(X, y, forest=cfg, seed=np.random.SeedSequence(16), trainer="sklearn")

    def rmsd(u, v):
        return float(np.sqrt(np.mean((u - v) ** 2)))

    for rows, factor in ((X_new, 1.0), (X, 0.5)):
        pa, pb, pc = a.predict(rows), b.predict(rows), c.predict(rows)
        assert np.corrcoef(pa, pb)[0, 1] > 0.99
        assert 0 < rmsd(pa, pb) < factor * rmsd(pb, pc)


def test_repeated_rows_in_every_leaf_stay_together():
    """Rows with the same predictors are never separated: every leaf of the unit grower holds
    whole cells, and its sample counts add up to the bootstrap size."""
    X, y = _cells(120, 4, seed=16)
    boot, seeds = _boot_seeds(len(y), 10, seed=17)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=2, nodesize=5)
    params = {"min_samples_split": 6, "max_features": 2}
    from srgpu.forest.numba_train import to_sklearn_trees

    for est in to_sklearn_trees(g, params=params, tree_seeds=seeds):
        leaves = est.apply(X)
        _, unit = np.unique(X, axis=0, return_inverse=True)
        for u in np.unique(unit):
            assert np.unique(leaves[unit.reshape(-1) == u]).size == 1
        leaf = est.tree_.children_left == -1
        assert est.tree_.n_node_samples[leaf].sum() == boot.shape[1]


# -- the real SRDB draw (skipped without ../shared/data) ----------------------------------
@pytest.fixture(scope="module")
def real_tables(srdb_v5_path, grids_dir):
    from srgpu.config import EnsembleConfig
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.sampling import bin_weights, replicate_split

    files = (
        "era5_monthly_climatology_0p5.nc",
        "merra2_rsds_monthly_climatology_0p5.nc",
        "lai_proxy_fapar_0p5.nc",
    )
    cfg = EnsembleConfig(
        srdb=str(srdb_v5_path),
        drivers=tuple(str(grids_dir / f) for f in files),
        vegetation=str(grids_dir / "modis_igbp_2019_0p5.nc"),
        predictors=(("SR", REAL_SET), ("HR", REAL_SET)),
    )
    inputs = prepare_inputs(cfg)
    out = {}
    for flux in ("SR", "HR"):
        data = inputs.fluxes[flux]
        split = replicate_split(
            bins=data.bins,
            weights=bin_weights(scheme=cfg.sampling, area_shares=inputs.area_shares),
            train_fraction=cfg.train_fraction,
            seed=cfg.seed,
            replicate=0,
            flux=flux,
        )
        out[flux] = (data.X[split.train].astype(np.float32), data.y[split.train])
    return out


@pytest.mark.parametrize("flux", ["SR", "HR"])
def test_real_srdb_exact_trees(real_tables, flux):
    """An 80 % SRDB draw (SR: 2945 records, 732 distinct rows): 20 of 20 trees identical."""
    X, y = real_tables[flux]
    assert tie_kind(X)[0] == "rows"
    boot, seeds = _boot_seeds(len(y), 20, seed=21)
    g = grow_forest(X, y, boot=boot, tree_seeds=seeds, mtry=2, nodesize=5, exact=True)
    assert _identical(g, X, y, boot, seeds, mtry=2, nodesize=5)[0] == 20
    # the unit grower: identical as soon as the sums are exact (responses rounded to integers)
    yi = np.round(y)
    g = grow_forest(X, yi, boot=boot, tree_seeds=seeds, mtry=2, nodesize=5)
    assert _identical(g, X, yi, boot, seeds, mtry=2, nodesize=5)[0] == 20


# -- the sort itself against scikit-learn's ------------------------------------------------
def _sk_sort(values):
    """scikit-learn's ``simultaneous_sort(use_three_way_partition=True)``: the permutation."""
    from sklearn.utils._sorting import _py_simultaneous_sort

    v = np.ascontiguousarray(values, dtype=np.float32).copy()
    idx = np.arange(v.size, dtype=np.intp)
    _py_simultaneous_sort(v, idx, v.size, use_three_way_partition=True)
    return idx


def _my_sort(values):
    from srgpu.forest.numba_tied import _introsort3

    v = np.ascontiguousarray(values, dtype=np.float32).copy()
    idx = np.arange(v.size, dtype=np.int64)
    stk = [np.empty(v.size + 64, dtype=np.int64) for _ in range(3)]
    _introsort3(v, idx, 0, v.size, *stk)
    assert np.all(np.diff(v) >= 0)
    return idx


def _adversary(n):
    """McIlroy's adversary against scikit-learn's 3-way introsort (replayed in Python): keys
    that make its quicksort part degenerate until the depth limit hands segments to heapsort.
    Returns the keys and how many elements went to heapsort."""
    gas = n
    val = [gas] * n
    state = {"solid": 0, "candidate": -1}

    def freeze(x):
        val[x] = state["solid"]
        state["solid"] += 1

    def cmp(x, y):  # compares items x and y, committing gas items as late as possible
        if val[x] == gas and val[y] == gas:
            freeze(x if x == state["candidate"] else y)
        if val[x] == gas:
            state["candidate"] = x
        elif val[y] == gas:
            state["candidate"] = y
        return (val[x] > val[y]) - (val[x] < val[y])

    items = list(range(n))
    heaped = 0

    def heap(o, m):  # order of the items in heapsort does not matter for the keys
        nonlocal heaped
        heaped += m
        for x in items[o : o + m]:
            if val[x] == gas:
                freeze(x)

    def sort(o, m, maxd):
        while m > 15:
            if maxd <= 0:
                heap(o, m)
                return
            maxd -= 1
            a, b, c = items[o], items[o + m // 2], items[o + m - 1]
            if cmp(a, b) < 0:
                piv = b if cmp(b, c) < 0 else (c if cmp(a, c) < 0 else a)
            elif cmp(b, c) < 0:
                piv = a if cmp(a, c) < 0 else c
            else:
                piv = b
            i = lo = o
            r = o + m
            while i < r:
                s = cmp(items[i], piv)
                if s < 0:
                    items[i], items[lo] = items[lo], items[i]
                    i += 1
                    lo += 1
                elif s > 0:
                    r -= 1
                    items[i], items[r] = items[r], items[i]
                else:
                    i += 1
            sort(o, lo - o, maxd)
            m = o + m - r
            o = r
        for k in range(o, o + m):
            if val[items[k]] == gas:
                freeze(items[k])

    sort(0, n, 2 * (n.bit_length() - 1))
    return np.array(val, dtype=np.float32), heaped


@pytest.mark.parametrize("case", ["random_ties", "few_values", "sorted", "reversed", "equal"])
def test_introsort_permutation_is_sklearns(case):
    rng = np.random.default_rng(7)
    for n in (1, 2, 15, 16, 17, 40, 257, 3000):
        values = {
            "random_ties": rng.integers(0, max(n // 4, 1), size=n),
            "few_values": rng.integers(0, 3, size=n),
            "sorted": np.sort(rng.integers(0, n, size=n)),
            "reversed": np.sort(rng.integers(0, n, size=n))[::-1],
            "equal": np.zeros(n),
        }[case].astype(np.float32)
        np.testing.assert_array_equal(_my_sort(values), _sk_sort(values), err_msg=f"n={n}")


def test_introsort_heapsort_fallback_is_sklearns():
    """Keys built against the quicksort reach the depth limit: the heapsort part too."""
    for n in (64, 200, 1000):
        keys, heaped = _adversary(n)
        assert heaped > 0
        np.testing.assert_array_equal(_my_sort(keys), _sk_sort(keys))
