"""Complete combinatorial predictor selection and honest (grouped) cross-validation.

Scoring scheme (documented in ``docs/selection.md``):

* every non-empty subset of the ``k`` candidates (``2**k - 1``; 1023 for the paper's ten) is
  scored on the **same** ``repeats`` stratified 80/20 draws the ensemble itself uses —
  :func:`srgpu.run.sampling.replicate_split` for replicates ``0..repeats-1`` — and with the same
  forest seeds, through the ensemble's replicate recipe (:func:`srgpu.run.replicate.score_folds`):
  a paired comparison, the subsets differ only by their columns (common random numbers);
* a subset's score is the mean over repeats of the held-out RMSE and R² (scikit-learn's
  ``r2_score`` definition, :func:`srgpu.run.stats.validation_metrics`), with their SDs over repeats
  and the paired RMSE difference to the best subset;
* subsets are ranked by mean RMSE (ties by fewer predictors).

Honest validation (:func:`honest_validation`): the random hold-outs above put records of one
study or one place on both sides of the split, so they reward memorising places. Beside them a
predictor set is scored by 5-fold ``GroupKFold`` holding out whole studies and whole 5°x5°
blocks; the optimism gap is R²(random) - R²(grouped) and RMSE(grouped) - RMSE(random).

Parallelism: subsets are independent tasks, run with Dask — the threaded scheduler by default
(scikit-learn grows trees without the GIL) or a ``distributed`` cluster when a client is given.
Results never depend on the scheduler, the number of workers or the order of completion.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from srgpu.config import ForestConfig
from srgpu.errors import ConfigError
from srgpu.forest.trainers import DEFAULT_TRAINER
from srgpu.run.replicate import score_folds
from srgpu.run.sampling import Split, replicate_split

SCORE_COLUMNS = ("rmse", "rmse_sd", "r2", "r2_sd")


@dataclass(frozen=True)
class SelectionProblem:
    """What every subset is scored on: candidate columns, target, and the shared splits."""

    names: tuple[str, ...]
    X: np.ndarray  # (n, k) float32, one column per candidate
    y: np.ndarray  # (n,)
    splits: tuple[Split, ...]
    forest: ForestConfig
    seed: int
    flux: str
    trainer: str = DEFAULT_TRAINER  # a CPU trainer (TrainConfig.cpu_trainer)

    def __post_init__(self) -> None:
        if self.X.shape != (self.y.size, len(self.names)):
            raise ConfigError(
                f"selection: X has shape {self.X.shape}, "
                f"expected ({self.y.size}, {len(self.names)})"
            )
        if not self.splits:
            raise ConfigError("selection: at least one repeat (split) is needed")


def all_subsets(candidates: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``candidates``, by size, then in candidate order."""
    cands = tuple(dict.fromkeys(candidates))
    return [c for k in range(1, len(cands) + 1) for c in itertools.combinations(cands, k)]


def repeat_splits(
    *,
    bins: np.ndarray,
    weights: dict[int, float],
    train_fraction: float,
    seed: int,
    flux: str,
    repeats: int,
) -> tuple[Split, ...]:
    """The ensemble's own draws for replicates ``0..repeats-1`` (subset-independent)."""
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}")
    return tuple(
        replicate_split(
            bins=bins,
            weights=weights,
            train_fraction=train_fraction,
            seed=seed,
            replicate=r,
            flux=flux,
        )
        for r in range(repeats)
    )


def score_subset(problem: SelectionProblem, subset: Sequence[str]) -> np.ndarray:
    """``(repeats, 2)`` held-out ``[rmse, r2]`` of one subset on the problem's shared splits."""
    cols = [problem.names.index(n) for n in subset]
    X = np.ascontiguousarray(problem.X[:, cols])
    folds = [(s.train, s.test) for s in problem.splits]
    return score_folds(
        X,
        problem.y,
        folds,
        forest=problem.forest,
        seed=problem.seed,
        flux=problem.flux,
        trainer=problem.trainer,
    )


def _score_many(problem: SelectionProblem, subsets: list[tuple[str, ...]]) -> list[np.ndarray]:
    return [score_subset(problem, s) for s in subsets]


