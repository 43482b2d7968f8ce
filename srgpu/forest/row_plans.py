"""The numba kernels' walk order of a set of prediction rows, computed once per run.

Before a large call the numba kernels (:mod:`srgpu.forest.numba_engine`, the predictive ones)
reduce the rows to the distinct ones (:func:`distinct_rows`) and sort them along a Morton curve
(:func:`row_order`): ~25 ms for the real 0.5 deg grid (53 806 rows), a pure function of the
rows. An ensemble predicts the same grid rows for every batch and
both fluxes (SR and HR share their predictors in the README's sets): :class:`RowPlans`, held by
the caller for one run, computes each distinct row set's plan once and hands it out again.
Plans are looked up by the rows' content (shape, dtype and a BLAKE2 digest of the bytes), so
equal rows get the same plan, and the kernel's result is the one it computes without a plan,
bit for bit (only the order of work is the plan's).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, boundscheck=False)
def _morton_codes(X, edges, bits):
    """Z-order key of each row of ``X``: feature ``f``'s quantile bin (the number of the
    ``2**bits - 1`` sorted ``edges[f]`` not above the value, by a branch-free binary search; NaN:
    the last bin) for the first ``edges.shape[0]`` features, their ``bits`` bits interleaved most
    significant first, feature 0 first: bit ``b`` of feature ``f``'s bin lands at bit
    ``b * use + use - 1 - f`` of the key (``use`` features). Feature by feature, the bin's bits
    spread ``use`` apart by one lookup in a table (on the real grid's 53 806 rows 8.2 ms
    against 10.7 ms row by row with a loop over the key's bits; the same keys)."""
    n = X.shape[0]
    use = edges.shape[0]
    spread = np.zeros(1 << bits, dtype=np.uint64)
    for v in range(1 << bits):
        for b in range(bits):
            if (v >> b) & 1:
                spread[v] |= np.uint64(1) << np.uint64(b * use)
    out = np.zeros(n, dtype=np.uint64)
    one = np.uint64(1)
    last = np.uint64((1 << bits) - 1)
    for f in range(use):
        e = edges[f].copy()
        shift = np.uint64(use - 1 - f)
        for i in range(n):
            v = X[i, f]
            pos = np.uint64(0)
            step = np.uint64(1 << (bits - 1))
            while step > np.uint64(0):
                pos += step * np.uint64(e[pos + step - one] <= v)
                step >>= one
            out[i] |= spread[pos if v == v else last] << shift
    return out


def morton_keys(X: np.ndarray) -> np.ndarray:
    """The key of each row of ``X`` (n, p) that :func:`row_order` sorts by.

    Each feature is replaced by its quantile bin (``bits = min(64 // p, 8)`` bits; edges from a
    sorted strided sample of at most 8192 rows, so the order does not depend on units or skew;
    NaN goes to the last bin), and the bins are interleaved into a Morton (Z-order) key (at most
    the first 64 features take part). Equal rows get equal keys."""
    n, p = X.shape
    use = min(p, 64)
    bits = max(min(64 // use, 8), 1)
    levels = 1 << bits
    sample = np.sort(X[:: max(n // 8192, 1), :use], axis=0)  # NaN sorts last
    edges = np.ascontiguousarray(sample[(np.arange(1, levels) * sample.shape[0]) // levels].T)
    return _morton_codes(X, edges, bits)


def row_order(X: np.ndarray) -> np.ndarray:
    """A permutation of the rows of ``X`` (n, p) that keeps neighbours in predictor space close:
    the rows sorted by :func:`morton_keys`. Stable, so ties keep their input order;
    deterministic."""
    return np.argsort(morton_keys(X), kind="stable")


DISTINCT_MIN_SHARE = 0.05
"""Rows are deduplicated before the walk when at least this share of them are repeats."""


def few_repeats(n_distinct: int, n_rows: int) -> bool:
    """Whether ``n_distinct`` distinct rows of ``n_rows`` leave fewer than
    :data:`DISTINCT_MIN_SHARE` of them repeats: then rows are not deduplicated."""
    return n_distinct > (1.0 - DISTINCT_MIN_SHARE) * n_rows


def distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``(U, inverse)`` with ``U[inverse] == X`` (rows compared byte for byte, so equal rows get
    equal predictions by construction), or ``(X, None)`` when fewer than
    :data:`DISTINCT_MIN_SHARE` of the rows are repeats. A grid whose predictors repeat (a static
    field tiled over the years of a yearly grid) is then walked once per distinct row."""
    X = np.ascontiguousarray(X)
    keys = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    if few_repeats(first.shape[0], X.shape[0]):
        return X, None
    return np.ascontiguousarray(X[first]), inverse.astype(np.int64).ravel()


@dataclass(frozen=True, eq=False)
class RowPlan:
    """``rows`` (the distinct rows, float32, C order), ``inverse`` (``rows[inverse]`` are the
    given rows; ``None``: the given rows, all kept) and ``order`` (the walk order of ``rows``)."""

    rows: np.ndarray
    inverse: np.ndarray | None
    order: np.ndarray


def plan_rows(X: np.ndarray) -> RowPlan:
    """The plan of ``X`` (float32, C order), as the numba engine computes it per call: the
    distinct rows (:func:`distinct_rows`) in their :func:`row_order`. The rows' Morton keys
    come first: equal rows have equal keys, so where the keys alone leave too few repeats
    possible (:func:`few_repeats`) the rows are not compared at all (on the
    real grid, 53 806 rows, that saves the ~12 ms of ``distinct_rows``); the plan is the same."""
    keys = morton_keys(X)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    n_keys = int(np.count_nonzero(sorted_keys[1:] != sorted_keys[:-1])) + 1 if keys.size else 0
    if few_repeats(n_keys, X.shape[0]):
        return RowPlan(rows=X, inverse=None, order=order)
    rows, inverse = distinct_rows(X)
    return RowPlan(rows=rows, inverse=inverse, order=order if inverse is None else row_order(rows))


class RowPlans:
    """A cache of :class:`RowPlan` by the rows' content, for one caller (e.g. one ensemble
    run); pass it to :meth:`NumbaCompiledForests.predict
    <srgpu.forest.numba_engine.NumbaCompiledForests.predict>` as ``plans``. Plans are kept up to
    ``max_bytes`` in all (the real grid's: ~2 MB); past that, further plans are computed each
    time, not kept."""

    def __init__(self, *, max_bytes: int = 64 << 20) -> None:
        self._plans: dict[tuple, RowPlan] = {}
        self.max_bytes = int(max_bytes)
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._plans)

    def get(self, X: np.ndarray) -> RowPlan:
        """The plan of ``X`` (float32, C order): computed on the first call for these rows,
        the same object afterwards."""
        X = np.ascontiguousarray(X)
        key = (X.shape, X.dtype.str, hashlib.blake2b(X.reshape(-1).view(np.uint8)).digest())
        plan = self._plans.get(key)
        if plan is None:
            plan = plan_rows(X)
            size = sum(a.nbytes for a in (plan.rows, plan.order, plan.inverse) if a is not None)
            if self.nbytes + size <= self.max_bytes:
                self._plans[key] = plan
                self.nbytes += size
        return plan
