"""Small things a scientist notices (issue 18, deliver 9): importance bars sorted, integer ticks
on the subset-size axis, even precision in the validation table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from srgpu.analysis.explain import importance_order
from srgpu.analysis.selection import subset_size_ticks


def test_importance_order_puts_the_largest_median_last():
    # replicate x predictor; medians 5, 1, 9, 1
    perm = np.array([[4.0, 0.0, 9.0, 1.0], [5.0, 1.0, 8.0, 1.0], [6.0, 2.0, 10.0, 1.0]])
    order = importance_order(perm)
    assert order.tolist() == [3, 1, 0, 2]  # tie (1, 1): earlier name drawn higher


def test_subset_size_ticks_are_whole_numbers():
    table = pd.DataFrame({"size": [1, 2, 2, 3, 1, 3, 3], "rmse": np.arange(7.0)})
    ticks = subset_size_ticks(table)
    assert ticks == [1, 2, 3] and all(type(t) is int for t in ticks)


def test_validation_table_precision(capsys):
    from srgpu.cli.ensemble import print_summary

    def stat(mean, sd):
        return {"mean": mean, "sd": sd}

    fluxes = {
        f: {
            "total_pg_per_yr": {k: 1.0 for k in ("mean", "sd", "median", "mad", "q025", "q975")},
            "integrated_sd_pg_per_yr": 1.0,
            "integrated_mad_pg_per_yr": 1.0,
        }
        for f in ("SR", "HR", "AR")
    }
    summary = {
        "fluxes": fluxes,
        "ratios": {"AR/SR": 0.4, "HR/SR": 0.6},
        "counts": {"SR": 10, "HR": 5},
        "validation": {
            f: {"r2": stat(0.351, 0.071), "rmse": stat(340.4, 29.6), "r": stat(0.6, 0.05)}
            for f in ("SR", "HR")
        },
    }
    print_summary(summary)
    out = capsys.readouterr().out
    assert "340 ± 30" in out and "0.35 ± 0.07" in out and "340.4" not in out
    assert "RMSE" in out and "g C m-2" in out


def test_explain_reports_each_stage():
    from srgpu.analysis.explain import explain_flux
    from srgpu.config import EnsembleConfig, ForestConfig
    from srgpu.data.inputs import prepare_inputs

    cfg = EnsembleConfig(replicates=1, forest=ForestConfig(trees=3))
    inputs = prepare_inputs(cfg)
    seen: list[str] = []
    res = explain_flux(
        inputs, cfg, flux="SR", replicates=[0], repeats=1, points=3, rows=20, progress=seen.append
    )
    assert [s.split(" ")[1] for s in seen] == ["re-growing", "permutation", "partial", "area"]
    assert all(s.startswith("SR: ") for s in seen)
    assert res.permutation.shape == (1, len(res.names))


# -- RMSE units and even precision in select, compare and report (issue 18 Why item 10) ------


def _render(table) -> str:
    from rich.console import Console

    console = Console(width=400, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def test_select_tables_name_the_rmse_unit_and_keep_one_decimal():
    from srgpu.cli.select import honest_table, paper_line, ranking_table

    table = pd.DataFrame(
        {
            "rank": [1, 2],
            "subset": ["MAT,Prec", "MAT"],
            "rmse": [85.04, 412.0],
            "rmse_sd": [3.0, 12.25],
            "r2": [0.5, 0.12345],
            "r2_sd": [0.01, 0.1],
            "d_rmse": [0.0, 326.96],
            "d_rmse_sd": [0.0, 9.0],
        }
    )
    text = _render(ranking_table(table, flux="SR", repeats=5))
    assert "RMSE (g C m-2 yr-1)" in text and "ΔRMSE vs best (g C m-2 yr-1)" in text
    assert "85.0 ± 3.0" in text and "412.0 ± 12.2" in text  # one decimal, whole numbers too
    assert "0.123 ± 0.100" in text
    line = paper_line(table, paper=("MAT",), rank=2)
    assert "RMSE 412.0 g C m-2 yr-1" in line
    validation = pd.DataFrame(
        {
            "set": ["best"],
            "scheme": ["study"],
            "rmse": [100.0],
            "r2": [0.4],
            "optimism_r2": [0.05],
            "optimism_rmse": [-7.25],
        }
    )
    text = _render(honest_table(validation, flux="SR", folds=5))
    assert "optimism RMSE (g C m-2 yr-1)" in text and "100.0" in text and "-7.2" in text


def _site_scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": ["RF", "M"],
            "flux": ["SR", "SR"],
            "n": [120, 120],
            "r": [0.9, 0.61234],
            "rmse": [85.04, 412.0],
            "bias": [-1.234, 20.0],
            "obs_mean": [700.0, 700.0],
            "sim_mean": [698.77, 720.0],
        }
    )


def test_compare_table_names_units_and_keeps_one_precision_per_column():
    from srgpu.analysis.compare.result import SCORE_TABLES
    from srgpu.cli.compare import _rich

    columns = dict((n, c) for n, _, c in SCORE_TABLES)["site_scores"]
    text = _render(_rich(_site_scores(), title="sites", columns=columns))
    assert "rmse (g C m-2 yr-1)" in text and "bias (g C m-2 yr-1)" in text
    for shown in ("85.0", "412.0", "-1.2", "20.0", "0.900", "0.612", "698.8"):
        assert shown in text, shown
    assert "412 " not in text and "85 " not in text


def test_report_score_and_validation_tables_name_units_and_keep_one_precision():
    import html as html_mod
    import re

    from srgpu.analysis.report.html import html_table
    from srgpu.analysis.report.sections import _validation_table

    text = html_mod.unescape(html_table(_site_scores(), scores=True))
    header = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", text)
    assert "rmse (g C m-2 yr-1)" in header and "bias (g C m-2 yr-1)" in header
    cells = re.findall(r"<td[^>]*>(.*?)</td>", text)
    assert "85.0" in cells and "412.0" in cells and "-1.2" in cells
    summary = {
        "validation": {
            "SR": {
                "r2": {"mean": 0.351, "sd": 0.071},
                "rmse": {"mean": 340.4, "sd": 29.6},
                "r": {"mean": 0.6, "sd": 0.05},
            }
        }
    }
    text = html_mod.unescape(_validation_table(summary))
    header = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", text)
    assert header == ["flux", "R² (1)", "RMSE (g C m-2 yr-1)", "r (1)"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", text)
    assert cells == ["SR", "0.35 ± 0.07", "340 ± 30", "0.60 ± 0.05"]