def _chunks(items: list, n: int) -> list[list]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def search_subsets(
    problem: SelectionProblem,
    *,
    subsets: Sequence[tuple[str, ...]] | None = None,
    client=None,
    threads: int | None = None,
    chunk: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Score every subset (default: all of ``problem.names``) and return the ranked table.

    ``client``: a ``distributed.Client`` (tasks are mapped on its workers, the problem scattered
    once); otherwise Dask's threaded scheduler with ``threads`` threads (default: all cores).
    """
    subsets = list(subsets) if subsets is not None else all_subsets(problem.names)
    unknown = sorted({n for s in subsets for n in s} - set(problem.names))
    if unknown:
        raise ConfigError(f"selection: subsets use unknown candidates {unknown}")
    groups = _chunks(subsets, max(chunk, 1))
    results: list[list[np.ndarray] | None] = [None] * len(groups)
    total = len(subsets)
    done = 0
    if client is not None:
        from distributed import as_completed

        remote = client.scatter(problem, broadcast=True)
        futures = [client.submit(_score_many, remote, g, pure=False) for g in groups]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in as_completed(futures):
            i = index[fut.key]
            results[i] = fut.result()
            done += len(groups[i])
            if on_progress:
                on_progress(done, total)
    else:
        import dask

        threads = threads or os.cpu_count() or 1
        # batches of tasks so that progress can be reported between them
        step = max(threads * 2, 1)
        for b0 in range(0, len(groups), step):
            ids = range(b0, min(b0 + step, len(groups)))
            tasks = [dask.delayed(_score_many)(problem, groups[i]) for i in ids]
            out = dask.compute(*tasks, scheduler="threads", num_workers=threads)
            for i, r in zip(ids, out, strict=True):
                results[i] = r
                done += len(groups[i])
            if on_progress:
                on_progress(done, total)
    scores = [s for r in results for s in r]  # type: ignore[union-attr]
    return rank_table(subsets, scores)


def rank_table(subsets: Sequence[tuple[str, ...]], scores: Sequence[np.ndarray]) -> pd.DataFrame:
    """Ranked table: one row per subset with mean/SD of RMSE and R² over the repeats, the paired
    mean RMSE difference to the best subset (``d_rmse``) and its SD (``d_rmse_sd``)."""
    S = np.stack(scores)  # (n_subsets, repeats, 2)
    rmse, r2 = S[..., 0], S[..., 1]
    ddof = 1 if S.shape[1] > 1 else 0
    table = pd.DataFrame(
        {
            "subset": [",".join(s) for s in subsets],
            "size": [len(s) for s in subsets],
            "rmse": rmse.mean(axis=1),
            "rmse_sd": rmse.std(axis=1, ddof=ddof),
            "r2": r2.mean(axis=1),
            "r2_sd": r2.std(axis=1, ddof=ddof),
        }
    )
    order = np.lexsort((table["size"].to_numpy(), table["rmse"].to_numpy()))
    best = int(order[0])
    diff = rmse - rmse[best]
    table["d_rmse"] = diff.mean(axis=1)
    table["d_rmse_sd"] = diff.std(axis=1, ddof=ddof)
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table


def find_rank(table: pd.DataFrame, subset: Sequence[str]) -> int | None:
    """Rank (1-based) of ``subset`` in a ranked table, whatever the order of its names."""
    want = frozenset(subset)
    for rank, s in zip(table["rank"], table["subset"], strict=True):
        if frozenset(s.split(",")) == want:
            return int(rank)
    return None


# ----------------------------------------------------------------------------- honest validation


def spatial_blocks(lat: np.ndarray, lon: np.ndarray, *, size_deg: float = 5.0) -> np.ndarray:
    """Integer id of the ``size_deg`` x ``size_deg`` block holding each (lat, lon)."""
    if size_deg <= 0:
        raise ConfigError(f"block size must be > 0 degrees, got {size_deg}")
    lon = ((np.asarray(lon, dtype=float) + 180.0) % 360.0) - 180.0
    i = np.floor((np.clip(np.asarray(lat, dtype=float), -90, 89.999999) + 90.0) / size_deg)
    j = np.floor((lon + 180.0) / size_deg)
    return (i * np.ceil(360.0 / size_deg) + j).astype(np.int64)


def group_folds(groups: np.ndarray, *, n_folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """scikit-learn ``GroupKFold`` folds: no group on both sides of a split."""
    from sklearn.model_selection import GroupKFold

    groups = np.asarray(groups)
    n_groups = np.unique(groups).size
    if n_groups < 2:
        raise ConfigError(f"grouped cross-validation needs >= 2 groups, got {n_groups}")
    k = min(n_folds, n_groups)
    dummy = np.zeros((groups.size, 1))
    return [(tr, te) for tr, te in GroupKFold(n_splits=k).split(dummy, groups=groups)]


def random_folds(n: int, *, n_folds: int = 5, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Plain shuffled ``KFold`` folds (same fold sizes as the grouped ones)."""
    from sklearn.model_selection import KFold

    rs = int(np.random.default_rng(np.random.SeedSequence(seed)).integers(2**31 - 1))
    return list(KFold(n_splits=n_folds, shuffle=True, random_state=rs).split(np.zeros((n, 1))))


def honest_validation(
    X: np.ndarray,
    y: np.ndarray,
    *,
    schemes: dict[str, list[tuple[np.ndarray, np.ndarray]]],
    forest: ForestConfig,
    seed: int,
    flux: str,
    reference: str = "random",
    trainer: str = DEFAULT_TRAINER,
) -> pd.DataFrame:
    """Score one predictor set under several validation schemes; add the optimism gaps.

    ``schemes`` maps a name to its folds (train, test) index pairs, e.g. ``"replicate 80/20"``,
    ``"random"`` (KFold), ``"study"``, ``"block5"`` (GroupKFold). Columns: ``scheme``,
    ``folds``, ``rmse``, ``rmse_sd``, ``r2``, ``r2_sd``, and against ``reference``:
    ``optimism_r2 = r2[reference] - r2`` and ``optimism_rmse = rmse - rmse[reference]``
    (positive = the reference scheme is optimistic).
    """
    check_reference(schemes, reference)
    scores = {
        name: score_folds(X, y, folds, forest=forest, seed=seed, flux=flux, trainer=trainer)
        for name, folds in schemes.items()
    }
    return validation_table(scores, reference=reference)


def check_reference(schemes: dict, reference: str) -> None:
    """Refuse a reference scheme that is not among ``schemes`` (before any forest is grown)."""
    if reference not in schemes:
        raise ConfigError(f"honest_validation: reference scheme {reference!r} not among schemes")


def validation_table(scores: dict[str, np.ndarray], *, reference: str) -> pd.DataFrame:
    """The table of :func:`honest_validation` from each scheme's ``(n_folds, 2)`` held-out
    ``[rmse, r2]`` per fold."""
    check_reference(scores, reference)
    rows = []
    for name, s in scores.items():
        ddof = 1 if len(s) > 1 else 0
        rows.append(
            {
                "scheme": name,
                "folds": len(s),
                "rmse": float(s[:, 0].mean()),
                "rmse_sd": float(s[:, 0].std(ddof=ddof)),
                "r2": float(s[:, 1].mean()),
                "r2_sd": float(s[:, 1].std(ddof=ddof)),
            }
        )
    table = pd.DataFrame(rows)
    ref = table.set_index("scheme").loc[reference]
    table["optimism_r2"] = ref["r2"] - table["r2"]
    table["optimism_rmse"] = table["rmse"] - ref["rmse"]
    return table


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Candidates:
    """The candidates that could be built from the drivers, and those excluded (with why)."""

    names: tuple[str, ...]
    excluded: dict[str, str]


def prepare_candidates(config, *, candidates: Sequence[str], explicit: bool):
    """``(inputs, Candidates)``: :func:`srgpu.data.inputs.prepare_inputs` for ALL candidates (both
    fluxes), dropping candidates the drivers cannot provide.

    A candidate whose driver is missing (``build_predictors`` raises an ``InputError`` naming
    it) is excluded with its reason; when ``explicit`` (the user listed the candidates) it is an
    error instead.
    """
    from srgpu.config import PREDICTOR_NAMES, TRAINED_FLUXES
    from srgpu.data.inputs import prepare_inputs
    from srgpu.errors import InputError

    bad = [c for c in candidates if c not in PREDICTOR_NAMES]
    if bad:
        raise ConfigError(f"unknown candidate(s) {bad}; expected names from {PREDICTOR_NAMES}")
    names = [n for n in PREDICTOR_NAMES if n in candidates]
    excluded: dict[str, str] = {}
    while True:
        if not names:
            raise ConfigError(
                "no candidate predictor can be built from the drivers: "
                + "; ".join(f"{k}: {v}" for k, v in excluded.items())
            )
        cfg = config.replace(predictors=tuple((f, tuple(names)) for f in TRAINED_FLUXES))
        try:
            return prepare_inputs(cfg), Candidates(tuple(names), excluded)
        except InputError as exc:
            if exc.field not in names:
                raise
            if explicit:
                raise InputError(
                    f"candidate {exc.field} was requested but cannot be built: {exc}",
                    field=exc.field,
                    expected="drivers that provide it, or leave it out of --candidates",
                ) from None
            excluded[exc.field] = str(exc)
            names.remove(exc.field)


def study_groups(table: pd.DataFrame) -> np.ndarray:
    """Study number of each record; a record without one is its own group."""
    if "study" not in table.columns:
        return np.arange(len(table))
    s = pd.to_numeric(table["study"], errors="coerce")
    out = s.to_numpy(dtype=float, na_value=np.nan)
    missing = ~np.isfinite(out)
    out[missing] = -1.0 - np.arange(int(missing.sum()))
    return out.astype(np.int64)


def validation_schemes(
    table: pd.DataFrame,
    splits: Sequence[Split],
    *,
    n_folds: int = 5,
    seed: int,
    block_deg: float = 5.0,
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """The four schemes of the honest validation: the ensemble's replicate 80/20 draws, random
    5-fold, 5-fold by study and 5-fold by 5° block."""
    lat = table["lat"].to_numpy(dtype=float)
    lon = table["lon"].to_numpy(dtype=float)
    return {
        "replicate 80/20": [(s.train, s.test) for s in splits],
        f"random {n_folds}-fold": random_folds(len(table), n_folds=n_folds, seed=seed),
        f"study {n_folds}-fold": group_folds(study_groups(table), n_folds=n_folds),
        f"{block_deg:g}deg-block {n_folds}-fold": group_folds(
            spatial_blocks(lat, lon, size_deg=block_deg), n_folds=n_folds
        ),
    }


def subset_size_ticks(table: pd.DataFrame) -> list[int]:
    """The x ticks of :func:`plot_selection`: every subset size present, as integers."""
    return sorted(int(v) for v in pd.unique(table["size"]))


def plot_selection(table: pd.DataFrame, path, *, flux: str, highlight: Sequence[str] = ()) -> None:
    """PNG: held-out RMSE of every subset against its size, best per size joined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)  # jitter only, not a result
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = table["size"].to_numpy() + rng.uniform(-0.15, 0.15, len(table))
    ax.scatter(x, table["rmse"], s=8, alpha=0.5, color="tab:gray", label="subset")
    best = table.groupby("size")["rmse"].min()
    ax.plot(best.index, best.values, "o-", color="tab:blue", label="best per size")
    top = table.iloc[0]
    ax.scatter([top["size"]], [top["rmse"]], s=60, color="tab:red", zorder=3, label="best")
    if highlight:
        r = find_rank(table, highlight)
        if r is not None:
            row = table.iloc[r - 1]
            ax.scatter(
                [row["size"]],
                [row["rmse"]],
                s=60,
                marker="s",
                facecolor="none",
                edgecolor="tab:green",
                zorder=3,
                label=f"paper set (rank {r})",
            )
    ax.set_xticks(subset_size_ticks(table))  # whole numbers only: a size is a count
    ax.set_xlabel("number of predictors")
    ax.set_ylabel(f"{flux} held-out RMSE (g C m-2 yr-1)")
    ax.set_title(f"{flux}: complete combinatorial selection ({len(table)} subsets)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
