"""PNG figure of an end-to-end + scaling result: headline ratios, time and memory curves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def plot(e2e: dict, scaling: dict | None, path: Path) -> Path:
    """Write a 2 x 2 figure of ``e2e`` (and ``scaling`` if given) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    ax = axes[0, 0]
    labels, values = [], []
    labels.append("inference\nper core")
    values.append(e2e["inference_speedup_vs_sklearn_predict"])
    labels.append("training\nper core")
    values.append(e2e["training_speedup_vs_sklearn_fit"])
    labels.append("end to end\n(measured)")
    values.append(e2e["speedup_vs_sklearn"])
    labels.append("end to end\n(full job,\nextrap.)")
    values.append(e2e["extrapolated_full_job"]["speedup_vs_sklearn"])
    colors = ["C0"] * len(values)
    r = e2e.get("speedup_vs_r")
    if r:
        labels.append("vs R per\nreplicate\n(1 core)")
        values.append(r["per_replicate_1_core_r"])
        colors.append("C2")
        if "full_job_extrapolated_1_core_r" in r:
            labels.append("vs R full\njob (1 core,\nextrap.)")
            values.append(r["full_job_extrapolated_1_core_r"])
            colors.append("C2")
    ax.bar(range(len(values)), values, color=colors)
    ax.axhline(3, color="k", ls="--", lw=0.8, label="target 3x (sklearn)")
    if r:
        ax.axhline(10, color="C2", ls="--", lw=0.8, label="target 10x (R)")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    ax.set_ylabel("srgpu speed-up (x)")
    ax.set_title("srgpu vs scikit-learn (blue) and R randomForest (green)", fontsize=10)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.legend(fontsize=8)

    if scaling is not None:
        meas = scaling["measured"]
        extr = scaling["extrapolated_points"]
        fixed_rows = scaling["setup"]["replicate_curve_rows"]
        for kind, c in (("srgpu", "C0"), ("sklearn_loop", "C1")):
            pts = [p for p in meas if p["engine"] == kind and p["curve"] == "replicates"]
            ex = [p for p in extr if p["engine"] == kind and p["rows"] == fixed_rows]
            for a, key, scale in (
                (axes[0, 1], "wall_s", 1 / 3600),
                (axes[1, 1], "peak_rss_mb", 1 / 1024),
            ):
                a.plot(
                    [p["replicates"] for p in pts],
                    [p[key] * scale for p in pts],
                    "o-",
                    color=c,
                    label=f"{kind} measured",
                )
                exv = [(p["replicates"], p[key]) for p in ex if p[key] is not None]
                if exv:
                    a.plot(
                        [x for x, _ in exv],
                        [y * scale for _, y in exv],
                        "s--",
                        color=c,
                        mfc="none",
                        label=f"{kind} extrapolated"
                        + (
                            " (linear upper bound)"
                            if kind == "srgpu" and key == "peak_rss_mb"
                            else ""
                        ),
                    )
        full = [p for p in extr if p["rows"] != fixed_rows and p["peak_rss_mb"] is not None]
        for kind, c in (("srgpu", "C0"), ("sklearn_loop", "C1")):
            f = [p for p in full if p["engine"] == kind]
            axes[1, 1].plot(
                [p["replicates"] for p in f],
                [p["peak_rss_mb"] / 1024 for p in f],
                "^:",
                color=c,
                label=f"{kind} 0.5 deg full grid (extrap.)",
            )
        mem = sorted(path.parent.glob("memory-replicates-*.json"))
        if mem:  # python -m benchmarks.bench_memory: fixed batch size, many replicates
            m = json.loads(mem[-1].read_text())
            fp = m["forests_500_trees_vs_replicates"]
            axes[1, 1].plot(
                [p["replicates"] for p in fp],
                [p["peak_rss_mb"] / 1024 for p in fp],
                "D-",
                color="C2",
                label="srgpu bench_memory (500 trees, tiny grid)",
            )
            axes[1, 1].plot(
                [2000],
                [m["full_job_peak_rss_mb_estimate"] / 1024],
                "*",
                ms=12,
                color="C2",
                label="srgpu bench_memory: 2000 reps x 1.9 M rows (est.)",
            )
        grid = sorted(path.parent.glob("fullgrid-*.json"))
        if grid:  # measured over every row of the 0.5 deg grid with full-size forests
            pts = json.loads(grid[-1].read_text())["points"]
            axes[1, 1].plot(
                [p["replicates"] for p in pts],
                [p["peak_rss_mb"] / 1024 for p in pts],
                "P-",
                ms=9,
                color="C3",
                label="srgpu 0.5 deg full grid, 500 trees (measured)",
            )
        axes[1, 1].axhline(4, color="k", ls="--", lw=0.8, label="target 4 GB")
        for a, yl, t in (
            (axes[0, 1], "wall time (h)", f"time vs replicates ({fixed_rows} rows)"),
            (axes[1, 1], "peak RSS (GB)", "peak memory vs replicates"),
        ):
            a.set_xscale("log")
            a.set_yscale("log")
            a.set_xlabel("replicates")
            a.set_ylabel(yl)
            a.set_title(t, fontsize=10)
            a.legend(fontsize=7)
        g = sorted((p for p in meas if p["curve"] == "grid"), key=lambda p: p["rows"])
        ax = axes[1, 0]
        rows = np.array([p["rows"] for p in g], float)
        ax.plot(rows, [p["wall_s"] for p in g], "o-", label="wall time (s)")
        ax2 = ax.twinx()
        ax2.plot(rows, [p["peak_rss_mb"] for p in g], "s-", color="C3", label="peak RSS (MB)")
        ax2.set_ylabel("peak RSS (MB)", color="C3")
        for p in g:
            ax.annotate(f"{p['resolution_deg']:g} deg", (p["rows"], p["wall_s"]), fontsize=7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("prediction rows")
        ax.set_ylabel("wall time (s)")
        r_g = g[0]["replicates"] if g else 0
        ax.set_title(f"srgpu vs grid size ({r_g} replicates)", fontsize=10)
    else:
        for a in (axes[0, 1], axes[1, 0], axes[1, 1]):
            a.axis("off")
    m = e2e["machine"]
    fig.suptitle(
        f"srgpu benchmark ({e2e['suite']}, {e2e['date']}): {m['cpu_model']}, "
        f"{m['logical_cores']} cores, load {m['load_average_1_5_15min_at_start']}",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
