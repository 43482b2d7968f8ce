"""Calibration of the predictive distribution on the selection's random and grouped folds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from srgpu.analysis.selection import study_groups, validation_schemes
from srgpu.analysis.selection_calibration import (
    calibrate_folds,
    calibrated_validation,
    calibration_table,
)
from srgpu.analysis.selection_workflow import prepare_selection
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.run.replicate import score_folds

FOREST = ForestConfig(trees=10)


def _line(n: int = 120):
    x = np.arange(n, dtype=np.float32)[:, None]
    return x, x[:, 0].astype(np.float64)


def test_heldout_values_above_every_training_value_are_never_covered():
    # y = x; the fold trains on the lower half and holds out the upper half: every held-out
    # y exceeds every training y, so no interval covers it, every PIT is 1 (last bin) and the
    # CRPS is at least the gap to the largest training value.
    X, y = _line()
    train, test = np.arange(60), np.arange(60, 120)
    scores, (cal,) = calibrate_folds(X, y, [(train, test)], forest=FOREST, seed=3, flux="SR")
    assert cal["coverage"] == {"0.5": 0.0, "0.9": 0.0, "0.95": 0.0}
    assert cal["pit_hist"][-1] == 1.0 and sum(cal["pit_hist"][:-1]) == 0.0
    # each held-out y lies above the whole distribution: CRPS(y) = y - E X - E|X - X'| / 2,
    # with E X <= 59 and E|X - X'| / 2 <= 59 / 2, so CRPS >= y - 59 - 29.5 (mean over 60..119)
    assert cal["crps"] >= np.mean(y[test]) - 59.0 - 29.5
    assert cal["n"] == 60 and scores.shape == (1, 2)


def test_constant_target_is_covered_with_zero_crps():
    X, _ = _line()
    y = np.full(X.shape[0], 250.0)
    folds = [(np.arange(0, 120, 2), np.arange(1, 120, 2))]
    _, (cal,) = calibrate_folds(X, y, folds, forest=FOREST, seed=3, flux="SR")
    assert cal["coverage"] == {"0.5": 1.0, "0.9": 1.0, "0.95": 1.0}
    assert cal["crps"] == 0.0
    # mid-PIT of a point mass at y: 1/2 (up to rounding of the summed weights: bin 4 or 5)
    assert cal["pit_hist"][4] + cal["pit_hist"][5] == 1.0


def test_fold_scores_are_the_honest_validations():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = 100 + 30 * X[:, 0] + rng.normal(0, 5, 200)
    folds = [(np.arange(40, 200), np.arange(40)), (np.arange(160), np.arange(160, 200))]
    kw = dict(forest=FOREST, seed=11, flux="HR")
    scores, cals = calibrate_folds(X, y, folds, **kw)
    np.testing.assert_array_equal(scores, score_folds(X, y, folds, **kw))
    assert [c["n"] for c in cals] == [40, 40]
    table, calibration = calibrated_validation(
        X, y, schemes={"a": folds, "b": folds[::-1]}, reference="a", **kw
    )
    assert set(calibration) == {"a", "b"} and calibration["a"]["replicates"] == 2
    assert table.set_index("scheme").loc["a", "optimism_r2"] == 0.0
    rows = calibration_table({"best": calibration})
    assert rows["scheme"].tolist() == ["a", "b"] and (rows["folds"] == 2).all()
    assert rows.loc[0, "cov95"] == pytest.approx(np.mean([c["coverage"]["0.95"] for c in cals]))


def test_grouped_folds_share_no_study_or_block_with_their_training_records():
    cfg = EnsembleConfig(forest=ForestConfig(trees=4), seed=5)
    setup = prepare_selection(cfg, flux="SR", candidates=["MAT", "Prec"], repeats=1)
    table = setup.inputs.fluxes["SR"].table
    schemes = validation_schemes(table, setup.problem.splits, n_folds=5, seed=5)
    studies = study_groups(table)
    assert np.unique(studies).size < len(table)  # the demo's studies hold several records
    for train, test in schemes["study 5-fold"]:
        assert np.intersect1d(studies[train], studies[test]).size == 0
    # the random folds, by contrast, put records of one study on both sides
    shared = [np.intersect1d(studies[tr], studies[te]).size for tr, te in schemes["random 5-fold"]]
    assert min(shared) > 0


def test_cli_select_writes_the_calibration(tmp_path):
    from typer.testing import CliRunner

    from srgpu.cli import app

    out = tmp_path / "sel"
    args = ["select", "--flux", "SR", "--candidates", "MAT,Prec", "--repeats", "2"]
    args += ["--trees", "5", "--threads", "1", "--folds", "3", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "selection_SR.json").read_text())
    cal = meta["calibration"]
    assert cal["units"]["crps"] == "g C m-2 yr-1"
    assert cal["grouped_schemes"] == ["study 3-fold", "5deg-block 3-fold"]
    assert set(cal["sets"]) == {"best", "paper"}
    for by_scheme in cal["sets"].values():
        assert set(by_scheme) == {
            "replicate 80/20",
            "random 3-fold",
            "study 3-fold",
            "5deg-block 3-fold",
        }
        for scheme, s in by_scheme.items():
            assert set(s["coverage"]) == {"0.5", "0.9", "0.95"}
            assert len(s["pit_hist"]["mean"]) == 10
            assert sum(s["pit_hist"]["mean"]) == pytest.approx(1.0)
            assert s["crps"]["mean"] > 0
            assert s["replicates"] == (2 if scheme == "replicate 80/20" else 3)
            assert 0.0 <= s["coverage"]["0.5"]["mean"] <= s["coverage"]["0.95"]["mean"] <= 1.0
    rows = pd.read_csv(out / "calibration_SR.csv")
    assert len(rows) == 8 and set(rows["set"]) == {"best", "paper"}
    assert "CRPS (g C m-2 yr-1)" in res.output and "calibration:" in res.output
    # --no-calibrate leaves it out
    res = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "b"), "--no-calibrate"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "selection_SR.json").read_text())["calibration"] is None
    assert not (tmp_path / "b" / "calibration_SR.csv").exists()
