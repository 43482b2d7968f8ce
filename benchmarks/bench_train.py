"""Training throughput per core: the numba tree grower vs the scikit-learn trainer vs
``RandomForestRegressor.fit``.

Paper-shaped synthetic data (:func:`benchmarks.common.synthetic_inputs`): the training split
(80 %) of the SR records (2132 rows x 5 predictors, mtry 1) and of the HR records (538 rows x 7
predictors, mtry 2), randomForest's settings (nodesize 5, bootstrap of n rows). Each trainer fits
one forest on one core; the three are timed interleaved, best of N, and the trees per second, the
mean nodes per tree and whether the two ``fit_forest`` trainers grew the same forest are written
as JSON with machine info::

    python -m benchmarks.bench_train            # 500 trees, best of 3
    python -m benchmarks.bench_train --trees 100 --repeats 2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from benchmarks.common import machine_info, synthetic_inputs, write_result
from srgpu.config import ForestConfig
from srgpu.forest.numba_train import grow_forest, to_sklearn_trees
from srgpu.forest.train import fit_forest, sklearn_tree_params

TRAIN_FRACTION = 0.8


def _same_forest(a, b) -> bool:
    for ea, eb in zip(a.estimators_, b.estimators_, strict=True):
        sa, sb = ea.tree_.__getstate__(), eb.tree_.__getstate__()
        if (
            sa["node_count"] != sb["node_count"]
            or sa["nodes"].tobytes() != sb["nodes"].tobytes()
            or sa["values"].tobytes() != sb["values"].tobytes()
        ):
            return False
    return True


def _mean_nodes(rf) -> float:
    return float(np.mean([e.tree_.node_count for e in rf.estimators_]))


def bench_flux(X, y, *, trees: int, repeats: int, seed: int) -> dict:
    """Interleaved best-of-``repeats`` fits of one forest by each trainer."""
    n, p = X.shape
    cfg = ForestConfig(trees=trees)
    mtry = cfg.mtry_for(p)
    ss = np.random.SeedSequence(seed)
    fns = {
        "numba": lambda: fit_forest(X, y, forest=cfg, seed=ss, trainer="numba"),
        "sklearn": lambda: fit_forest(X, y, forest=cfg, seed=ss, trainer="sklearn"),
        "sklearn_rf_fit": lambda: RandomForestRegressor(
            n_estimators=trees, max_features=mtry, min_samples_split=cfg.nodesize + 1,
            bootstrap=True, n_jobs=1, random_state=seed,
        ).fit(X, y),
    }  # fmt: skip
    fns["numba"]()  # compile (or load numba's cache) outside the timing
    best = {k: float("inf") for k in fns}
    fitted = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fitted[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t)

    # the numba trainer's two steps: growing (numba) and wrapping into scikit-learn objects
    rng = np.random.default_rng(ss)
    boot = rng.integers(0, n, size=(trees, n))
    tree_seeds = rng.integers(0, np.iinfo(np.int32).max, size=trees)
    params = sklearn_tree_params(cfg, n_features=p)
    grow_s = wrap_s = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        grown = grow_forest(
            X, y, boot=boot, tree_seeds=tree_seeds, mtry=mtry, nodesize=cfg.nodesize
        )
        t1 = time.perf_counter()
        to_sklearn_trees(grown, params=params, tree_seeds=tree_seeds)
        t2 = time.perf_counter()
        grow_s, wrap_s = min(grow_s, t1 - t0), min(wrap_s, t2 - t1)

    rates = {k: trees / v for k, v in best.items()}
    return {
        "train_rows": n,
        "predictors": p,
        "mtry": mtry,
        "nodesize": cfg.nodesize,
        "trees": trees,
        "best_seconds": best,
        "trees_per_second_per_core": rates,
        "speedup_numba_vs": {
            "sklearn_trainer": rates["numba"] / rates["sklearn"],
            "sklearn_rf_fit": rates["numba"] / rates["sklearn_rf_fit"],
        },
        "mean_nodes_per_tree": {k: _mean_nodes(m) for k, m in fitted.items()},
        "mean_max_depth": {
            k: float(np.mean([e.tree_.max_depth for e in m.estimators_])) for k, m in fitted.items()
        },
        "numba_equals_sklearn_trainer_bit_for_bit": _same_forest(
            fitted["numba"], fitted["sklearn"]
        ),
        "numba_split_us_per_tree": {"grow": grow_s / trees * 1e6, "wrap": wrap_s / trees * 1e6},
    }


def run(*, trees: int, repeats: int, seed: int) -> dict:
    machine = machine_info()
    inputs = synthetic_inputs(n_cells=64, seed=seed)
    fluxes = {}
    for flux in ("SR", "HR"):
        d = inputs.fluxes[flux]
        n = int(round(TRAIN_FRACTION * d.y.size))
        fluxes[flux] = bench_flux(d.X[:n], d.y[:n], trees=trees, repeats=repeats, seed=seed)
    return {
        "benchmark": "train",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine,
        "setup": {
            "data": "benchmarks.common.synthetic_inputs(n_cells=64): first 80 % of each flux",
            "trainers": {
                "numba": "fit_forest(trainer='numba'): srgpu.forest.numba_train grower, returns "
                "a GrownForest (no scikit-learn objects)",
                "sklearn": "fit_forest(trainer='sklearn'): explicit bootstrap + "
                "DecisionTreeRegressor.fit per tree",
                "sklearn_rf_fit": "RandomForestRegressor(max_features=mtry, min_samples_split="
                "nodesize+1, bootstrap=True, n_jobs=1).fit (bootstrap as sample weights: smaller "
                "trees, not the same rule)",
            },
            "timing": f"interleaved, best of {repeats}, one core each",
            "seed": seed,
        },
        "fluxes": fluxes,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder (default: results/)")
    args = parser.parse_args(argv)
    result = run(trees=args.trees, repeats=args.repeats, seed=args.seed)
    path = write_result(result, "train", args.out)
    for flux, r in result["fluxes"].items():
        print(f"{flux}: {r['train_rows']} rows x {r['predictors']} predictors, mtry {r['mtry']}")
        for k, v in r["trees_per_second_per_core"].items():
            nodes = r["mean_nodes_per_tree"][k]
            print(f"  {k:16s} {v:8.0f} trees/s per core   {nodes:7.1f} nodes/tree")
        s = r["speedup_numba_vs"]
        print(
            f"  numba: x{s['sklearn_trainer']:.2f} vs the sklearn trainer, "
            f"x{s['sklearn_rf_fit']:.2f} vs RandomForestRegressor.fit; same forest as the "
            f"sklearn trainer: {r['numba_equals_sklearn_trainer_bit_for_bit']}; "
            f"grow {r['numba_split_us_per_tree']['grow']:.0f} us + wrap "
            f"{r['numba_split_us_per_tree']['wrap']:.0f} us per tree"
        )
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
