"""Predictive distributions of the replicate forests: quantile regression forests.

The paper fitted quantregForest, whose output is a conditional *distribution* of an observation
given its predictors (Meinshausen 2006), not only the forest mean. This module computes it for
srgpu's forests, per prediction row, from each forest's own training records.

Weights (Meinshausen 2006). Tree ``t`` of a forest of ``T`` trees sends a row ``x`` to a leaf;
every training record ``i`` that is a *member* of that leaf gets the weight
``c_i / n_leaf / T``, where ``c_i`` is its multiplicity and ``n_leaf = sum c_i``. Summed over
the trees, the weights of a row add up to 1 and define a discrete distribution over the training
values of y: the predictive distribution of the forest at ``x``.

Leaf membership (``membership``):

* ``"all"`` (default): every training record of the forest, dropped down the grown tree, is a
  member of the leaf it reaches, with ``c_i = 1``. This is Meinshausen's definition and
  quantregForest's (1.3-7 drops the whole training table down the trees with
  ``predict(..., nodes=TRUE)``): the paper's numbers come from it.
* ``"inbag"``: only the rows of the tree's bootstrap sample, with ``c_i`` their bootstrap count
  (quantile-forest's rule). Its conditional mean equals the forest mean exactly (a leaf's mean
  of in-bag y *is* the tree's leaf value); with ``"all"`` the conditional mean differs slightly
  from the forest mean. The integrated SD of the two differ by about 1 % (issue 14; see
  ``benchmarks/bench_predictive.py`` for the figure on paper-shaped data).
* ``"oob"``: only the tree's **out-of-bag** training records (bootstrap count 0), each with
  ``c_i = 1``: "honest" leaves, whose values did not choose the tree's splits (Wager and Athey
  2018). A tree whose leaf (reached by the row) holds no out-of-bag record is skipped for that
  row, and the forest's weight is shared equally by its contributing trees: tree ``t`` gives
  ``1 / n_oob_leaf / U`` to each out-of-bag member, ``U`` the row's number of contributing
  trees of the forest (not ``T``). Needs the bootstrap counts, like ``"inbag"``. A forest with
  no contributing tree at a row has no distribution there: its moments are NaN, and so are the
  moments, quantiles and MAD of any mixture holding it at that row (a run refuses such a
  forest: :func:`srgpu.run.predictive.predictive_batch`). On the demo world a tree is skipped
  for a grid row with probability 0.27 at the median row and at most 0.72 with 25 trees, 0.52
  with 200, so with the default 500 trees it does not happen; one-tree forests meet it. On
  the demo world its held-out intervals cover within 5 points of nominal where ``"all"``'s 50
  % interval covers 39 % (docs/predictive.md).

Pooling over replicates (``forests`` of one :class:`LeafTables`): the **equal mixture** of the
forests' predictive distributions. The replicates of a flux all train on subsets of the flux's
record table, so the mixture is one weight vector over that table: record ``i`` gets
``(1 / K) * sum_r w_r(i)`` (``w_r(i) = 0`` where forest ``r`` did not train on ``i``). Its
quantiles, median and MAD are computed exactly from that vector (never from averaged
per-replicate quantiles). Its moments merge exactly: mean = mean of the forests' conditional
means, second moment = mean of their second moments (:class:`PredictiveMoments`).

Quantile rule (``rule``), for a discrete distribution with weights ``w_j`` on sorted ``y_j``:

* ``"linear"`` (default): quantile-forest's weighted quantile with ``interpolation="linear"``:
  the weights are frequencies on the scale where they sum to ``S``, the row's count of leaf
  members over the trees (``sum_t n_leaf``; averaged over the forests when pooled), so that
  with integer frequencies it is the type-7 quantile of the expanded sample (R's default, which
  quantregForest 1.3-7 applies to its one value per tree). ``p = q (S - 1) + 1``; with ``C_j``
  the cumulative frequencies, ``j`` the last value with ``C_j <= p`` and ``k`` the next one,
  the quantile is ``y_j + min(p - C_j, 1) (y_k - y_j)``. The oracle tests show equality with
  ``RandomForestQuantileRegressor.predict(weighted_leaves=True)`` on the same trees.
* ``"inverted_cdf"``: Meinshausen's ``inf{y : F(y | x) >= q}`` (no interpolation).

MAD: the median (same rule) of ``|Y - median|`` under the same weights; ``mad`` is unscaled,
``mad_scaled = 1.4826 * mad`` (R's ``mad()`` default, the consistent estimator of a normal SD:
the paper's "SD" of 40.4 / 25.0 Pg C/yr is most likely this).

quantregForest 1.3-7's own scheme (:func:`qrf_sample_leaf_values`, :func:`qrf_sample_summary`):
each leaf keeps one training value drawn at random among its members (all rows), the row's
distribution is the ``T`` values of its leaves (``K * T`` values pooled), with type-7
quantiles. The draws come from ``SeedSequence(seed, spawn_key=(replicate, flux, 3))``
(:func:`qrf_sample_seed`), next to :mod:`srgpu.run.sampling`'s purposes 0-2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from srgpu.config import PREDICTIVE_MEMBERSHIPS, TRAINED_FLUXES, ForestConfig
from srgpu.constants import NORMAL_MAD_SCALE
from srgpu.errors import ConfigError, InputError
from srgpu.forest import predictive_kernels as K
from srgpu.forest.arrays import ForestArrays, forest_arrays
from srgpu.forest.numba_engine import (
    ORDER_MIN_ROWS,
    ORDER_MIN_TREES,
    _check_threads,
    tile_rows,
)
from srgpu.forest.protocol import check_rows
from srgpu.forest.row_plans import plan_rows, row_order

MEMBERSHIPS = PREDICTIVE_MEMBERSHIPS  # the config's choices (srgpu.config)
QUANTILE_RULES = ("linear", "inverted_cdf")
DEFAULT_LEVELS = (0.025, 0.05, 0.25, 0.5, 0.75, 0.95, 0.975)
"""Quantile levels computed by default (the central 50, 90 and 95 % intervals and the median)."""
PURPOSE_QRF_SAMPLE = 3
"""Seed-sequence purpose of quantregForest's one-value-per-leaf draws (after
:mod:`srgpu.run.sampling`'s 0: sample, 1: forest, 2: importance)."""
SUMMARY_LEAF_BYTES = 4 << 20
"""The quantile kernel keeps the leaves of a tile of rows for all trees: at most this many
bytes per thread (sets its tile size)."""


