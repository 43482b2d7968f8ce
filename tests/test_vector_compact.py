"""The AVX-512 steps of the exact-quantile kernels (srgpu.forest.vector_compact, and the
partition of srgpu.forest.vector_split in the weight kernels' leaf walk): the same lists and
the same results, bit for bit, as the scalar loops."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from srgpu.forest import predictive as P
from srgpu.forest import vector_split
from srgpu.forest.predictive_kernels import COMPACT_ROOM, _compact_and_clear
from srgpu.forest.vector_compact import compact_and_clear16
from tests.test_fused import _case
from tests.test_leaf_sum import _rows_at_thresholds
from tests.test_vector_split import needs_avx512


@njit(cache=False)
def _scalar(w, y, ys, ws, ids):
    return _compact_and_clear(w, y, ys, ws, ids)


@njit(cache=False)
def _vector(w, y, ys, ws, ids):
    return compact_and_clear16(w, y, ys, ws, ids)


def _weights(n: int, density: float, rng) -> np.ndarray:
    w = np.where(rng.random(n) < density, rng.random(n), 0.0)
    w[rng.random(n) < 0.05] = -0.0  # a negative zero is zero in both loops
    return w


@needs_avx512
@pytest.mark.parametrize("n", [*range(0, 35), 63, 64, 65, 2945])
@pytest.mark.parametrize("density", [0.0, 0.07, 0.5, 1.0])
def test_compaction_equals_the_scalar_loop(n, density):
    """Every tail length (n mod 16), empty and full blocks: the same count, weights and values
    in the same order; the weights are all cleared; nothing is written past the lists' ``k``
    entries, nor past the room the vector stores of record numbers need."""
    rng = np.random.default_rng(n * 7 + int(density * 100))
    w = _weights(n, density, rng)
    if n > 5 and density > 0:
        w[3] = np.nan  # counted as nonzero, as `w != 0.0` counts it
    y = np.sort(rng.normal(size=n))
    got, want = {}, {}
    for fn, out in ((_vector, got), (_scalar, want)):
        wc = w.copy()
        ys = np.full(n + 4, 7.0)
        ws = np.full(n + 4, 7.0)
        ids = np.full(n + COMPACT_ROOM + 4, -7, dtype=np.int32)
        k = fn(wc, y, ys, ws, ids)
        out.update(k=k, ws=ws[:k], ys=ys[:k], w=wc, tail=(ys[k:], ws[k:]),
                   ids_tail=ids[n + COMPACT_ROOM :])  # fmt: skip
    assert got["k"] == want["k"] == np.sum((w != 0) | np.isnan(w))
    np.testing.assert_array_equal(got["ws"], want["ws"])
    np.testing.assert_array_equal(got["ys"], want["ys"])
    assert not np.any(got["w"]) and not np.any(want["w"])
    for out in (got, want):
        for part in out["tail"]:
            np.testing.assert_array_equal(part, 7.0)
        np.testing.assert_array_equal(out["ids_tail"], -7)


@needs_avx512
@pytest.mark.parametrize("membership", ["all", "inbag", "oob"])
def test_weight_kernels_vector_and_scalar_equal(monkeypatch, membership):
    """Exact quantiles and MAD, the run's weight accumulation, and quantregForest's leaf
    values, with the AVX-512 partition and compaction and with the scalar ones: the same bits,
    on 3000 NaN-holding rows (500 of them at the split thresholds: the Morton-ordered path)
    and on 40 rows in their given order."""
    forests, _, joint, rows = _case(
        n_records=400, p=5, trees=50, n_rows=3000, seed=9, membership=membership, nan=True
    )
    rows[1000:1500] = _rows_at_thresholds(forests, 5, np.random.default_rng(10))[:500]
    seeds = [np.random.SeedSequence(3, spawn_key=(r,)) for r in range(3)]
    got = {}
    for vector in (True, False):
        monkeypatch.setattr(vector_split, "usable", lambda v=vector: v)
        out = []
        for q in (rows, rows[:40]):
            s = P.predictive_summary(joint, q, threads=1)
            out += [s.quantiles, s.mad]
            acc = P.WeightAccumulator.zeros(n_rows=q.shape[0], n_records=joint.n_records)
            acc.add(joint, q, threads=1)
            out += [acc.weights, acc.totals, acc.counts]
            if membership != "oob":
                lv = P.qrf_sample_leaf_values(joint, seeds=seeds)
                mean, sd, summary = P.qrf_sample_summary(joint, q, leaf_values=lv)
                out += [mean, sd, summary.quantiles]
        got[vector] = out
    for v, s in zip(got[True], got[False], strict=True):
        np.testing.assert_array_equal(v, s)
    assert np.isfinite(got[True][0]).mean() > 0.5  # quantiles computed, not all NaN
    assert np.count_nonzero(got[True][2]) > 1000  # weights were accumulated
