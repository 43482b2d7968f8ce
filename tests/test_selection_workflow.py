"""``srgpu select``'s workflow as library calls (prepare -> run -> write) on the demo world."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from srgpu.analysis.selection import find_rank
from srgpu.analysis.selection_workflow import prepare_selection, run_selection
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.errors import ConfigError

CFG = EnsembleConfig(forest=ForestConfig(trees=4), seed=5)


def test_run_selection_writes_what_it_returns(tmp_path):
    setup = prepare_selection(CFG, flux="SR", candidates=["MAT", "Prec", "LAI_GS"], repeats=2)
    assert setup.n_subsets == 7 and len(setup.problem.splits) == 2
    assert setup.paper_set == ["MAT", "Prec", "LAI_GS"]
    result = run_selection(setup, threads=1, folds=3)
    assert result.paper_rank == find_rank(result.table, setup.paper_set)
    paths = result.write(tmp_path)
    table = pd.read_csv(paths["table"])
    assert table["subset"].tolist() == result.table["subset"].tolist()
    meta = json.loads(paths["meta"].read_text())
    assert meta["paper_rank"] == result.paper_rank and meta["subsets"] == 7
    assert meta["repeats"] == 2 and meta["trees"] == 4
    val = pd.read_csv(paths["validation"])
    assert set(val["set"]) == {"best", "paper"}
    assert set(val["scheme"]) == {
        "replicate 80/20",
        "random 3-fold",
        "study 3-fold",
        "5deg-block 3-fold",
    }


def test_selection_refuses_bad_options():
    with pytest.raises(ConfigError):
        prepare_selection(CFG, flux="AR", candidates=["MAT"])
    setup = prepare_selection(CFG, flux="HR", candidates=["MAT"], repeats=1)
    with pytest.raises(ConfigError):
        run_selection(setup, workers=0)