# ----------------------------------------------------------------------------- tables
@dataclass(frozen=True, eq=False)
class LeafTables:
    """Leaf membership of a batch of forests (one flux), ready for the kernels.

    ``arrays``: the forests' :class:`~srgpu.forest.arrays.ForestArrays` (global node numbers).
    Per node (0 at inner nodes): ``leaf_size`` (sum of member multiplicities), ``moments``
    (n_nodes, 2): the leaf means of y and y**2 under the membership (:attr:`moment1`,
    :attr:`moment2`). ``leaf_start`` (CSR,
    ``n_nodes + 1``), ``members`` (int32 rank of each member record in ``y_sorted``),
    ``member_weight`` (multiplicity / leaf size). ``y_sorted``: the flux's record values in
    ascending order (all records, trained on or not); ``record_rank[i]``: position of record
    ``i`` in ``y_sorted``. ``packed``: per leaf, its count of member chunks, its size and one
    uint32 per member (rank and multiplicity), padded to whole chunks, in one uint32 array
    (:func:`~srgpu.forest.predictive_kernels.build_tables`); ``leaf_offset`` (per node): the
    leaf's word offset in it, tagged in its lowest bit where the leaf has more than one chunk
    (what the weight kernels' tree walk returns). ``forests``: the
    fitted forests (for the engines that load them).
    """

    arrays: ForestArrays
    leaf_start: np.ndarray
    members: np.ndarray
    member_weight: np.ndarray
    leaf_size: np.ndarray
    moments: np.ndarray
    y_sorted: np.ndarray
    record_rank: np.ndarray
    membership: str
    packed: np.ndarray
    leaf_offset: np.ndarray
    forests: tuple = ()

    @property
    def n_forests(self) -> int:
        return self.arrays.n_forests

    @property
    def moment1(self) -> np.ndarray:
        """Leaf mean of y per node (0 at inner nodes)."""
        return self.moments[:, 0]

    @property
    def moment2(self) -> np.ndarray:
        """Leaf mean of y**2 per node (0 at inner nodes)."""
        return self.moments[:, 1]

    @property
    def n_records(self) -> int:
        return int(self.y_sorted.shape[0])

    @property
    def honest(self) -> bool:
        """Out-of-bag membership: trees whose leaf has no member are skipped for a row."""
        return self.membership == "oob"

    @property
    def contributes(self) -> np.ndarray:
        """Per node, 1.0 where the leaf has a member (``leaf_size > 0``), else 0.0 (inner
        nodes, and with ``"oob"`` membership leaves without out-of-bag records): the third
        leaf value of the ``"oob"`` moments, whose tree mean is the row's share of
        contributing trees."""
        return (self.leaf_size > 0).astype(np.float64)

    @property
    def nbytes(self) -> int:
        """Memory of the membership tables (not the trees), bytes."""
        return sum(
            a.nbytes
            for a in (self.leaf_start, self.members, self.member_weight, self.leaf_size,
                      self.moments, self.packed, self.leaf_offset)
        )  # fmt: skip

    def subset(self, i: int) -> LeafTables:
        """The tables of forest ``i`` alone (same record space), e.g. for its held-out rows."""
        if not 0 <= i < self.n_forests:
            raise IndexError(f"forest {i} not in [0, {self.n_forests})")
        return dataclasses.replace(
            self,
            arrays=dataclasses.replace(
                self.arrays, forest_offsets=self.arrays.forest_offsets[i : i + 2].copy()
            ),
            forests=self.forests[i : i + 1] if self.forests else (),
        )


