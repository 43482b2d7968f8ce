"""Why the demo's quantile-regression-forest intervals under-cover held-out records.

``python -m benchmarks.demo_coverage [--quick] [--out FILE]`` grows each replicate's forest as
``srgpu ensemble`` does on the demo world and scores, on the replicate's held-out 20 %, the
coverage of the central 50 / 90 / 95 % intervals of four distributions at each held-out record:

* ``all``: the forest's predictive distribution as srgpu reports it (Meinshausen weights, every
  training record a member of the leaf it reaches: quantregForest's, the paper's; srgpu's
  default ``predictive_membership``);
* ``inbag`` and ``oob_run``: srgpu's distribution with ``predictive_membership = "inbag"`` and
  ``"oob"`` (:func:`srgpu.forest.predictive.heldout_calibration`, linear rule, as a run
  computes them);
* ``oob``: the same trees, but each tree's leaves hold only its **out-of-bag** training records
  (those its bootstrap sample left out, whose y did not choose its splits: an "honest" tree,
  Wager and Athey 2018); a tree whose leaf holds none is skipped for that row (computed here
  independently of the library, :func:`oob_weights`, with the ``inverted_cdf`` rule);
* ``fresh``: the weights of ``all``, but each training record's value replaced by a fresh
  draw of the demo's observation noise around its noise-free truth (same leaves, same
  neighbours, values independent of the splits);
* ``oracle``: the demo world's true conditional distribution, truth × lognormal noise
  (log-SD ``srgpu.data.demo.srdb._NOISE_SD``, mean-preserving): what any method could reach on
  these held-out records.

Quantiles of ``oob`` and ``fresh``: ``inverted_cdf`` rule; ``all``:
:func:`srgpu.forest.predictive.heldout_calibration` (linear rule, as the run). The results go
to ``benchmarks/results/demo-coverage-<date>.json``; docs/predictive.md quotes them.
:func:`oob_weights` and :func:`oracle_coverage` are used by ``tests/test_calibration.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

from srgpu.calibration import NOMINAL, central_coverage
from srgpu.forest import predictive as P
from srgpu.forest import predictive_kernels as K

LEVELS = (0.025, 0.05, 0.25, 0.75, 0.95, 0.975)


def tree_leaves(tables: P.LeafTables, X: np.ndarray) -> np.ndarray:
    """Leaf node of every row of ``X`` in every tree of the tables' first forest (trees, rows)."""
    a = tables.arrays
    t0, t1 = int(a.forest_offsets[0]), int(a.forest_offsets[1])
    return K.apply_rows(
        np.ascontiguousarray(X, dtype=np.float32), a.feature, a.threshold, a.children,
        a.nan_left, a.tree_offsets[t0:t1],
    )  # fmt: skip


def oob_weights(
    tables: P.LeafTables, X_train: np.ndarray, X_new: np.ndarray, inbag: np.ndarray
) -> np.ndarray:
    """Weights (n_new, n_train) of the rows ``X_new`` over the training records when each
    tree's leaves hold only its out-of-bag training records (``inbag[t, i] == 0``), each with
    weight ``1 / n_oob_leaf``; trees whose leaf holds no out-of-bag record are skipped, the
    others equally weighted (rows sum to 1). ``inbag``: the forest's bootstrap counts
    (:func:`srgpu.forest.predictive.inbag_counts`), checked against the grown leaves (every
    leaf holds at least one in-bag record)."""
    lv_tr, lv_new = tree_leaves(tables, X_train), tree_leaves(tables, X_new)
    if inbag.shape != lv_tr.shape:
        raise ValueError(f"inbag counts {inbag.shape} do not match the forest {lv_tr.shape}")
    W = np.zeros((X_new.shape[0], X_train.shape[0]))
    used = np.zeros(X_new.shape[0])
    for t in range(lv_tr.shape[0]):
        bag = inbag[t] > 0
        if not np.isin(lv_tr[t][~bag], lv_tr[t][bag]).all():
            raise ValueError(f"tree {t}: a leaf without in-bag records: counts do not match")
        oob = ~bag
        same = (lv_new[t][:, None] == lv_tr[t][None, :]) & oob[None, :]
        n = same.sum(axis=1)
        ok = n > 0
        W[ok] += same[ok] / n[ok, None]
        used += ok
    if np.any(used == 0):
        raise ValueError("a row reached no out-of-bag record in any tree")
    return W / used[:, None]


