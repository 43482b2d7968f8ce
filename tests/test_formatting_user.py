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