def inbag_counts(*, n_train: int, forest: ForestConfig, seed: np.random.SeedSequence) -> np.ndarray:
    """Bootstrap multiplicities ``(trees, n_train)`` of the forest that
    :func:`srgpu.forest.train.fit_forest` grows from ``seed`` (the same draw, replayed; all ones
    without bootstrap). The tests check them against the grown leaves' sample counts."""
    if not forest.bootstrap:
        return np.ones((forest.trees, n_train), dtype=np.int32)
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, n_train, size=(forest.trees, n_train))
    counts = np.zeros((forest.trees, n_train), dtype=np.int32)
    for t in range(forest.trees):
        counts[t] = np.bincount(boot[t], minlength=n_train)
    return counts


def leaf_tables(
    forests: Sequence[Any],
    *,
    X: np.ndarray,
    y: np.ndarray,
    train_index: Sequence[np.ndarray],
    membership: str = "all",
    inbag: Sequence[np.ndarray] | None = None,
) -> LeafTables:
    """Leaf membership tables of ``forests`` (fitted on one flux's records).

    ``X`` (n_records, p) and ``y`` (n_records,): the flux's whole record table;
    ``train_index[r]``: the records forest ``r`` was trained on (its replicate's
    ``split.train``, in the order given to ``fit_forest``). ``membership``: ``"all"``,
    ``"inbag"`` or ``"oob"`` (see the module docstring); ``"inbag"`` and ``"oob"`` need
    ``inbag[r]``, the ``(trees, len(train_index[r]))`` bootstrap multiplicities
    (:func:`inbag_counts`).
    """
    if membership not in MEMBERSHIPS:
        raise ConfigError(f"membership must be one of {MEMBERSHIPS}, got {membership!r}")
    forests = list(forests)
    if len(train_index) != len(forests):
        raise InputError(
            "one training index per forest is needed",
            field="train_index",
            value=len(train_index),
            expected=f"{len(forests)} arrays",
        )
    if membership != "all" and (inbag is None or len(inbag) != len(forests)):
        raise InputError(
            f"{'in-bag' if membership == 'inbag' else 'out-of-bag'} membership needs the "
            "bootstrap counts of every forest",
            field="inbag",
            value=None if inbag is None else len(inbag),
            expected=f"{len(forests)} arrays of shape (trees, n_train)",
        )
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise InputError("X and y must be (n, p) and (n,)", field="X", value=(X.shape, y.shape))
    if y.shape[0] > 1 << K.RANK_BITS:
        raise InputError(
            "too many records for the packed leaf tables",
            field="y",
            value=y.shape[0],
            expected=f"at most {1 << K.RANK_BITS} records",
        )
    if not np.all(np.isfinite(y)):
        raise InputError("y holds NaN or infinite values", field="y", expected="finite values")
    arrays = forest_arrays(forests)
    order = np.argsort(y, kind="stable")
    rank = np.empty(y.shape[0], dtype=np.int64)
    rank[order] = np.arange(y.shape[0])
    leaf_of, rank_of, count_of, y_of = [], [], [], []
    for r in range(len(forests)):
        idx = np.asarray(train_index[r], dtype=np.int64)
        t0, t1 = int(arrays.forest_offsets[r]), int(arrays.forest_offsets[r + 1])
        leaves = K.apply_rows(
            X[idx], arrays.feature, arrays.threshold, arrays.children, arrays.nan_left,
            arrays.tree_offsets[t0:t1],
        )  # fmt: skip
        if membership == "all":
            counts = np.ones(leaves.shape, dtype=np.int32)
        else:
            counts = np.asarray(inbag[r], dtype=np.int32)
            if counts.shape != leaves.shape or counts.max(initial=0) > K.MAX_MULTIPLICITY:
                raise InputError(
                    "bootstrap counts do not match the forest",
                    field=f"inbag[{r}]",
                    value=counts.shape,
                    expected=f"{leaves.shape}, counts at most {K.MAX_MULTIPLICITY}",
                )
            in_bag = np.bincount(leaves.ravel(), weights=counts.ravel(), minlength=arrays.n_nodes)
            empty = np.unique(leaves[in_bag[leaves] == 0])
            if empty.size:  # every leaf of a tree holds a record of the sample it was grown on
                raise InputError(
                    "bootstrap counts do not match the forest: leaves that no in-bag record "
                    "reaches",
                    field=f"inbag[{r}]",
                    value=f"leaf node {int(empty[0])}"
                    + (f" and {empty.size - 1} more" if empty.size > 1 else ""),
                    expected="the in-bag counts the forest was grown on",
                )
            if membership == "oob":
                # out-of-bag records once each; the in-bag ones (0) still mark their leaves as
                # reached, packed empty where no out-of-bag record joins them
                counts = (counts == 0).astype(np.int32)
        leaf_of.append(leaves.ravel())
        rank_of.append(np.broadcast_to(rank[idx], leaves.shape).ravel())
        count_of.append(counts.ravel())
        y_of.append(np.broadcast_to(y[idx], leaves.shape).ravel())
    leaf_start, members, member_weight, leaf_size, m1, m2, packed, offset = K.build_tables(
        np.concatenate(leaf_of), np.concatenate(rank_of), np.concatenate(count_of),
        np.concatenate(y_of), arrays.n_nodes, y.shape[0],
    )  # fmt: skip
    return LeafTables(
        arrays=arrays,
        leaf_start=leaf_start,
        members=members,
        member_weight=member_weight,
        leaf_size=leaf_size,
        moments=np.ascontiguousarray(np.stack([m1, m2], axis=1)),
        y_sorted=y[order],
        record_rank=rank,
        membership=membership,
        packed=packed,
        leaf_offset=offset,
        forests=tuple(forests),
    )


