"""The forest mean and the predictive moments in one walk of each tree (numba engine, CPU).

A run with ``predictive = "moments"`` (or ``"quantiles"``) needs, at every grid row and for every
forest, the forest mean (the engine's ``predict``) and the conditional mean and second moment of
the forest's predictive distribution (the leaf means of y and y**2 under the leaf membership,
:func:`srgpu.forest.predictive.predictive_moments`). :class:`FusedForests` gets all three from
one partitioned walk of each tree per tile
(:func:`srgpu.forest.predictive_kernels.fused_kernel`): one more and two more float64 adds per
row and tree where the engine makes one, on the engine's tiles, bounding-box skips, distinct
rows and Morton order, and with the engine's partition: ``fused_kernel_avx512`` (the AVX-512
one) where :func:`srgpu.forest.vector_split.usable`, as
:func:`~srgpu.forest.predictive_kernels.walk_kernel` chooses. The forest mean is the
engine's bit for bit (the same leaf values added in the same tree order into a float64
accumulator from 0, divided by the same tree count); the moments are
:func:`~srgpu.forest.predictive.predictive_moments`' (the same sums; tested).

The leaf moments are one ``(n_nodes, 2)`` float64 table (16 bytes a node beside the compiled
forests' 25), aligned with the compiled forests' :class:`~srgpu.forest.arrays.ForestArrays`
(global node numbers: forests one after another, as :func:`~srgpu.forest.arrays.forest_arrays`
lays them out and as :func:`~srgpu.forest.predictive.leaf_tables` of each forest alone numbers
its nodes from 0); the forest mean reads the compiled forests' own ``value``.

Not for ``predictive_membership = "oob"``: its moments divide by each row's count of
contributing trees, a fourth sum; a run with it walks the moments apart
(:func:`srgpu.forest.predictive.predictive_moments`, one more walk of each tree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from srgpu.errors import InputError
from srgpu.forest.arrays import ForestArrays
from srgpu.forest.numba_engine import (
    NumbaCompiledForests,
    _check_threads,
    tile_rows,
)
from srgpu.forest.predictive import _prepare_rows, _run, _tree_args
from srgpu.forest.predictive_kernels import walk_kernel


@dataclass(frozen=True, eq=False)
class FusedForests:
    """A batch of compiled forests with their leaf moments (picklable: plain arrays).

    ``moments``: ``(n_nodes, 2)`` float64, per node the leaf mean of y and of y**2 (0 at inner
    nodes); the forest mean averages ``arrays.value`` as the engine does. ``threads``: as the
    engine's (``None``: numba's setting)."""

    arrays: ForestArrays
    moments: np.ndarray
    threads: int | None = None

    @property
    def n_replicates(self) -> int:
        return self.arrays.n_forests

    def predict_moments(
        self, X: Any, *, threads: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, first, second)``, each ``(n_replicates, n_rows)`` float64: the forest mean
        (equal to the engine's ``predict`` bit for bit) and the conditional mean and second
        moment of each forest's predictive distribution at rows ``X`` (cast to float32)."""
        a = self.arrays
        X, order, inverse = _prepare_rows(X, a.n_features, a.n_trees)
        if X.shape[0] == 0:
            empty = np.empty((a.n_forests, 0), dtype=np.float64)
            return empty, empty.copy(), empty.copy()
        n = _check_threads(threads if threads is not None else self.threads)
        tile = tile_rows(X.shape[0], n if n is not None else numba.get_num_threads())
        out = _run(
            walk_kernel("fused"), n, X, order, *_tree_args(a)[:4], a.value, self.moments,
            a.tree_offsets, a.forest_offsets, int(a.tree_depth.max(initial=0)), tile,
        )  # fmt: skip
        if inverse is not None:
            out = tuple(o[:, inverse] for o in out)
        return out

    def predict(self, X: Any, *, threads: int | None = None) -> np.ndarray:
        """The forest mean alone (the first item of :meth:`predict_moments`)."""
        return self.predict_moments(X, threads=threads)[0]


def fuse(compiled: NumbaCompiledForests, moments: Sequence[np.ndarray]) -> FusedForests:
    """The compiled forests with the leaf moments of each: ``moments[r]`` is the ``(n_nodes_r,
    2)`` table of forest ``r`` alone (:attr:`srgpu.forest.predictive.LeafTables.moments` of
    ``leaf_tables([forest_r], ...)``), in the compiled order."""
    a = compiled.arrays
    if len(moments) != a.n_forests:
        raise InputError(
            "one leaf-moment table per forest is needed",
            field="moments",
            value=len(moments),
            expected=f"{a.n_forests} tables",
        )
    fo = a.forest_offsets
    node_starts = a.tree_offsets[fo]
    values = np.empty((a.n_nodes, 2), dtype=np.float64)
    for r, m in enumerate(moments):
        lo, hi = int(node_starts[r]), int(node_starts[r + 1])
        m = np.asarray(m, dtype=np.float64)
        if m.shape != (hi - lo, 2):
            raise InputError(
                "leaf moments do not match the forest's nodes",
                field=f"moments[{r}]",
                value=m.shape,
                expected=f"({hi - lo}, 2)",
            )
        values[lo:hi] = m
    return FusedForests(arrays=a, moments=values, threads=compiled.threads)
