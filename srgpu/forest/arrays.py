"""Compact, engine-neutral arrays of a batch of fitted random forests.

:func:`forest_arrays` flattens the trees of several fitted scikit-learn
``RandomForestRegressor`` objects (one per replicate) into a handful of plain numpy arrays,
:class:`ForestArrays`. They pickle cheaply (Dask ships them to workers as plain buffers), carry no
Python objects, and hold everything another format (treelite, a GPU layout) needs.

Node layout (``n_nodes`` nodes of all trees of all forests, in scikit-learn's node order, tree
after tree):

* ``feature[n]`` (int32): the column compared at node ``n``; 0 at a leaf.
* ``threshold[n]`` (float32): the largest float32 not above scikit-learn's float64 threshold.
  scikit-learn casts X to float32 and tests ``x <= threshold`` in float64; for every float32 ``x``
  (and NaN) that test equals ``x <= threshold32``, so a float32 kernel is exact.
* ``children[2 n]``, ``children[2 n + 1]`` (int32): global indices of the left and right child.
  A leaf points to itself twice: ``children[2 n] == n`` marks a leaf (the numba kernel's test),
  and a walk that has reached a leaf stays there, so a kernel may also walk rows in lockstep
  without a per-row "am I done" branch, the child being ``children[2 n + (not x <= threshold)]``,
  an index computation that cannot become a jump.
* ``nan_left[n]`` (uint8): 1 where a NaN goes left (scikit-learn's ``missing_go_to_left``: for a
  tree fitted without missing values, NaN follows the child that held more training samples).
* ``value[n]`` (float64): the leaf's prediction (scikit-learn's ``tree_.value[n, 0, 0]``), 0 at an
  inner node.

Tree and forest tables: ``tree_offsets`` (int64, ``n_trees + 1``): tree ``t``'s root is node
``tree_offsets[t]``; ``tree_depth`` (int32): the longest root-to-leaf path of each tree (edges);
``forest_offsets`` (int64, ``n_forests + 1``): forest ``r`` owns trees
``forest_offsets[r]:forest_offsets[r + 1]``, in scikit-learn's estimator order.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from srgpu.errors import InputError
from srgpu.forest import buffers
from srgpu.forest.protocol import batch_n_features

_LEAF = -1  # scikit-learn's TREE_LEAF in children_left / children_right

FILL_THREADS = 4
FILL_PARALLEL_NODES = 200_000
""":func:`forest_arrays` fills batches of at least this many nodes with up to
:data:`FILL_THREADS` threads (8 SR forests of 500 trees: ~5.7 M nodes, 142 MB)."""


@dataclass(frozen=True, eq=False)
class ForestArrays:
    """A batch of forests as flat arrays (see the module docstring for the layout)."""

    feature: np.ndarray
    threshold: np.ndarray
    children: np.ndarray
    nan_left: np.ndarray
    value: np.ndarray
    tree_offsets: np.ndarray
    tree_depth: np.ndarray
    forest_offsets: np.ndarray
    n_features: int

    @property
    def n_nodes(self) -> int:
        """Number of nodes of all trees."""
        return int(self.feature.shape[0])

    @property
    def n_trees(self) -> int:
        """Number of trees of all forests."""
        return int(self.tree_offsets.shape[0] - 1)

    @property
    def n_forests(self) -> int:
        """Number of forests (replicates) in the batch."""
        return int(self.forest_offsets.shape[0] - 1)

    @property
    def trees_per_forest(self) -> np.ndarray:
        """Number of trees of each forest, shape ``(n_forests,)``."""
        return np.diff(self.forest_offsets)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        return sum(
            a.nbytes
            for a in (
                self.feature,
                self.threshold,
                self.children,
                self.nan_left,
                self.value,
                self.tree_offsets,
                self.tree_depth,
                self.forest_offsets,
            )
        )


@njit(cache=True, nogil=True, inline="always")
def _floor32(threshold):
    """The largest float32 not above the float64 ``threshold`` (NaN stays NaN; beyond the
    float32 range: the largest finite float32, or -inf)."""
    t32 = np.float32(threshold)
    if np.float64(t32) > threshold:
        t32 = np.nextafter(t32, np.float32(-np.inf))
    return t32


@njit(cache=True, nogil=True)
def _floor32_all(threshold, out):
    for i in range(threshold.shape[0]):
        out[i] = _floor32(threshold[i])


def float32_floor(threshold: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 ``threshold`` (NaN stays NaN).

    For any float32 ``x``: ``x <= threshold`` (compared in float64) equals
    ``x <= float32_floor(threshold)`` (compared in float32), NaN included (both false).
    :func:`forest_arrays` rounds every split threshold this way.
    """
    threshold = np.asarray(threshold, dtype=np.float64)
    out = np.empty(threshold.shape, dtype=np.float32)
    _floor32_all(np.ascontiguousarray(threshold).reshape(-1), out.reshape(-1))
    return out


def _check_forest(est: Any, index: int) -> None:
    if not hasattr(est, "estimators_"):
        raise InputError(
            "forest is not fitted",
            field=f"forests[{index}]",
            value=type(est).__name__,
            expected="a fitted RandomForestRegressor",
        )
    if getattr(est, "n_outputs_", 1) != 1:
        raise InputError(
            "multi-output forests are not supported",
            field=f"forests[{index}]",
            value=est.n_outputs_,
            expected="n_outputs_ == 1",
        )


def _check_size(n_nodes: int) -> None:
    if n_nodes >= 2**31 // 2:
        raise InputError(
            "batch too large for int32 node indices",
            field="forests",
            value=n_nodes,
            expected="fewer than 2**30 nodes per batch (use smaller replicate batches)",
        )


