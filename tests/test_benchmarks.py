"""The benchmark suite runs on a tiny configuration and writes valid results (no timings
are asserted: the machine may be loaded)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("matplotlib")


def _finite_positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    from benchmarks.__main__ import run_suite

    out = tmp_path_factory.mktemp("bench")
    res = run_suite("tiny", out=out, log=None)
    return out, res


@pytest.mark.slow
def test_tiny_suite_writes_json_and_png(tiny_results):
    out, res = tiny_results
    names = sorted(p.name for p in out.iterdir())
    assert any(n.startswith("e2e-tiny-") and n.endswith(".json") for n in names)
    assert any(n.startswith("scaling-tiny-") and n.endswith(".json") for n in names)
    png = [p for p in out.iterdir() if p.suffix == ".png"]
    assert png and png[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_e2e_result_is_valid(tiny_results):
    out, _ = tiny_results
    d = json.loads(next(out.glob("e2e-tiny-*.json")).read_text())
    for key in (
        "machine",
        "setup",
        "speedup_vs_sklearn",
        "inference_speedup_vs_sklearn_predict",
        "training_speedup_vs_sklearn_fit",
        "replicates_per_minute",
        "extrapolated_full_job",
        "bit_identical",
    ):
        assert key in d
    for key in ("cpu_model", "logical_cores", "python", "versions", "git_commit"):
        assert key in d["machine"]
    assert d["bit_identical"] is True
    assert _finite_positive(d["speedup_vs_sklearn"])
    assert _finite_positive(d["inference_speedup_vs_sklearn_predict"])
    assert all(_finite_positive(v) for v in d["inference"]["traversals_per_second"].values())
    assert all(_finite_positive(v) for v in d["training"]["trees_per_second"].values())
    for engine in ("srgpu", "sklearn_loop"):
        run = d["e2e"][engine]
        assert _finite_positive(run["wall_s"]) and _finite_positive(run["peak_rss_mb"])
    x = d["extrapolated_full_job"]
    assert x["extrapolated"] is True
    assert all(_finite_positive(v) for v in x["hours"].values())
    r = d["r_randomforest"]
    if r["available"]:
        assert _finite_positive(r["SR"]["fit_s"] + r["SR"]["predict_s"])
        assert _finite_positive(d["speedup_vs_r"]["per_replicate_1_core_r"])
        assert _finite_positive(d["speedup_vs_r"]["full_job_extrapolated_1_core_r"])
        assert _finite_positive(d["extrapolated_full_job"]["hours"]["r_randomforest_1_core"])
    else:
        assert "reason" in r
    text = json.dumps(d)
    assert "/work" not in text and "/home" not in text and "/tmp" not in text


@pytest.mark.slow
def test_scaling_result_is_valid(tiny_results):
    out, _ = tiny_results
    d = json.loads(next(out.glob("scaling-tiny-*.json")).read_text())
    assert d["measured"] and all(p["extrapolated"] is False for p in d["measured"])
    assert all(p["extrapolated"] is True for p in d["extrapolated_points"])
    assert {p["replicates"] for p in d["extrapolated_points"]} == {10, 100, 1000, 2000}
    for p in d["measured"]:
        assert _finite_positive(p["wall_s"]) and _finite_positive(p["peak_rss_mb"])
    m = d["peak_memory_2000_replicates_0p5deg_gb"]
    assert m["extrapolated"] is True and math.isfinite(m["srgpu"])
    assert _finite_positive(d["srgpu_memory_vs_replicates"]["max_over_min"])


def test_training_benchmark_runs_and_trainers_agree():
    from benchmarks.bench_train import run

    d = run(trees=3, repeats=1, seed=0)
    for flux in ("SR", "HR"):
        f = d["fluxes"][flux]
        assert f["numba_equals_sklearn_trainer_bit_for_bit"] is True
        assert all(_finite_positive(v) for v in f["trees_per_second_per_core"].values())
        nodes = f["mean_nodes_per_tree"]
        assert nodes["numba"] == nodes["sklearn"] > 1
    assert d["fluxes"]["SR"]["predictors"] == 5 and d["fluxes"]["HR"]["predictors"] == 7


def test_synthetic_inputs_have_paper_shapes():
    from benchmarks.common import HR_RECORDS, N_YEARS, SR_RECORDS, synthetic_inputs

    inputs = synthetic_inputs(n_cells=10)
    assert inputs.fluxes["SR"].X.shape == (SR_RECORDS, 5)
    assert inputs.fluxes["HR"].X.shape == (HR_RECORDS, 7)
    assert inputs.grid_X["HR"].shape == (10 * N_YEARS, 7)
    assert inputs.n_rows == 10 * N_YEARS and inputs.cell_ilat.size == 10


def test_cli_bench_rejects_unknown_suite():
    from typer.testing import CliRunner

    from srgpu.cli import app

    res = CliRunner().invoke(app, ["bench", "huge"])
    # the CLI's one-line error and exit code 2, not any failure (a crash also exits non-zero)
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("srgpu: error: ")
    assert "suite must be one of" in res.output and "'huge'" in res.output


@pytest.mark.slow
def test_gpu_benchmark_script_runs_through_nvforest_cpu(tmp_path):
    """The GPU benchmark's code path, checked on CPU (nvForest device="cpu"): valid figures."""
    pytest.importorskip("nvforest")
    import math

    from benchmarks.bench_gpu import run

    res = run(suite="tiny", device="cpu")
    inf = res["inference"]
    assert inf["nvforest_cpu_traversals_per_s"] > 0 and inf["numba_host_traversals_per_s"] > 0
    assert inf["max_rel_diff_nvforest_vs_numba"] < 1e-5  # single precision vs exact
    e2e = res["end_to_end"]
    assert e2e["extrapolated"] is True and math.isfinite(e2e["full_job_seconds_extrapolated"])
    assert res["training"]["host_cpu_replicates_per_s"] > 0
    assert res["device"] == {"device": "cpu"} and res["target"]["met"] is None