# ----------------------------------------------------------------------------- rows
def _prepare_rows(X: Any, n_features: int, n_trees: int) -> tuple:
    X = np.ascontiguousarray(X, dtype=np.float32)
    check_rows(X, n_features)
    inverse = None
    if X.shape[0] >= ORDER_MIN_ROWS and n_trees >= ORDER_MIN_TREES:
        plan = plan_rows(X)
        X, inverse, order = plan.rows, plan.inverse, plan.order
    else:
        order = np.arange(X.shape[0], dtype=np.int64)
    return X, order, inverse


def _run(kernel, threads: int | None, *args):
    n = _check_threads(threads)
    if n is None:
        return kernel(*args)
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(previous)


def _tree_args(a: ForestArrays) -> tuple:
    node_ids = np.arange(a.n_nodes, dtype=np.float64)
    return (
        a.feature.view(np.uint32),
        a.threshold,
        a.children.view(np.uint32),
        a.nan_left,
        node_ids,
    )


def _batch_trees(tables: LeafTables, n_forests: int | None = None) -> tuple:
    """Tree offsets of the tables' forests, each tree's forest, each forest's weight per tree
    (``1 / (trees * n_forests)``) and share (``1 / n_forests``; default: the tables' count)."""
    a = tables.arrays
    fo = a.forest_offsets
    tree_offsets = a.tree_offsets[fo[0] : fo[-1] + 1]
    per = np.diff(fo)
    tree_forest = np.repeat(np.arange(per.shape[0]), per)
    share = np.full(per.shape[0], 1.0 / (n_forests if n_forests is not None else per.shape[0]))
    return tree_offsets, tree_forest, share / per, share


# ----------------------------------------------------------------------------- moments
@dataclass(frozen=True)
class PredictiveMoments:
    """Conditional mean and second moment of each forest's predictive distribution, shape
    ``(n_forests, n_rows)``, float64 (units of y and y**2)."""

    mean: np.ndarray
    second: np.ndarray

    def sd(self) -> np.ndarray:
        """Per-forest conditional SD, ``sqrt(max(E[Y^2] - E[Y]^2, 0))`` (rounding can make a
        zero variance slightly negative)."""
        return np.sqrt(np.maximum(self.second - self.mean * self.mean, 0.0))

    def pooled(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, sd)`` per row of the equal mixture of the forests' distributions."""
        mean = self.mean.mean(axis=0)
        second = self.second.mean(axis=0)
        return mean, np.sqrt(np.maximum(second - mean * mean, 0.0))


def moment_forests(tables: LeafTables) -> tuple[list, ...]:
    """Copies of the tables' forests (as scikit-learn ``RandomForestRegressor``) whose leaf
    values are the leaf means of y and of y**2 under the tables' membership: any inference engine
    (nvForest, scikit-learn) then predicts the conditional mean and second moment with its plain
    ``predict``. Inner-node values are 0. With ``"oob"`` membership a third copy holds
    :attr:`LeafTables.contributes` (1 at a leaf with an out-of-bag member, else 0; the other two
    hold 0 there): its forest mean is the row's share ``U / T`` of contributing trees, and the
    moments are the first two predictions divided by it (:func:`predictive_moments`)."""
    from srgpu.forest.grown import as_sklearn
    from srgpu.forest.train import assemble_forest

    if not tables.forests:
        raise InputError("the tables keep no forests", field="tables.forests")
    a = tables.arrays
    leaf_values = [tables.moment1, tables.moment2]
    if tables.honest:
        leaf_values.append(tables.contributes)
    out: tuple[list, ...] = tuple([] for _ in leaf_values)
    for r, forest in enumerate(tables.forests):
        sk = as_sklearn(forest)
        t0 = int(a.forest_offsets[r])
        for values, dest in zip(leaf_values, out, strict=True):
            trees = []
            for k, est in enumerate(sk.estimators_):
                lo, hi = int(a.tree_offsets[t0 + k]), int(a.tree_offsets[t0 + k + 1])
                state = est.tree_.__getstate__()
                state["values"] = values[lo:hi].reshape(-1, 1, 1).copy()
                tree = type(est.tree_)(est.n_features_in_, np.ones(1, dtype=np.intp), 1)
                tree.__setstate__(state)
                clone = type(est).__new__(type(est))
                clone.__dict__.update(est.__dict__)
                clone.tree_ = tree
                trees.append(clone)
            params = {
                k: v for k, v in sk.estimators_[0].get_params().items() if k != "random_state"
            }
            dest.append(assemble_forest(trees, n_features=sk.n_features_in_, params=params))
    return out


