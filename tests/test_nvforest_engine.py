"""nvForest engine: known answers against scikit-learn on CPU (``device="cpu"``)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from srgpu.errors import BackendError, ConfigError, InputError
from srgpu.forest.nvforest_engine import NvForestEngine
from srgpu.forest.protocol import CompiledForests, InferenceEngine
from tests import has_gpu, requires_gpu, requires_nvforest

N_FEATURES = 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20210505)
    X = rng.uniform(-1, 1, size=(300, N_FEATURES))
    # positive, SR-like magnitudes (g C m-2 yr-1) so that relative differences are meaningful
    y = 800 + 300 * X[:, 0] + 100 * np.sin(3 * X[:, 1]) + rng.normal(scale=30, size=300)
    Xt = rng.uniform(-1.5, 1.5, size=(2000, N_FEATURES))
    return X, y, Xt


@pytest.fixture(scope="module")
def forests(data):
    X, y, _ = data
    return [
        RandomForestRegressor(
            n_estimators=30, min_samples_split=6, max_features=1 / 3, random_state=seed
        ).fit(X, y)
        for seed in range(3)
    ]


def _sklearn_reference(forests, Xt):
    X32 = Xt.astype(np.float32)  # scikit-learn casts X to float32 before the tree walk
    return np.stack([f.predict(X32) for f in forests])


def test_protocol_and_validation():
    engine = NvForestEngine()
    assert isinstance(engine, InferenceEngine)
    assert engine.name == "nvforest"
    with pytest.raises(ConfigError, match="device"):
        NvForestEngine(device="tpu")
    with pytest.raises(ConfigError, match="precision"):
        NvForestEngine(precision="half")
    with pytest.raises(InputError, match="no forests"):
        engine.compile([])
    with pytest.raises(ConfigError, match="not a fitted"):
        engine.compile([RandomForestRegressor()])


def test_without_nvforest_raises_backend_error(forests, monkeypatch):
    """Runs whether or not nvforest is installed (CI installs it): a None entry in
    sys.modules makes ``import nvforest`` raise ImportError, as on a machine without it."""
    import sys

    monkeypatch.setitem(sys.modules, "nvforest", None)
    with pytest.raises(BackendError) as e:
        NvForestEngine().compile(forests)
    assert "the nvforest engine needs nvforest-cu13 (the [gpu] or [nvforest] extra)" in str(e.value)


@requires_nvforest
def test_single_precision_matches_sklearn(forests, data):
    _, _, Xt = data
    compiled = NvForestEngine(device="cpu", precision="single").compile(forests)
    assert isinstance(compiled, CompiledForests)
    assert (compiled.n_replicates, compiled.n_features) == (3, N_FEATURES)
    pred = compiled.predict(Xt)
    assert isinstance(pred, np.ndarray)
    assert pred.shape == (3, 2000) and pred.dtype == np.float32
    ref = _sklearn_reference(forests, Xt)
    # predict is the MEAN over trees (no post-processing). Observed with nvforest-cu13 26.10
    # on CPU, this data: max relative difference 3.8e-7 (float32 thresholds, leaves, tree sum).
    np.testing.assert_allclose(pred, ref, rtol=1e-5)


@requires_nvforest
def test_double_precision_equals_sklearn(forests, data):
    _, _, Xt = data
    pred = NvForestEngine(precision="double").compile(forests).predict(Xt)
    assert pred.dtype == np.float64
    # observed: bitwise equal (max difference 0.0)
    np.testing.assert_allclose(pred, _sklearn_reference(forests, Xt), rtol=1e-12, atol=0)


@requires_nvforest
def test_predict_shapes_and_errors(forests, data):
    _, _, Xt = data
    compiled = NvForestEngine().compile(forests[:1])
    assert compiled.predict(Xt[:0]).shape == (1, 0)
    one = compiled.predict(Xt[:1])
    assert one.shape == (1, 1)
    with pytest.raises(InputError, match="n_rows, 5"):
        compiled.predict(Xt[:, :4])
    # replicate order is kept: forest i gives row i
    both = NvForestEngine().compile(forests[::-1]).predict(Xt[:50])
    np.testing.assert_allclose(both[::-1], _sklearn_reference(forests, Xt[:50]), rtol=1e-5)


@requires_nvforest
def test_mixed_feature_counts_rejected(forests, data):
    X, y, _ = data
    other = RandomForestRegressor(n_estimators=2, random_state=0).fit(X[:, :3], y)
    with pytest.raises(InputError, match="share their predictors"):
        NvForestEngine().compile([forests[0], other])


@requires_nvforest
@pytest.mark.skipif(has_gpu, reason="this machine has a GPU")
def test_gpu_device_without_gpu_is_backend_error(forests):
    with pytest.raises(BackendError, match="nvforest on GPU"):
        NvForestEngine(device="gpu").compile(forests[:1])


@pytest.mark.gpu
@requires_gpu
@requires_nvforest
def test_gpu_matches_sklearn_and_stays_on_device(forests, data):
    import cupy

    _, _, Xt = data
    compiled = NvForestEngine(device="gpu").compile(forests)
    pred = compiled.predict(cupy.asarray(Xt))
    assert isinstance(pred, cupy.ndarray) and pred.shape == (3, 2000)
    np.testing.assert_allclose(cupy.asnumpy(pred), _sklearn_reference(forests, Xt), rtol=1e-5)
    assert isinstance(compiled.predict(Xt), cupy.ndarray)  # numpy in, cupy out
