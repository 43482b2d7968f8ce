"""The scikit-learn-style facade: parameters, validation, fitted state."""

from __future__ import annotations

import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from srgpu.estimator import SoilRespirationEnsemble


def test_params_round_trip_and_clone():
    est = SoilRespirationEnsemble(replicates=3, trees=7, sampling="equal")
    assert est.get_params()["trees"] == 7
    twin = clone(est).set_params(seed=4)
    assert twin.get_params()["sampling"] == "equal" and twin.seed == 4 and est.seed != 4


@pytest.mark.parametrize(
    "bad", [{"replicates": 0}, {"sampling": "stratified"}, {"engine": "onnx"}, {"trees": 2.5}]
)
def test_invalid_parameters_are_refused_at_fit(bad, tmp_path):
    with pytest.raises(InvalidParameterError):
        SoilRespirationEnsemble(**bad).fit(out=tmp_path)
    assert not (tmp_path / "ensemble.zarr").exists()


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