def predictive_moments(
    tables: LeafTables, X: Any, *, engine: Any = None, threads: int | None = None
) -> PredictiveMoments:
    """Conditional mean and second moment of each forest at rows ``X`` (n_rows, p).

    ``engine=None``: srgpu's numba kernel, one traversal per tree for both moments
    (:func:`~srgpu.forest.predictive_kernels.moments_kernel`). Otherwise an inference engine
    (e.g. ``NvForestEngine(device="cpu")``): it compiles the two :func:`moment_forests` and
    predicts each (two traversals); its dtype follows the engine (float32 for nvForest's
    ``precision="single"``), the result is float64.

    ``"oob"`` membership: per forest and row the sums over the contributing trees divided by
    their number ``U`` (NaN where ``U = 0``: no distribution). The numba path walks each tree
    once with three leaf values (:func:`~srgpu.forest.predictive_kernels.fused_kernel` with
    :attr:`LeafTables.contributes` as the first: ``U / T``, then the two moment sums over
    ``T``), an engine predicts the three :func:`moment_forests`; both divide by ``U / T``.
    """
    if engine is not None:
        compiled = [engine.compile(f) for f in moment_forests(tables)]
        preds = [np.asarray(c.predict(X), dtype=np.float64) for c in compiled]
        if tables.honest:
            return _per_contributing_tree(preds[2], preds[0], preds[1])
        return PredictiveMoments(mean=preds[0], second=preds[1])
    a = tables.arrays
    X, order, inverse = _prepare_rows(X, a.n_features, a.n_trees)
    n = _check_threads(threads)
    tile = tile_rows(X.shape[0], n if n is not None else numba.get_num_threads())
    if X.shape[0] == 0:
        empty = np.empty((a.n_forests, 0))
        return PredictiveMoments(mean=empty, second=empty.copy())
    if tables.honest:
        share, m1, m2 = _run(
            K.walk_kernel("fused"), threads, X, order, *_tree_args(a)[:4], tables.contributes,
            tables.moments, a.tree_offsets, a.forest_offsets, int(a.tree_depth.max(initial=0)),
            tile,
        )  # fmt: skip
        if inverse is not None:
            share, m1, m2 = share[:, inverse], m1[:, inverse], m2[:, inverse]
        return _per_contributing_tree(share, m1, m2)
    m1, m2 = _run(
        K.walk_kernel("moments"), threads, X, order, *_tree_args(a)[:4], tables.moments,
        a.tree_offsets, a.forest_offsets, int(a.tree_depth.max(initial=0)), tile,
    )  # fmt: skip
    if inverse is not None:
        m1, m2 = m1[:, inverse], m2[:, inverse]
    return PredictiveMoments(mean=m1, second=m2)


def _per_contributing_tree(share: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> PredictiveMoments:
    """``"oob"`` moments from tree means over all ``T`` trees: ``share = U / T`` (contributing
    trees) and the moment sums over ``T``; divided by ``share`` (NaN where ``U = 0``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        none = share == 0.0
        mean = np.where(none, np.nan, m1 / share)
        second = np.where(none, np.nan, m2 / share)
    return PredictiveMoments(mean=mean, second=second)


# ----------------------------------------------------------------------------- quantiles
def _check_levels(levels: Sequence[float]) -> np.ndarray:
    lv = np.asarray(levels, dtype=np.float64).reshape(-1)
    if lv.size == 0 or not np.all((lv >= 0) & (lv <= 1)):
        raise ConfigError(f"quantile levels must lie in [0, 1], got {list(levels)!r}")
    return lv


def _rule_code(rule: str) -> int:
    if rule not in QUANTILE_RULES:
        raise ConfigError(f"quantile rule must be one of {QUANTILE_RULES}, got {rule!r}")
    return K.RULE_LINEAR if rule == "linear" else K.RULE_INVERTED_CDF


def _summary_tile(n_trees: int, itemsize: int = 8) -> int:
    """Rows per tile of the weight kernels: the tile's leaves (``itemsize`` bytes a row and
    tree) take at most :data:`SUMMARY_LEAF_BYTES` (2048 rows of 500 trees with int32 offsets:
    measured slightly faster than 1024)."""
    t = 2048
    while t > 16 and t * n_trees * itemsize > SUMMARY_LEAF_BYTES:
        t //= 2
    return t


def _leaf_proto(tables: LeafTables) -> np.ndarray:
    """An empty array of the dtype the weight kernels keep leaf offsets in: int32 while the
    packed table's word offsets fit in it (half the memory of int64), else int64."""
    return np.empty(0, dtype=np.int32 if tables.packed.size < 2**31 else np.int64)


@dataclass(frozen=True)
class PredictiveSummary:
    """Order statistics of the pooled predictive distribution per row: ``quantiles``
    (n_rows, n_levels) at ``levels``, ``median``, ``mad`` (unscaled median absolute deviation
    from the median) and ``mad_scaled`` (``1.4826 * mad``), float64 in units of y."""

    levels: tuple[float, ...]
    quantiles: np.ndarray
    median: np.ndarray
    mad: np.ndarray
    mad_scaled: np.ndarray

    def quantile(self, level: float) -> np.ndarray:
        """The column of ``level`` (one of ``levels``)."""
        return self.quantiles[:, self.levels.index(level)]


