"""What the one-core kernel A/B benchmarks share (:mod:`benchmarks.bench_walk`,
:mod:`benchmarks.bench_fused_walk`): the pinning, the engine's plan and kernel arguments for a
forest and its rows, the figures every forest gets, the result's envelope and the command line.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import load_average, write_result

TIMING = (
    "alternating, {repeats} rounds, CPU seconds (time.process_time); "
    "figures are medians of the per-round ratios"
)
ROWS = "the engine's plan: distinct rows in Morton order, tile of tile_rows(n, 1)"


def pin(cpu: int | None) -> None:
    """Pin this process to CPU ``cpu`` (``None``: leave it)."""
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})


@dataclass(frozen=True)
class WalkInputs:
    """A forest's arrays ``a`` and the engine's ``plan`` of the rows ``G``, with the kernels'
    arguments around the leaf values: ``head`` (rows, order, the tree arrays, ``a.value``) and
    ``tail`` (tree and forest offsets, depth, tile)."""

    a: object
    plan: object
    G: np.ndarray
    head: tuple
    tail: tuple


def walk_inputs(rf, G: np.ndarray) -> WalkInputs:
    """The engine's arrays, plan and kernel arguments for the fitted forest ``rf`` at rows ``G``."""
    from srgpu.forest import numba_engine as ne
    from srgpu.forest.arrays import forest_arrays
    from srgpu.forest.row_plans import plan_rows

    a = forest_arrays([rf])
    plan = plan_rows(np.ascontiguousarray(G))
    head = (
        plan.rows, plan.order, a.feature.view(np.uint32), a.threshold,
        a.children.view(np.uint32), a.nan_left, a.value,
    )  # fmt: skip
    tail = (a.tree_offsets, a.forest_offsets, int(a.tree_depth.max()),
            ne.tile_rows(plan.rows.shape[0], 1))  # fmt: skip
    return WalkInputs(a=a, plan=plan, G=G, head=head, tail=tail)


def timing_figures(w: WalkInputs, times: dict[str, list[float]]) -> dict:
    """The figures every forest gets: its rows, trees and the CPU seconds of each contender."""
    return {
        "grid_rows": int(w.G.shape[0]),
        "distinct_rows": int(w.plan.rows.shape[0]),
        "trees": int(w.a.n_trees),
        "cpu_s": times,
        "median_cpu_s": {k: float(np.median(v)) for k, v in times.items()},
    }


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """The median over rounds of ``times[num] / times[den]``."""
    return float(np.median(np.asarray(times[num]) / np.asarray(times[den])))


def result(benchmark: str, *, machine: dict, repeats: int, threads: str, figures: dict,
           load_start: list[float] | None = None, **setup) -> dict:  # fmt: skip
    """The result file's envelope (the load average at the end read here)."""
    from srgpu.forest import vector_split

    loads = {} if load_start is None else {"load_average_1_5_15min_at_start": load_start}
    return {
        "benchmark": benchmark,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        **loads,
        "load_average_1_5_15min_at_end": load_average(),
        "setup": {
            "threads": threads,
            "timing": TIMING.format(repeats=repeats),
            "rows": ROWS,
            **setup,
            "vector_partition_usable_here": vector_split.usable(),
        },
        "figures": figures,
    }


def main(doc: str, run: Callable[..., dict], name: str, *, cpu: int,
         argv: list[str] | None = None) -> dict:  # fmt: skip
    """The command line of a pinned benchmark: ``--repeats``, ``--cpu`` (default ``cpu``; -1:
    none) and ``--out``; writes ``results/<name>-<date>.json``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--cpu", type=int, default=cpu, help="CPU to pin to (-1: none)")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: results/)")
    args = parser.parse_args(argv)
    out = run(repeats=args.repeats, cpu=None if args.cpu < 0 else args.cpu)
    path = write_result(out, name, args.out)
    print(f"written {path}")
    return out
