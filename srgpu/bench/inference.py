"""Inference throughput: numba kernel vs scikit-learn ``predict`` (vs nvForest on CPU if present).

Paper-shaped synthetic data: 2665 training rows x 5 predictors, 500 trees with randomForest-like
settings (``max_features = max(p // 3, 1)``, ``min_samples_split = 6``, bootstrap); prediction rows
are a stated fraction of the 1.9 M cell-years of the real job. Engines are timed interleaved,
best of N, and the figures (tree-row traversals per second) written as JSON with machine info::

    python -m benchmarks.bench_inference --quick  (or python -m srgpu.bench.inference)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import sklearn
from sklearn.ensemble import RandomForestRegressor

from srgpu.bench.common import RESULTS, cpu_model, git_commit, load_average
from srgpu.forest.numba_engine import TILE, NumbaEngine

JOB_ROWS = 1_900_000
N_TRAIN, N_PRED = 2665, 5


def _data(*, seed: int, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N_TRAIN, N_PRED))
    y = 2 * X[:, 0] + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(scale=0.5, size=N_TRAIN)
    Xp = rng.normal(size=(n_rows, N_PRED)).astype(np.float32)
    return X, y, Xp


def _best_of(fns: dict, *, repeats: int) -> dict[str, float]:
    """Interleaved best-of-``repeats`` wall time of each callable."""
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def run(*, fraction: float, repeats: int, trees: int, seed: int) -> dict:
    n_rows = max(int(round(fraction * JOB_ROWS)), 1)
    X, y, Xp = _data(seed=seed, n_rows=n_rows)
    rf = RandomForestRegressor(
        n_estimators=trees,
        max_features=max(N_PRED // 3, 1),
        min_samples_split=6,
        min_samples_leaf=1,
        bootstrap=True,
        random_state=seed,
        n_jobs=-1,
    ).fit(X, y)
    rf.set_params(n_jobs=1)
    sub = Xp[:2000]
    comparisons = float(
        np.mean([e.decision_path(sub).sum(axis=1).mean() - 1 for e in rf.estimators_[:50]])
    )

    engine = NumbaEngine()
    compiled = engine.compile([rf])
    ref = rf.predict(Xp)
    bit_identical = bool(np.array_equal(compiled.predict(Xp, threads=1)[0], ref))
    max_threads = min(2, numba.config.NUMBA_NUM_THREADS)
    fns = {
        "sklearn_predict_1thread": lambda: rf.predict(Xp),
        "numba_1thread": lambda: compiled.predict(Xp, threads=1),
        f"numba_{max_threads}threads": lambda: compiled.predict(Xp, threads=max_threads),
    }
    nvforest_info: dict = {"available": False}
    try:
        import nvforest

        fil = nvforest.load_from_sklearn(rf, device="cpu")
        fil.predict(Xp[:100])
        got = np.asarray(fil.predict(Xp)).reshape(-1)
        nvforest_info = {
            "available": True,
            "version": getattr(nvforest, "__version__", None),
            "max_abs_diff_vs_sklearn": float(np.max(np.abs(got - ref))),
            "note": "load_from_sklearn(model, device='cpu'), default precision; all its threads",
        }
        fns["nvforest_cpu"] = lambda: fil.predict(Xp)
    except Exception as exc:  # absent, or no usable build here
        nvforest_info["reason"] = f"{type(exc).__name__}: {exc}"[:200]

    times = _best_of(fns, repeats=repeats)
    traversals = trees * n_rows
    rates = {k: traversals / v for k, v in times.items()}
    sk = rates["sklearn_predict_1thread"]
    return {
        "benchmark": "inference",
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpu_model": cpu_model(),
            "logical_cores": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "sklearn": sklearn.__version__,
            "platform": platform.platform(),
            "git_commit": git_commit(),
            "load_average_1_5_15min_after": load_average(),
        },
        "setup": {
            "train_rows": N_TRAIN,
            "predictors": N_PRED,
            "trees": trees,
            "forest": "RandomForestRegressor(max_features=max(p//3,1), min_samples_split=6, "
            "min_samples_leaf=1, bootstrap=True)",
            "mean_nodes_per_tree": float(np.mean([e.tree_.node_count for e in rf.estimators_])),
            "mean_max_depth": float(np.mean([e.tree_.max_depth for e in rf.estimators_])),
            "mean_comparisons_per_traversal": comparisons,
            "prediction_rows": n_rows,
            "fraction_of_job_rows": fraction,
            "job_rows": JOB_ROWS,
            "repeats_best_of": repeats,
            "numba_kernel": "tile partitioned down each tree, bounding-box skips, Morton order",
            "numba_tile_rows": TILE,
            "seed": seed,
        },
        "bit_identical_numba_vs_sklearn": bit_identical,
        "nvforest": nvforest_info,
        "best_seconds": times,
        "traversals_per_second": rates,
        "inference_speedup_vs_sklearn_predict": rates["numba_1thread"] / sk,
        "speedup_vs_sklearn_predict_1thread": {k: v / sk for k, v in rates.items()},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 %% of the job's rows, best of 3")
    parser.add_argument("--fraction", type=float, default=None, help="fraction of 1.9 M rows")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: the results folder)"
    )
    args = parser.parse_args(argv)
    fraction = args.fraction if args.fraction is not None else (0.01 if args.quick else 0.05)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
    result = run(fraction=fraction, repeats=repeats, trees=args.trees, seed=args.seed)
    out = args.out or RESULTS / f"inference-{result['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result["traversals_per_second"].items():
        ratio = result["speedup_vs_sklearn_predict_1thread"][k]
        print(f"{k:28s} {v:10.3g} traversals/s   x{ratio:.2f} vs sklearn")
    print(f"bit-identical: {result['bit_identical_numba_vs_sklearn']}; written {out}")
    return result


if __name__ == "__main__":
    main()