def predictive_summary(
    tables: LeafTables,
    X: Any,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    rule: str = "linear",
    threads: int | None = None,
) -> PredictiveSummary:
    """Exact quantiles, median and MAD of the equal mixture of the tables' forests at rows
    ``X``: per row, its weights over the records are accumulated in one vector (per thread),
    then read by a prefix walk (quantiles) and a walk out from the median (MAD)."""
    lv = _check_levels(levels)
    code = _rule_code(rule)
    a = tables.arrays
    tree_offsets, tree_forest, forest_scale, forest_share = _batch_trees(tables)
    n_trees = tree_offsets.shape[0] - 1
    X, order, inverse = _prepare_rows(X, a.n_features, n_trees)
    walk, columns, half = _walk_levels(lv)
    n_rows = X.shape[0]
    q = np.empty((n_rows, walk.size))
    mad = np.empty(n_rows)
    proto = _leaf_proto(tables)
    if n_rows:
        _run(
            K.walk_kernel("summary"), threads, X, order, *_tree_args(a)[:4], tables.leaf_offset,
            tree_offsets, tree_forest, forest_scale, forest_share,
            int(a.tree_depth.max(initial=0)), _summary_tile(n_trees, proto.itemsize), proto,
            tables.packed, tables.y_sorted, walk, half, code, q, mad, tables.honest,
        )  # fmt: skip
    if inverse is not None:
        q, mad = q[inverse], mad[inverse]
    return PredictiveSummary(
        levels=tuple(float(v) for v in lv),
        quantiles=q[:, columns],
        median=q[:, half].copy(),
        mad=mad,
        mad_scaled=NORMAL_MAD_SCALE * mad,
    )