def weighted_coverage(W: np.ndarray, values: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Coverage of ``y`` by the central intervals of the rows of ``W`` on ``values``
    (``inverted_cdf`` quantiles)."""
    order = np.argsort(values, kind="stable")
    s = P.summary_of_weights(W[:, order], values[order], levels=LEVELS, rule="inverted_cdf")
    return central_coverage(y, s.quantiles, LEVELS)


def oracle_coverage(y: np.ndarray, truth: np.ndarray, noise_sd: float) -> dict[str, float]:
    """Coverage of ``y`` by the central intervals of the demo's true conditional distribution
    ``truth * exp(noise_sd * Z - noise_sd**2 / 2)``."""
    z = np.log(y / truth) + 0.5 * noise_sd**2
    return {
        f"{p:g}": float(np.mean(np.abs(z) <= noise_sd * norm.ppf(0.5 + p / 2))) for p in NOMINAL
    }


def record_truth(inputs, flux: str) -> np.ndarray:
    """The noise-free truth behind each of the flux's records (``DemoTruth.records``)."""
    t = inputs.truth.records.set_index("Record_number")[f"{flux}_true"]
    return t.reindex(inputs.fluxes[flux].table["record_id"].values).to_numpy(float)


def measure(
    flux: str,
    *,
    replicates: int = 5,
    trees: int = 500,
    nodesize: int = 5,
    mtry: int | None = None,
    seed: int | None = None,
    records: int | None = None,
    fresh: bool = True,
) -> dict:
    """Mean coverage over ``replicates`` of the four distributions (module docstring) on each
    replicate's held-out records; ``records``: train on a random subset of the flux's records
    (fixed draw) instead of all."""
    from srgpu.config import EnsembleConfig
    from srgpu.data.demo.srdb import _NOISE_SD
    from srgpu.data.inputs import prepare_inputs
    from srgpu.run.replicate import train_replicate
    from srgpu.run.sampling import PURPOSE_FOREST, replicate_seed

    cfg = EnsembleConfig(replicates=replicates)
    if seed is not None:
        cfg = cfg.replace(seed=seed)
    cfg = cfg.replace(
        forest=dataclasses.replace(cfg.forest, trees=trees, nodesize=nodesize, mtry=mtry)
    )
    inputs = prepare_inputs(cfg)
    truth = record_truth(inputs, flux)
    d = inputs.fluxes[flux]
    if records is not None:
        keep = np.sort(np.random.default_rng(7).choice(d.y.size, size=records, replace=False))
        d = dataclasses.replace(
            d, X=d.X[keep], y=d.y[keep], bins=d.bins[keep],
            table=d.table.iloc[keep].reset_index(drop=True),
        )  # fmt: skip
        inputs = dataclasses.replace(inputs, fluxes={**inputs.fluxes, flux: d})
        truth = truth[keep]
    rng = np.random.default_rng(12345)
    rows: dict[str, list] = {
        "all": [], "inbag": [], "oob_run": [], "oob": [], "fresh": [], "oracle": []
    }  # fmt: skip
    n_test = []
    for r in range(replicates):
        forest, split = train_replicate(inputs, cfg, r, flux)
        tables = P.leaf_tables([forest], X=d.X, y=d.y, train_index=[split.train])
        tr, te = split.train, split.test
        rows["all"].append(P.heldout_calibration(tables, d.X[te], d.y[te])["coverage"])
        inbag = P.inbag_counts(
            n_train=tr.size,
            forest=cfg.forest,
            seed=replicate_seed(cfg.seed, r, flux, PURPOSE_FOREST),
        )
        for m, key in (("inbag", "inbag"), ("oob", "oob_run")):
            t = P.leaf_tables([forest], X=d.X, y=d.y, train_index=[tr], membership=m, inbag=[inbag])
            rows[key].append(P.heldout_calibration(t, d.X[te], d.y[te])["coverage"])
        W = oob_weights(tables, d.X[tr], d.X[te], inbag)
        rows["oob"].append(weighted_coverage(W, d.y[tr], d.y[te]))
        if fresh:
            acc = P.WeightAccumulator.zeros(n_rows=te.size, n_records=tables.n_records)
            acc.add(tables, d.X[te])
            rec = np.empty(tables.n_records, dtype=np.int64)
            rec[tables.record_rank] = np.arange(tables.n_records)  # record at each sorted rank
            noise = np.exp(_NOISE_SD * rng.standard_normal(rec.size) - 0.5 * _NOISE_SD**2)
            rows["fresh"].append(weighted_coverage(acc.weights, truth[rec] * noise, d.y[te]))
        rows["oracle"].append(oracle_coverage(d.y[te], truth[te], _NOISE_SD))
        n_test.append(int(te.size))
    out = {
        "flux": flux, "replicates": replicates, "trees": trees, "nodesize": nodesize, "mtry": mtry,
        "seed": cfg.seed, "records": int(d.y.size), "heldout_per_replicate": float(np.mean(n_test)),
    }  # fmt: skip
    for name, covs in rows.items():
        if covs:
            out[name] = {k: round(float(np.mean([c[k] for c in covs])), 4) for k in covs[0]}
    return out


GRID_QUICK = (
    {"flux": "HR"},
    {"flux": "SR"},
)
GRID = (
    *GRID_QUICK,
    {"flux": "HR", "trees": 50},
    {"flux": "HR", "nodesize": 10},
    {"flux": "HR", "nodesize": 20},
    {"flux": "HR", "seed": 1, "trees": 200},
    {"flux": "HR", "seed": 2, "trees": 200},
    {"flux": "HR", "seed": 3, "trees": 200},
    {"flux": "HR", "replicates": 20, "trees": 200},
    {"flux": "SR", "records": 335, "trees": 200},
    {"flux": "SR", "seed": 1, "records": 335, "trees": 200},
    {"flux": "HR", "mtry": 1},
    {"flux": "SR", "mtry": 2},
    {"flux": "HR", "mtry": 7},
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.demo_coverage", description=__doc__)
    p.add_argument("--quick", action="store_true", help="the default settings of SR and HR only")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)
    results = []
    for kw in GRID_QUICK if a.quick else GRID:
        t0 = time.process_time()
        res = measure(**kw)
        res["cpu_s"] = round(time.process_time() - t0, 1)
        print(json.dumps(res), flush=True)
        results.append(res)
    out = a.out or Path(__file__).parent / "results" / f"demo-coverage-{dt.date.today()}.json"
    out.write_text(
        json.dumps(
            {
                "what": "held-out coverage of central intervals on the demo world (mean over "
                "replicates); all / inbag / oob_run: srgpu's predictive distribution with "
                "predictive_membership all (default), inbag, oob (linear rule); oob: out-of-bag "
                "leaf members computed independently (inverted_cdf); fresh: the weights of all "
                "on fresh noise draws; oracle: the true conditional distribution",
                "machine": "shared 2-core machine (coverage does not depend on it)",
                "results": results,
            },
            indent=1,
        )
        + "\n"
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
