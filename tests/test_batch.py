"""Streaming statistics of a batch, written once against the array API (numpy, strict)."""

from __future__ import annotations

import numpy as np
import pytest

from srgpu.run.batch import array_namespace_for, batch_specs, stream_statistics


def _case(seed=0, b=3, n_cells=7, n_years=4):
    rng = np.random.default_rng(seed)
    preds = {f: rng.uniform(100, 900, size=(b, n_years * n_cells)) for f in ("SR", "HR")}
    weight = rng.uniform(1e8, 1e9, size=n_cells)
    return preds, weight, n_cells, n_years


def _predictor(full, xp):
    # the "engine": each row holds its own index; returns the (b, n) predictions of those rows
    def predict(rows):
        idx = np.from_dlpack(rows)[:, 0].astype(int)
        return xp.asarray(full[:, idx])

    return predict


@pytest.mark.parametrize("tile_rows", [1, 5, 7, 11, 1000])
@pytest.mark.parametrize("namespace", ["numpy", "array_api_strict"])
def test_stream_statistics_known_answer(tile_rows, namespace):
    if namespace == "numpy":
        xp = array_namespace_for("cpu")
    else:
        xp = pytest.importorskip("array_api_strict")
    preds, weight, n_cells, n_years = _case()
    n_rows = n_cells * n_years
    rows = {f: xp.asarray(np.arange(n_rows, dtype=np.float64)[:, None]) for f in preds}
    moments, maps, totals = stream_statistics(
        {f: _predictor(p, xp) for f, p in preds.items()},
        rows,
        weight_m2=weight,
        n_cells=n_cells,
        n_years=n_years,
        tile_rows=tile_rows,
        xp=xp,
    )
    full = {**preds, "AR": preds["SR"] - preds["HR"]}
    for f, p in full.items():
        assert moments[f].count == 3
        np.testing.assert_allclose(moments[f].mean, p.mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(moments[f].m2, p.var(axis=0) * 3, rtol=1e-10)
        cube = p.reshape(3, n_years, n_cells)
        np.testing.assert_allclose(maps[f], cube.mean(axis=1), rtol=1e-13)
        np.testing.assert_allclose(totals[f], (cube * weight).sum(axis=2) / 1e15, rtol=1e-13)


def test_batch_specs_cover_replicates_once():
    specs = batch_specs(10, 4)
    assert [(s.start, s.stop) for s in specs] == [(0, 4), (4, 8), (8, 10)]
    assert [s.index for s in specs] == [0, 1, 2]
    assert sum(s.size for s in specs) == 10


def test_train_device_gpu_without_cuml_is_a_backend_error():
    from srgpu.config import EnsembleConfig, ForestConfig, TrainConfig
    from srgpu.data.inputs import prepare_inputs
    from srgpu.errors import BackendError
    from srgpu.run.replicate import train_replicate
    from tests import has_cuml

    if has_cuml:
        pytest.skip("cuML is installed")
    cfg = EnsembleConfig(
        replicates=1, forest=ForestConfig(trees=3), train=TrainConfig(device="gpu")
    )
    assert cfg.train.resolved == ("gpu", "cuml")
    inputs = prepare_inputs(cfg)
    with pytest.raises(BackendError):
        train_replicate(inputs, cfg, 0, "SR")