@njit(cache=True, nogil=True)
def _fill(
    left, right, feature, threshold, mgl, value, node0, feat_out, thr_out, child_out, nan_out,
    val_out, tree_offsets, t0,
):  # fmt: skip
    """Write one block of trees' nodes (scikit-learn's fields, tree-local child indices, -1 at
    leaves) at global node ``node0`` onwards; its trees are ``t0 ..`` of ``tree_offsets``."""
    n_trees = tree_offsets.shape[0] - 1
    for t in range(t0, n_trees):
        lo, hi = tree_offsets[t], tree_offsets[t + 1]
        for g in range(lo, hi):
            k = g - node0
            if left[k] == _LEAF:
                feat_out[g] = 0
                thr_out[g] = np.float32(0)
                child_out[2 * g] = g
                child_out[2 * g + 1] = g
                nan_out[g] = 0
                val_out[g] = value[k]
            else:
                feat_out[g] = feature[k]
                thr_out[g] = _floor32(threshold[k])
                child_out[2 * g] = left[k] + lo
                child_out[2 * g + 1] = right[k] + lo
                nan_out[g] = mgl[k]
                val_out[g] = 0.0


def _forest_blocks(est: Any) -> list[tuple]:
    """The node blocks of one forest, in tree order: ``[(fields, node_counts, max_depths)]``,
    ``fields`` being left, right, feature, threshold, missing_go_to_left and value arrays of
    the block's trees, tree after tree. A :class:`~srgpu.forest.grown.GrownForest` has one block
    per grown part (views, no copy); a scikit-learn forest one block of its trees' arrays,
    concatenated."""
    from srgpu.forest.grown import GrownForest

    if isinstance(est, GrownForest):
        blocks = []
        for g in est.parts:
            n = g.nodes
            fields = (n["left_child"], n["right_child"], n["feature"], n["threshold"],
                      n["missing_go_to_left"], g.value)  # fmt: skip
            blocks.append((fields, g.node_count, g.max_depth))
        return blocks
    trees = [t.tree_ for t in est.estimators_]
    per_tree = [
        (t.children_left, t.children_right, t.feature, t.threshold, t.missing_go_to_left,
         t.value[:, 0, 0])
        for t in trees
    ]  # fmt: skip
    fields = tuple(np.concatenate(column) for column in zip(*per_tree, strict=True))
    return [(fields, [t.node_count for t in trees], [t.max_depth for t in trees])]


def _node_arrays(n_nodes: int) -> tuple[np.ndarray, ...]:
    """Uninitialised ``feature``, ``threshold``, ``children``, ``nan_left`` and ``value`` for
    ``n_nodes`` nodes, all in one block of :mod:`srgpu.forest.buffers` (a batch's flattened
    forests are fresh memory otherwise, mapped page by page: the next batch reuses this one's
    block once nothing holds its arrays). The widest fields first: every field aligned."""
    n = n_nodes
    block = buffers.empty((25 * n,), np.uint8)
    value = block[: 8 * n].view(np.float64)
    children = block[8 * n : 16 * n].view(np.int32)
    feature = block[16 * n : 20 * n].view(np.int32)
    threshold = block[20 * n : 24 * n].view(np.float32)
    nan_left = block[24 * n :]
    return feature, threshold, children, nan_left, value


def forest_arrays(forests: Sequence[Any]) -> ForestArrays:
    """Flatten fitted scikit-learn ``RandomForestRegressor`` objects into :class:`ForestArrays`.

    All forests must have been fitted on the same number of features; they may hold different
    numbers of trees. The trees keep scikit-learn's estimator order, which fixes the order in
    which an engine sums leaf values (and so makes its result bit-identical to ``predict``).
    """
    forests = list(forests)
    if not forests:
        raise InputError("no forests given", field="forests", expected="at least one forest")
    from srgpu.forest.grown import GrownForest

    for i, est in enumerate(forests):
        if not isinstance(est, GrownForest):
            _check_forest(est, i)
    n_features = batch_n_features(forests)

    blocks = [_forest_blocks(est) for est in forests]
    flat = [b for forest_blocks in blocks for b in forest_blocks]
    sizes = np.concatenate([np.asarray(counts, dtype=np.int64) for _, counts, _ in flat])
    tree_offsets = np.zeros(sizes.shape[0] + 1, dtype=np.int64)
    np.cumsum(sizes, out=tree_offsets[1:])
    n_nodes = int(tree_offsets[-1])
    _check_size(n_nodes)
    feature, threshold, children, nan_left, value = _node_arrays(n_nodes)
    forest_offsets = np.zeros(len(forests) + 1, dtype=np.int64)
    np.cumsum([sum(len(c) for _, c, _ in fb) for fb in blocks], out=forest_offsets[1:])
    starts = np.cumsum([0] + [len(counts) for _, counts, _ in flat])

    def fill(k: int) -> None:
        t0, t1 = int(starts[k]), int(starts[k + 1])
        _fill(
            *flat[k][0], tree_offsets[t0], feature, threshold, children, nan_left, value,
            tree_offsets[: t1 + 1], t0,
        )  # fmt: skip

    # blocks write disjoint node ranges; _fill releases the GIL, so large batches are filled by
    # a few threads (most of the cost is the first touch of the fresh output arrays)
    workers = min(FILL_THREADS, os.cpu_count() or 1, len(flat))
    if workers > 1 and n_nodes >= FILL_PARALLEL_NODES:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(fill, range(len(flat))))
    else:
        for k in range(len(flat)):
            fill(k)
    return ForestArrays(
        feature=feature,
        threshold=threshold,
        children=children,
        nan_left=nan_left,
        value=value,
        tree_offsets=tree_offsets,
        tree_depth=np.concatenate([np.asarray(d) for _, _, d in flat]).astype(np.int32),
        forest_offsets=forest_offsets,
        n_features=n_features,
    )
