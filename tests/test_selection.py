"""Combinatorial selection and honest validation on seeded synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from srgpu.analysis.selection import (
    SelectionProblem,
    all_subsets,
    find_rank,
    group_folds,
    honest_validation,
    random_folds,
    rank_table,
    repeat_splits,
    search_subsets,
    spatial_blocks,
    study_groups,
)
from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.errors import ConfigError, InputError

NAMES = ("MAT", "Prec", "LAI", "PAR")


def _problem(*, n=400, repeats=3, trees=25, seed=7):
    """y depends on MAT and Prec only; LAI and PAR are pure noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, 4)).astype(np.float32)
    y = 400 * X[:, 0] + 300 * np.sin(3 * X[:, 1]) + rng.normal(0, 10, n)
    bins = rng.integers(1, 6, n)
    splits = repeat_splits(
        bins=bins,
        weights={b: 0.2 for b in range(1, 6)},
        train_fraction=0.8,
        seed=seed,
        flux="SR",
        repeats=repeats,
    )
    return SelectionProblem(
        names=NAMES, X=X, y=y, splits=splits, forest=ForestConfig(trees=trees), seed=seed, flux="SR"
    )


@pytest.mark.parametrize(("k", "n"), [(1, 1), (4, 15), (10, 1023)])
def test_all_subsets_count(k, n):
    subsets = all_subsets([f"p{i}" for i in range(k)])
    assert len(subsets) == n
    assert len(set(subsets)) == n
    assert subsets[0] == ("p0",)


def test_search_ranks_the_true_subset_first():
    table = search_subsets(_problem(), threads=2)
    assert len(table) == 15
    assert table.iloc[0]["subset"] == "MAT,Prec"
    assert table.iloc[0]["d_rmse"] == 0.0
    assert (table["rmse"].diff().dropna() >= 0).all()
    assert find_rank(table, ["Prec", "MAT"]) == 1
    # a subset missing a true predictor is far worse
    assert table.set_index("subset").loc["MAT", "rmse"] > 2 * table.iloc[0]["rmse"]


def test_search_is_scheduler_independent():
    from distributed import Client, LocalCluster

    problem = _problem(n=150, repeats=2, trees=5)
    subsets = all_subsets(NAMES[:3])
    threaded = search_subsets(problem, subsets=subsets, threads=1, chunk=2)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        dist = search_subsets(problem, subsets=subsets, client=client, chunk=3)
    pd.testing.assert_frame_equal(threaded, dist)


def test_splits_are_shared_and_reproducible():
    a, b = _problem(), _problem()
    for s, t in zip(a.splits, b.splits, strict=True):
        np.testing.assert_array_equal(s.train, t.train)
    assert not np.array_equal(a.splits[0].train, a.splits[1].train)


def test_rank_table_orders_by_rmse_then_size():
    scores = [np.array([[2.0, 0.5]]), np.array([[1.0, 0.9]]), np.array([[1.0, 0.9]])]
    t = rank_table([("a", "b"), ("a", "b", "c"), ("a",)], scores)
    assert t["subset"].tolist() == ["a", "a,b,c", "a,b"]
    assert t["rank"].tolist() == [1, 2, 3]


def test_unknown_subset_rejected():
    with pytest.raises(ConfigError):
        search_subsets(_problem(), subsets=[("MAT", "RH")])


def test_spatial_blocks():
    b = spatial_blocks(
        np.array([0.1, 4.9, 5.1, 0.1, 0.1]), np.array([0.1, 0.1, 0.1, 360.1, -179.9])
    )
    assert b[0] == b[1] == b[3]
    assert b[2] != b[0]
    assert b[4] != b[0]


def test_group_folds_never_share_a_group():
    groups = np.repeat(np.arange(12), 5)
    for train, test in group_folds(groups, n_folds=5):
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(ConfigError):
        group_folds(np.zeros(5), n_folds=5)


def test_study_groups_fill_missing():
    t = pd.DataFrame({"study": pd.array([3, None, 3, None], dtype="Int64")})
    g = study_groups(t)
    assert g[0] == g[2] and g[1] != g[3] and g[1] != g[0]


def test_grouped_cv_shows_optimism_on_clustered_data():
    """Each study has its own offset and a unique location predictor: random folds let the
    forest look the offset up; folds by study cannot."""
    rng = np.random.default_rng(11)
    n_groups, per = 40, 12
    g = np.repeat(np.arange(n_groups), per)
    loc = rng.uniform(0, 1, n_groups)[g]
    offset = rng.normal(0, 200, n_groups)[g]
    x = rng.uniform(0, 1, g.size)
    y = 100 * x + offset + rng.normal(0, 5, g.size)
    X = np.column_stack([x, loc]).astype(np.float32)
    schemes = {
        "random": random_folds(g.size, n_folds=5, seed=1),
        "study": group_folds(g, n_folds=5),
    }
    t = honest_validation(
        X, y, schemes=schemes, forest=ForestConfig(trees=30), seed=1, flux="SR", reference="random"
    ).set_index("scheme")
    assert t.loc["random", "r2"] > 0.7
    assert t.loc["study", "optimism_r2"] > 0.4
    assert t.loc["study", "optimism_rmse"] > 50
    assert t.loc["random", "optimism_r2"] == 0.0


def test_prepare_candidates_excludes_or_errors(monkeypatch):
    import srgpu.data.inputs
    from srgpu.analysis.selection import prepare_candidates

    def fake_prepare(config):
        names = config.predictors_for("SR")
        for missing in ("RH", "SOC", "RH_GS"):
            if missing in names:
                raise InputError("no source provides it", field=missing)
        return ("inputs", names)

    monkeypatch.setattr(srgpu.data.inputs, "prepare_inputs", fake_prepare)
    cfg = EnsembleConfig()
    inputs, cands = prepare_candidates(
        cfg, candidates=["MAT", "RH", "Prec", "SOC", "RH_GS"], explicit=False
    )
    assert cands.names == ("MAT", "Prec")
    assert set(cands.excluded) == {"RH", "SOC", "RH_GS"}
    assert inputs == ("inputs", ("MAT", "Prec"))
    with pytest.raises(InputError, match="RH"):
        prepare_candidates(cfg, candidates=["MAT", "RH"], explicit=True)
    with pytest.raises(ConfigError):
        prepare_candidates(cfg, candidates=["Foo"], explicit=True)
    with pytest.raises(ConfigError):
        prepare_candidates(cfg, candidates=["RH", "SOC"], explicit=False)


def test_cli_select_demo(tmp_path):
    from typer.testing import CliRunner

    from srgpu.cli import app

    out = tmp_path / "sel"
    res = CliRunner().invoke(
        app,
        [
            "select",
            "--flux",
            "HR",
            "--candidates",
            "MAT,Prec,LAI",
            "--repeats",
            "2",
            "--trees",
            "5",
            "--threads",
            "2",
            "--folds",
            "3",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "selection_HR.csv")
    assert len(table) == 7 and table["rank"].tolist() == list(range(1, 8))
    assert (out / "selection_HR.png").stat().st_size > 0
    val = pd.read_csv(out / "validation_HR.csv")
    assert {"best", "paper"} <= set(val["set"])
    assert "top 10" in res.output


def test_cli_select_rejects_unknown_candidate(tmp_path):
    from typer.testing import CliRunner

    from srgpu.cli import app

    res = CliRunner().invoke(app, ["select", "--candidates", "MAT,Foo", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "Foo" in res.output
