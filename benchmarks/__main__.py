"""``python -m benchmarks quick|full|tiny|scaling [--out DIR]``: run, write JSON and a PNG."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SUITES = ("quick", "full", "tiny")


def run_suite(
    suite: str, *, out: Path | None = None, scaling: bool = True, e2e: bool = True, log=print
) -> dict:
    """Run the end-to-end benchmark and (unless ``scaling=False``) the scaling curves of
    ``suite``; write ``e2e-*.json``, ``scaling-*.json`` and ``benchmark-*.png`` under ``out``
    (default ``benchmarks/results``). Returns ``{"e2e": ..., "scaling": ..., "files": [...]}``."""
    from benchmarks import bench_e2e, bench_scaling
    from benchmarks.common import RESULTS, write_result
    from benchmarks.plot import plot

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument(
        "suite",
        choices=(*SUITES, "scaling"),
        help="quick (< 5 min on 2 cores), full, tiny (about a minute on 2 cores, for tests), "
        "or scaling "
        "(the quick suite's scaling curves only)",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling curves")
    a = p.parse_args(argv)
    if a.suite == "scaling":
        run_suite("quick", out=a.out, e2e=False)
    else:
        run_suite(a.suite, out=a.out, scaling=not a.no_scaling)
    return 0


if __name__ == "__main__":
    sys.exit(main())
