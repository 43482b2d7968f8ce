"""The numba engine's walk order of a set of prediction rows, computed once per run.

Before a large call the numba kernel (:mod:`srgpu.forest.numba_engine`) reduces the rows to the
distinct ones (:func:`~srgpu.forest.numba_engine.distinct_rows`) and sorts them along a Morton
curve (:func:`~srgpu.forest.numba_engine.row_order`): ~40 ms for the real 0.5 deg grid (53 806
rows), a pure function of the rows. An ensemble predicts the same grid rows for every batch and
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


@dataclass(frozen=True, eq=False)
class RowPlan:
    """``rows`` (the distinct rows, float32, C order), ``inverse`` (``rows[inverse]`` are the
    given rows; ``None``: the given rows, all kept) and ``order`` (the walk order of ``rows``)."""

    rows: np.ndarray
    inverse: np.ndarray | None
    order: np.ndarray


def plan_rows(X: np.ndarray) -> RowPlan:
    """The plan of ``X`` (float32, C order), as the numba engine computes it per call: the
    distinct rows (:func:`~srgpu.forest.numba_engine.distinct_rows`) in their
    :func:`~srgpu.forest.numba_engine.row_order`. The rows' Morton keys come first: equal rows
    have equal keys, so where the keys alone leave too few repeats possible
    (:func:`~srgpu.forest.numba_engine.few_repeats`) the rows are not compared at all (on the
    real grid, 53 806 rows, that saves the ~12 ms of ``distinct_rows``); the plan is the same."""
    from srgpu.forest.numba_engine import distinct_rows, few_repeats, morton_keys, row_order

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
