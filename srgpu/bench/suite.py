"""The benchmark suites of ``srgpu bench`` and ``python -m benchmarks``: the end-to-end
benchmark (srgpu vs a scikit-learn loop vs R randomForest, inference and training alone) and the
scaling curves, written as JSON and a PNG."""

from __future__ import annotations

from pathlib import Path

SUITES = ("quick", "full", "tiny")


def run_suite(
    suite: str, *, out: Path | None = None, scaling: bool = True, e2e: bool = True, log=print
) -> dict:
    """Run the end-to-end benchmark and (unless ``scaling=False``) the scaling curves of
    ``suite``; write ``e2e-*.json``, ``scaling-*.json`` and ``benchmark-*.png`` under ``out``
    (default :data:`srgpu.bench.common.RESULTS`: ``benchmarks/results`` in a source checkout,
    else ``./srgpu-bench``). Returns ``{"e2e": ..., "scaling": ..., "files": [...]}``."""
    from srgpu.bench import e2e as bench_e2e
    from srgpu.bench import scaling as bench_scaling
    from srgpu.bench.common import RESULTS, write_result
    from srgpu.bench.plot import plot

    out = Path(out) if out is not None else RESULTS
    quiet = log is None
    log = log or (lambda _msg: None)
    files = []
    res_e2e = bench_e2e.run(suite=suite, log=log) if e2e else None
    if res_e2e is not None:
        files.append(write_result(res_e2e, f"e2e-{suite}", out))
    res_sc = bench_scaling.run(suite=suite, log=log) if scaling else None
    if res_sc is not None:
        files.append(write_result(res_sc, f"scaling-{suite}", out))
    if res_e2e is not None:
        files.append(plot(res_e2e, res_sc, out / f"benchmark-{suite}-{res_e2e['date']}.png"))
    if not quiet and res_e2e is not None:
        log(summary_lines(res_e2e, res_sc))
    return {"e2e": res_e2e, "scaling": res_sc, "files": files}


def summary_lines(e2e: dict, scaling: dict | None) -> str:
    x = e2e["extrapolated_full_job"]
    lines = [
        "inference per core vs sklearn predict : "
        f"x{e2e['inference_speedup_vs_sklearn_predict']:.2f}",
        f"training per core vs sklearn fit      : x{e2e['training_speedup_vs_sklearn_fit']:.2f}",
        f"end to end vs sklearn loop (measured) : x{e2e['speedup_vs_sklearn']:.2f}",
        f"end to end, full job (extrapolated)   : x{x['speedup_vs_sklearn']:.2f}; srgpu "
        f"{x['hours']['srgpu']:.0f} h, sklearn loop {x['hours']['sklearn']:.0f} h, sklearn "
        f"memory {x['sklearn_loop_peak_memory_gb']:.0f} GB",
        f"bit-identical numba vs sklearn        : {e2e['bit_identical']}",
    ]
    r = e2e.get("speedup_vs_r")
    if r:
        lines.append(
            "vs R randomForest per replicate       : "
            f"x{r['per_replicate_1_core_r']:.2f} (R 1 core), "
            f"x{r['per_replicate_r_perfectly_parallel_on_all_cores']:.2f} (R on all cores)"
        )
        lines.append(
            "vs R randomForest, full job (extrap.) : "
            f"x{r['full_job_extrapolated_1_core_r']:.2f} (R 1 core, "
            f"{x['hours']['r_randomforest_1_core']:.0f} h), "
            f"x{r['full_job_extrapolated_r_perfectly_parallel_on_all_cores']:.2f} (R on all cores)"
        )
    else:
        lines.append("R randomForest                       : absent")
    if scaling is not None:
        m = scaling["peak_memory_2000_replicates_0p5deg_gb"]
        s = scaling["srgpu_memory_vs_replicates"]
        lines.append(
            "srgpu peak RSS vs replicates (MB)     : "
            + ", ".join(
                f"{r}: {v:.0f}" for r, v in zip(s["replicates"], s["peak_rss_mb"], strict=True)
            )
        )
        if m["srgpu"] is not None:
            lines.append(
                f"peak memory 2000 reps 0.5 deg (extrap): srgpu {m['srgpu']:.2f} GB (linear upper "
                f"bound; python -m benchmarks.bench_memory measures it flat), "
                f"sklearn loop {m['sklearn_loop']:.0f} GB"
            )
    return "\n".join(lines)
