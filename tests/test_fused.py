"""The fused walk (srgpu.forest.fused): the forest mean equal to the numba engine's bit for bit,
the predictive moments equal to predictive_moments', in one walk of each tree."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.config import ForestConfig
from srgpu.errors import InputError
from srgpu.forest import predictive as P
from srgpu.forest import vector_split
from srgpu.forest.fused import fuse
from srgpu.forest.numba_engine import NumbaEngine
from srgpu.forest.train import fit_forest
from tests.test_leaf_sum import _rows_at_thresholds
from tests.test_vector_split import needs_avx512

MOMENTS_RTOL = 1e-13
"""Tolerance of the fused moments against :func:`predictive_moments`. Both add the same leaf
moments per row in tree order and divide by the tree count, so they are expected to be equal
bit for bit (measured: largest relative difference 0 on these cases); 1e-13 leaves room for a
compiler that orders the three accumulators' adds differently, nothing more."""


def _case(n_records, p, trees, n_rows, seed, membership="all", nan=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_records, p)).astype(np.float32)
    y = 600 + 150 * X[:, 0] + 80 * np.sin(2 * X[:, 1]) + rng.normal(scale=60, size=n_records)
    fc = ForestConfig(trees=trees)
    forests, train, inbag = [], [], []
    for r in range(3):
        tr = np.sort(rng.choice(n_records, int(0.8 * n_records), replace=False))
        s = np.random.SeedSequence(seed, spawn_key=(r,))
        forests.append(fit_forest(X[tr], y[tr], forest=fc, seed=s))
        train.append(tr)
        inbag.append(P.inbag_counts(n_train=tr.size, forest=fc, seed=s))
    rows = rng.normal(size=(n_rows, p)).astype(np.float32)
    if nan:
        rows[::37, 1] = np.nan
    if n_rows > 400:
        rows[n_rows // 2 : n_rows // 2 + 200] = rows[:200]  # repeats: the deduplicated path
    per_forest = [
        P.leaf_tables(
            [f], X=X, y=y, train_index=[tr], membership=membership,
            inbag=None if membership == "all" else [ib],
        )
        for f, tr, ib in zip(forests, train, inbag, strict=True)
    ]  # fmt: skip
    joint = P.leaf_tables(
        forests, X=X, y=y, train_index=train, membership=membership,
        inbag=None if membership == "all" else inbag,
    )  # fmt: skip
    return forests, per_forest, joint, rows


@pytest.mark.parametrize(
    "case",
    [
        dict(n_records=60, p=3, trees=7, n_rows=40, seed=1),  # small: rows in the given order
        dict(n_records=400, p=5, trees=50, n_rows=3000, seed=2, nan=True),  # Morton, NaN
        dict(n_records=300, p=4, trees=45, n_rows=2500, seed=3, membership="inbag"),
    ],
)
def test_fused_mean_is_the_engine_and_moments_are_predictive_moments(case):
    forests, per_forest, joint, rows = _case(**case)
    compiled = NumbaEngine(threads=1).compile(forests)
    fused = fuse(compiled, [t.moments for t in per_forest])
    mean, m1, m2 = fused.predict_moments(rows)
    np.testing.assert_array_equal(mean, compiled.predict(rows))  # bit for bit
    np.testing.assert_array_equal(fused.predict(rows), mean)
    want = P.predictive_moments(joint, rows)
    np.testing.assert_allclose(m1, want.mean, rtol=MOMENTS_RTOL, atol=0)
    np.testing.assert_allclose(m2, want.second, rtol=MOMENTS_RTOL, atol=0)
    for r, t in enumerate(per_forest):  # each forest's own tables, as the run builds them
        alone = P.predictive_moments(t, rows)
        np.testing.assert_allclose(m1[r], alone.mean[0], rtol=MOMENTS_RTOL, atol=0)
        np.testing.assert_allclose(m2[r], alone.second[0], rtol=MOMENTS_RTOL, atol=0)


@needs_avx512
@pytest.mark.parametrize("membership", ["all", "oob"])
def test_vector_partition_walks_equal_the_scalar_ones(monkeypatch, membership):
    """The fused walk, the moments walk and the out-of-bag walk (fused kernel with the
    "contributes" indicator) with the AVX-512 partition give the scalar partition's results bit
    for bit: on 500 repeated, NaN-holding rows at the split thresholds (the ordered path:
    3 x 50 trees is over ORDER_MIN_TREES) and on 40 rows in their given order."""
    forests, per_forest, joint, rows = _case(
        n_records=400, p=5, trees=50, n_rows=3000, seed=5, membership=membership, nan=True
    )
    rows[1000:1500] = _rows_at_thresholds(forests, 5, np.random.default_rng(6))[:500]
    compiled = NumbaEngine(threads=1).compile(forests)
    fused = fuse(compiled, [t.moments for t in per_forest])
    got = {}
    for vector in (True, False):
        monkeypatch.setattr(vector_split, "usable", lambda v=vector: v)
        got[vector] = [
            (*fused.predict_moments(q), *_pair(P.predictive_moments(joint, q)))
            for q in (rows, rows[:40])
        ]
    for v, s in zip(got[True], got[False], strict=True):
        for a, b in zip(v, s, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got[True][0][0], compiled.predict(rows))
    assert np.isfinite(got[True][0][3]).mean() > 0.5  # moments computed, not all NaN


def _pair(moments):
    return moments.mean, moments.second


def test_fuse_checks_alignment():
    forests, per_forest, _, rows = _case(n_records=60, p=3, trees=5, n_rows=10, seed=4)
    compiled = NumbaEngine().compile(forests)
    with pytest.raises(InputError):
        fuse(compiled, [t.moments for t in per_forest[:2]])
    with pytest.raises(InputError):
        fuse(compiled, [per_forest[1].moments, per_forest[0].moments, per_forest[2].moments])
    empty = fuse(compiled, [t.moments for t in per_forest]).predict_moments(rows[:0])
    assert [e.shape for e in empty] == [(3, 0)] * 3


def test_run_batch_uses_the_fused_walk_and_gives_the_separate_walks_rows():
    """In a run (numba engine, predictive = "moments") the grid's moments come from the
    inference walk: the batch carries fused forests, and its ``pred_replicate_*`` rows equal
    those of the separate moments walk (:func:`predictive_batch` without ``leaf_moments``) bit
    for bit, through ``run_batch`` and through the distributed path's tasks (``predict_tile``
    on tiles that split the years, ``assemble_batch``)."""
    from srgpu.config import EnsembleConfig
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.batch import (
        assemble_batch,
        batch_specs,
        predict_tile,
        run_batch,
        tile_ranges,
        train_and_compile,
        train_batch,
    )
    from srgpu.run.predictive import predictive_batch

    cfg = EnsembleConfig(replicates=2, batch_size=2, forest=ForestConfig(trees=20))
    inputs = prepare_inputs(cfg)
    spec = batch_specs(2, 2)[0]
    compiled = train_and_compile(spec, inputs, cfg)
    assert set(compiled.fused) == {"SR", "HR"}
    for f in ("SR", "HR"):  # the fused walk's mean is the compiled engine's
        rows = inputs.grid_X[f][:5000]
        np.testing.assert_array_equal(
            compiled.fused[f].predict(rows), compiled.compiled[f].predict(rows)
        )
    want, _ = predictive_batch(train_batch(spec, inputs, cfg), inputs)
    serial = run_batch(spec, inputs, cfg)
    tile = inputs.n_cells // 3 + 7  # tiles that end inside a year
    parts = [predict_tile(compiled, inputs, r0, r1) for r0, r1 in tile_ranges(inputs.n_rows, tile)]
    distributed = assemble_batch(compiled, parts, inputs)
    for got in (serial, distributed):
        assert list(got.extra) == list(want)
        for name in want:
            np.testing.assert_array_equal(got.extra[name], want[name], err_msg=name)
    for f in serial.maps:
        np.testing.assert_array_equal(distributed.maps[f], serial.maps[f])
