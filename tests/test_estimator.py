"""The scikit-learn-style facade: parameters, validation, fitted state."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from srgpu.errors import ConfigError
from srgpu.estimator import SoilRespirationEnsemble


def test_params_round_trip_and_clone():
    est = SoilRespirationEnsemble(replicates=3, trees=7, sampling="equal")
    assert est.get_params()["trees"] == 7
    twin = clone(est).set_params(seed=4)
    assert twin.get_params()["sampling"] == "equal" and twin.seed == 4 and est.seed != 4


@pytest.mark.parametrize(
    "bad",
    [
        {"replicates": 0},
        {"sampling": "stratified"},
        {"engine": "onnx"},
        {"trees": 2.5},
        {"trainer": "xgboost"},
        {"train_device": "tpu"},
        {"predict_device": "npu"},
    ],
)
def test_invalid_parameters_are_refused_at_fit(bad, tmp_path):
    with pytest.raises(InvalidParameterError):
        SoilRespirationEnsemble(**bad).fit(out=tmp_path)
    assert not (tmp_path / "ensemble.zarr").exists()


@pytest.mark.parametrize(
    "pair",
    [
        {"train_device": "gpu", "trainer": "sklearn"},
        {"train_device": "gpu", "trainer": "numba"},
        {"train_device": "cpu", "trainer": "cuml"},
        {"predict_device": "gpu", "engine": "numba"},
        {"predict_device": "gpu", "engine": "sklearn"},
    ],
)
def test_impossible_device_pairs_are_refused_at_fit(pair, tmp_path):
    """Each parameter is valid alone; the pair cannot run: a ConfigError naming both keys."""
    stage = "train" if "trainer" in pair else "predict"
    impl = "trainer" if stage == "train" else "engine"
    with pytest.raises(ConfigError) as info:
        SoilRespirationEnsemble(**pair).fit(out=tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith("SoilRespirationEnsemble: ")
    assert f"{stage}.{impl} = {pair[impl]!r}" in msg
    assert f"{stage}.device = {pair[f'{stage}_device']!r}" in msg
    assert not (tmp_path / "out").exists()


def test_device_constraints_come_from_the_table():
    from sklearn.utils._param_validation import StrOptions

    from srgpu.config import DEVICES, ENGINES, PARAMETERS, TRAINERS

    cons = SoilRespirationEnsemble._parameter_constraints
    for name, key, choices in (
        ("train_device", "train.device", DEVICES),
        ("trainer", "train.trainer", TRAINERS),
        ("predict_device", "predict.device", DEVICES),
        ("engine", "predict.engine", ENGINES),
    ):
        (c,) = cons[name]
        assert isinstance(c, StrOptions) and c.options == set(PARAMETERS[key].choices)
        assert c.options == set(choices)
    assert "cuml" in TRAINERS and "nvforest" in ENGINES
    defaults = SoilRespirationEnsemble().get_params()
    assert [defaults[k] for k in ("train_device", "trainer", "predict_device", "engine")] == [
        "auto"
    ] * 4


def test_fit_demo_world(tmp_path):
    est = SoilRespirationEnsemble(replicates=2, trees=10, engine="sklearn")
    with pytest.raises(NotFittedError):
        est.open_store()
    est.fit(out=tmp_path)
    assert est.config_.forest.trees == 10 and est.config_.is_demo
    assert list(est.totals_.index) == ["SR", "HR", "AR"]
    sr, hr, ar = (est.totals_.loc[f, "mean"] for f in ("SR", "HR", "AR"))
    assert ar == pytest.approx(sr - hr)
    assert est.open_store().sizes["replicate"] == 2