def _walk_levels(lv: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The ascending distinct levels one walk computes (the requested ones and 0.5), the column
    of each requested level among them, and the column of 0.5."""
    walk = np.unique(np.append(lv, 0.5))
    return walk, np.searchsorted(walk, lv), int(np.searchsorted(walk, 0.5))


@dataclass
class WeightAccumulator:
    """Pooled weights of rows over a flux's records, accumulated forest batch by forest batch:
    ``weights`` (n_rows, n_records), ``totals`` and ``counts`` (n_rows,). After
    :meth:`add` of batches holding ``K`` forests in all, with ``n_forests=K`` given to each
    call, the weights are those of the equal mixture of the ``K`` forests (they sum to 1).
    With ``"oob"`` tables, a row where some forest has no contributing tree gets no weight from
    it and NaN in its total and count: the row has no distribution (NaN order statistics)."""

    weights: np.ndarray
    totals: np.ndarray
    counts: np.ndarray

    @classmethod
    def zeros(cls, *, n_rows: int, n_records: int) -> WeightAccumulator:
        return cls(
            weights=np.zeros((n_rows, n_records)),
            totals=np.zeros(n_rows),
            counts=np.zeros(n_rows),
        )

    def add(
        self, tables: LeafTables, X: Any, *, n_forests: int | None = None,
        dest: np.ndarray | None = None, share: float = 1.0, threads: int | None = None,
    ) -> None:  # fmt: skip
        """Add the weights of the tables' forests at rows ``X``, each forest with share
        ``1 / n_forests`` (default: the tables' own count). Row ``i`` of ``X`` goes to row
        ``dest[i]`` of the accumulator (default: row ``i``), with its weights times ``share``:
        the per-cell (time-mean) distribution of a year-major grid is the equal mixture over
        the cell's years, ``dest = row % n_cells`` and ``share = 1 / n_years`` (run on one
        thread, since several rows share a destination)."""
        a = tables.arrays
        tree_offsets, tree_forest, forest_scale, forest_share = _batch_trees(tables, n_forests)
        X = np.ascontiguousarray(X, dtype=np.float32)
        check_rows(X, a.n_features)
        one_to_one = dest is None
        if dest is None:
            if X.shape[0] != self.weights.shape[0]:
                raise InputError(
                    "X must have the accumulator's rows (or give dest)",
                    field="X",
                    value=X.shape[0],
                    expected=str(self.weights.shape[0]),
                )
            dest = np.arange(X.shape[0], dtype=np.int64)
        else:
            dest = np.ascontiguousarray(dest, dtype=np.int64)
            if dest.shape != (X.shape[0],):
                raise InputError("dest must give one row per row of X", field="dest")
            threads = 1  # destinations shared by rows: no concurrent adds
        if tables.n_records != self.weights.shape[1] or (
            dest.size and (dest.min() < 0 or dest.max() >= self.weights.shape[0])
        ):
            raise InputError(
                "rows or records do not match the accumulator",
                field="X",
                value=(X.shape[0], tables.n_records),
                expected=str(self.weights.shape),
            )
        if X.shape[0] == 0:
            return
        if one_to_one and X.shape[0] >= ORDER_MIN_ROWS and len(tree_forest) >= ORDER_MIN_TREES:
            order = row_order(X)  # neighbours share leaves; each row's adds are unchanged
        else:
            order = np.arange(X.shape[0], dtype=np.int64)
        proto = _leaf_proto(tables)
        _run(
            K.walk_kernel("accumulate"), threads, X, order, *_tree_args(a)[:4], tables.leaf_offset,
            tree_offsets, tree_forest, forest_scale * share, forest_share * share,
            int(a.tree_depth.max(initial=0)), _summary_tile(len(tree_forest), proto.itemsize),
            proto, tables.packed, dest, self.weights, self.totals, self.counts,
            len(tree_forest) >= K.STREAM_MIN_TREES, tables.honest,
        )  # fmt: skip

    def summary(
        self, y_sorted: np.ndarray, *, levels: Sequence[float] = DEFAULT_LEVELS,
        rule: str = "linear",
    ) -> PredictiveSummary:  # fmt: skip
        """Quantiles, median and MAD of each row's accumulated distribution."""
        return summary_of_weights(
            self.weights, y_sorted, levels=levels, rule=rule, totals=self.totals,
            counts=self.counts,
        )  # fmt: skip


def summary_of_weights(
    weights: np.ndarray,
    y_sorted: np.ndarray,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    rule: str = "linear",
    totals: np.ndarray | None = None,
    counts: np.ndarray | None = None,
) -> PredictiveSummary:
    """Quantiles, median and MAD of discrete distributions given as rows of ``weights``
    (n_rows, n_values) on the ascending ``y_sorted``. ``counts``: the frequency scale of the
    ``"linear"`` rule per row (required for it); ``totals``: the weight sums (default: summed).
    A row whose total is NaN has no distribution (``"oob"`` membership where some forest has
    no contributing tree: :class:`WeightAccumulator`): its quantiles, median and MAD are NaN."""
    lv = _check_levels(levels)
    code = _rule_code(rule)
    W = np.ascontiguousarray(weights, dtype=np.float64)
    ys = np.ascontiguousarray(y_sorted, dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != ys.shape[0]:
        raise InputError("weights must be (n_rows, n_values)", field="weights", value=W.shape)
    totals = W.sum(axis=1) if totals is None else np.asarray(totals, dtype=np.float64)
    undefined = np.isnan(totals)
    empty = np.flatnonzero(~(totals > 0.0) & ~undefined)
    if empty.size:
        raise InputError(
            "a row's weights sum to 0: it has no distribution",
            field="weights",
            value=f"row {int(empty[0])} (of {empty.size} such rows)",
            expected="every row with a positive total weight",
        )
    if counts is None:
        if code == K.RULE_LINEAR:
            raise InputError("the linear rule needs each row's member count", field="counts")
        counts = np.ones(W.shape[0])
    walk, columns, half = _walk_levels(lv)
    q = np.empty((W.shape[0], walk.size))
    mad = np.empty(W.shape[0])
    for i in range(W.shape[0]):
        if undefined[i]:
            q[i] = np.nan
            mad[i] = np.nan
            continue
        keep = W[i] != 0.0
        ws, ys_i = np.ascontiguousarray(W[i][keep]), np.ascontiguousarray(ys[keep])
        K.quantiles_of_weights(ws, ys_i, walk, code, float(totals[i]), float(counts[i]), q[i])
        mad[i] = K.mad_of_weights(ws, ys_i, q[i, half], code, float(totals[i]), float(counts[i]))
    return PredictiveSummary(
        levels=tuple(float(v) for v in lv),
        quantiles=q[:, columns],
        median=q[:, half].copy(),
        mad=mad,
        mad_scaled=NORMAL_MAD_SCALE * mad,
    )


# ----------------------------------------------------------------------------- quantregForest
def qrf_sample_seed(seed: int, replicate: int, flux: str) -> np.random.SeedSequence:
    """Seed sequence of replicate ``replicate``'s one-value-per-leaf draws for ``flux``."""
    return np.random.SeedSequence(
        seed, spawn_key=(replicate, TRAINED_FLUXES.index(flux), PURPOSE_QRF_SAMPLE)
    )


def qrf_sample_leaf_values(
    tables: LeafTables, *, seeds: Sequence[np.random.SeedSequence]
) -> np.ndarray:
    """quantregForest 1.3-7's leaf values: per leaf, the y of one member drawn at random with
    probability its member weight (uniform over the leaf's records for ``"all"`` membership);
    ``seeds[r]`` draws forest ``r``'s leaves. Per node, float64 (NaN at inner nodes). Not for
    ``"oob"`` tables (quantregForest's scheme has no empty leaves): a :class:`ConfigError`."""
    if tables.honest:
        raise ConfigError(
            "quantregForest's one-value-per-leaf scheme is defined for membership 'all' or "
            "'inbag', not 'oob' (leaves without out-of-bag records hold no value)"
        )
    a = tables.arrays
    if len(seeds) != a.n_forests:
        raise InputError("one seed per forest is needed", field="seeds", value=len(seeds))
    values = np.full(a.n_nodes, np.nan)
    starts = tables.leaf_start
    for r in range(a.n_forests):
        lo = int(a.tree_offsets[a.forest_offsets[r]])
        hi = int(a.tree_offsets[a.forest_offsets[r + 1]])
        nodes = np.arange(lo, hi)
        leaves = nodes[starts[nodes + 1] > starts[nodes]]
        u = np.random.default_rng(seeds[r]).random(leaves.shape[0])
        cum = np.cumsum(tables.member_weight)
        base = np.where(starts[leaves] > 0, cum[starts[leaves] - 1], 0.0)
        target = base + u * (cum[starts[leaves + 1] - 1] - base)
        pick = np.searchsorted(cum, target, side="right")
        pick = np.clip(pick, starts[leaves], starts[leaves + 1] - 1)
        values[leaves] = tables.y_sorted[tables.members[pick]]
    return values


def qrf_sample_summary(
    tables: LeafTables,
    X: Any,
    *,
    leaf_values: np.ndarray,
    levels: Sequence[float] = DEFAULT_LEVELS,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, PredictiveSummary]:
    """quantregForest 1.3-7's prediction at rows ``X`` from :func:`qrf_sample_leaf_values`:
    ``(mean, sd, summary)`` of the ``K * T`` leaf values each row reaches (type-7 quantiles,
    R's ``quantile`` default; ``sd`` with divisor ``K * T``; MAD as R's ``mad`` of the values,
    unscaled and scaled)."""
    lv = _check_levels(levels)
    a = tables.arrays
    tree_offsets = _batch_trees(tables)[0]
    n_trees = tree_offsets.shape[0] - 1
    X, order, inverse = _prepare_rows(X, a.n_features, n_trees)
    vals = np.empty((X.shape[0], n_trees))
    if X.shape[0]:
        _run(
            K.walk_kernel("leaf_values"), threads, X, order, *_tree_args(a), tree_offsets,
            int(a.tree_depth.max(initial=0)), _summary_tile(n_trees),
            np.ascontiguousarray(leaf_values, dtype=np.float64), vals,
        )  # fmt: skip
    if inverse is not None:
        vals = vals[inverse]
    q = np.quantile(vals, lv, axis=1).T
    med = np.median(vals, axis=1)
    mad = np.median(np.abs(vals - med[:, None]), axis=1)
    return (
        vals.mean(axis=1),
        vals.std(axis=1),
        PredictiveSummary(
            levels=tuple(float(v) for v in lv),
            quantiles=q,
            median=med,
            mad=mad,
            mad_scaled=NORMAL_MAD_SCALE * mad,
        ),
    )


# ----------------------------------------------------------------------------- calibration
CALIBRATION_CHUNK_ROWS = 2048
"""Held-out rows whose weight vectors are held at once by :func:`heldout_calibration`."""


def heldout_calibration(
    tables: LeafTables,
    X: Any,
    y: Any,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    rule: str = "linear",
    rng: np.random.Generator | None = None,
    threads: int | None = None,
) -> dict:
    """Calibration of the tables' (pooled) predictive distribution on observations ``(X, y)``,
    typically one replicate's held-out records with that replicate's tables
    (:meth:`LeafTables.subset`): ``{"coverage": {"0.5", "0.9", "0.95"}, "pit_hist": [10
    shares], "crps": mean CRPS (units of y), "n": observations scored, "undefined":
    observations left out}``. Randomised PIT with ``rng`` (mid-PIT without). ``levels`` must
    hold the three intervals' bounds. An observation where the distribution is undefined
    (``"oob"`` membership, a forest without a contributing tree there: NaN total) is left out
    of every score and counted in ``"undefined"`` (0 with the other memberships)."""
    from srgpu import calibration as C

    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.shape[0] != y.shape[0]:
        raise InputError("X and y differ in length", field="y", value=y.shape[0])
    quant, pits, scores, kept = [], [], [], []
    for r0 in range(0, y.shape[0], CALIBRATION_CHUNK_ROWS):
        r1 = min(r0 + CALIBRATION_CHUNK_ROWS, y.shape[0])
        acc = WeightAccumulator.zeros(n_rows=r1 - r0, n_records=tables.n_records)
        acc.add(tables, X[r0:r1], threads=threads)
        ok = ~np.isnan(acc.totals)
        if not ok.all():  # "oob": rows without a distribution, left out
            acc = WeightAccumulator(acc.weights[ok], acc.totals[ok], acc.counts[ok])
        quant.append(acc.summary(tables.y_sorted, levels=levels, rule=rule).quantiles)
        pits.append(C.pit(y[r0:r1][ok], acc.weights, tables.y_sorted, rng=rng))
        scores.append(C.crps(y[r0:r1][ok], acc.weights, tables.y_sorted))
        kept.append(ok)
    q = np.concatenate(quant) if quant else np.empty((0, len(levels)))
    ok = np.concatenate(kept) if kept else np.ones(0, dtype=bool)
    return {
        "coverage": C.central_coverage(y[ok], q, levels),
        "pit_hist": C.pit_histogram(np.concatenate(pits) if pits else np.empty(0)).tolist(),
        "crps": float(np.mean(np.concatenate(scores))) if scores else float("nan"),
        "n": int(ok.sum()),
        "undefined": int(ok.size - ok.sum()),
    }
