"""The replicate recipe, draw -> train -> validate, in one place.

Replicate ``r`` of flux ``F`` (Lu et al. 2021: one forest per replicate and flux, each on its
own area-weighted stratified 80 % draw):

1. **draw** (:func:`draw`): :func:`srgpu.run.sampling.replicate_split` of the flux's records,
   with the bin weights of ``config.sampling``, ``config.train_fraction`` and ``config.seed``;
2. **train** (:func:`grow`): one forest on the drawn training rows, seeded by
   ``replicate_seed(seed, r, F, PURPOSE_FOREST)``, by the trainer of ``config.train``
   (:class:`srgpu.config.TrainConfig`): on the host's cores (srgpu's numba grower or
   scikit-learn) or with cuML on the GPU;
3. **validate** (:func:`validate`): :func:`srgpu.run.stats.validation_metrics` of the forest's
   predictions on the held-out rows.

The ensemble's batches (:mod:`srgpu.run.batch`), ``srgpu explain`` (which re-grows the very
forests whose maps are in the store) and the predictor selection (which scores every subset on
the ensemble's own draws and forest seeds, :func:`score_folds`) all call these functions, so
the three cannot drift apart. Every function is pure: the result depends only on its
arguments, never on the thread or worker that runs it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from srgpu.config import EnsembleConfig, ForestConfig
from srgpu.forest.trainers import DEFAULT_TRAINER
from srgpu.run.sampling import (
    PURPOSE_FOREST,
    Split,
    bin_weights,
    replicate_seed,
    replicate_split,
)
from srgpu.run.stats import validation_metrics


def draw_weights(config: EnsembleConfig, inputs: Any) -> dict[int, float]:
    """Weight of each stratification bin under ``config.sampling`` (see ``bin_weights``)."""
    return bin_weights(scheme=config.sampling, area_shares=inputs.area_shares)


def draw(inputs: Any, config: EnsembleConfig, *, replicate: int, flux: str) -> Split:
    """Step 1: replicate ``replicate``'s stratified train/test split of ``flux``'s records."""
    return replicate_split(
        bins=inputs.fluxes[flux].bins,
        weights=draw_weights(config, inputs),
        train_fraction=config.train_fraction,
        seed=config.seed,
        replicate=replicate,
        flux=flux,
    )


def grow(
    X: np.ndarray,
    y: np.ndarray,
    *,
    forest: ForestConfig,
    seed: int,
    replicate: int,
    flux: str,
    trainer: str = DEFAULT_TRAINER,
) -> Any:
    """Step 2: the forest of replicate ``replicate`` of ``flux`` on training rows ``X, y``.

    Seeded by ``replicate_seed(seed, replicate, flux, PURPOSE_FOREST)``. ``trainer`` is a
    resolved name of :data:`srgpu.forest.trainers.TRAINERS` (``TrainConfig.resolved``):
    ``"cuml"`` trains with cuML on the GPU (a 32-bit integer seed: the first word of the same
    seed sequence); ``"numba"``, ``"numba-exact"`` and ``"sklearn"`` on the host's cores (the
    same trees), also while a GPU infers (the training tables have a few thousand rows; cuML's
    speed on them is unmeasured).
    """
    seq = replicate_seed(seed, replicate, flux, PURPOSE_FOREST)
    if trainer == "cuml":
        from srgpu.forest.cuml_train import fit_cuml_forest

        return fit_cuml_forest(X, y, forest=forest, seed=int(seq.generate_state(1)[0]))
    from srgpu.forest.train import fit_forest

    return fit_forest(X, y, forest=forest, seed=seq, trainer=trainer)


def validate(
    forest: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    predict: Callable[[np.ndarray], Any] | None = None,
) -> dict[str, float]:
    """Step 3: held-out metrics (``r2``, ``rmse``, ``r``) of ``forest`` on ``X_test, y_test``.

    ``predict``: another way to the same predictions (e.g. the inference engine's compiled copy
    of the forest, which gives the same bits); default ``forest.predict``.
    """
    y_hat = predict(X_test) if predict is not None else forest.predict(X_test)
    return validation_metrics(y_test, np.asarray(y_hat))


def train_replicate(
    inputs: Any, config: EnsembleConfig, replicate: int, flux: str
) -> tuple[Any, Split]:
    """Steps 1 and 2 for the ensemble's inputs: ``(forest, split)`` of replicate ``replicate``."""
    split = draw(inputs, config, replicate=replicate, flux=flux)
    data = inputs.fluxes[flux]
    forest = grow(
        data.X[split.train],
        data.y[split.train],
        forest=config.forest,
        seed=config.seed,
        replicate=replicate,
        flux=flux,
        trainer=config.train.resolved[1],
    )
    return forest, split


def train_replicates(
    inputs: Any,
    config: EnsembleConfig,
    jobs: Sequence[tuple[int, str]],
    *,
    threads: int | None = None,
) -> list[tuple[Any, Split]]:
    """:func:`train_replicate` of every ``(replicate, flux)`` job, on a thread pool (the growers
    release the GIL); results in the order of ``jobs``. ``threads``: default one per job, at
    most the number of cores."""
    jobs = list(jobs)
    threads = threads or min(len(jobs), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lambda job: train_replicate(inputs, config, *job), jobs))


def score_folds(
    X: np.ndarray,
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    forest: ForestConfig,
    seed: int,
    flux: str,
    trainer: str = DEFAULT_TRAINER,
    on_fold: Callable[[int, Any, np.ndarray, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Steps 2 and 3 on given folds: ``(n_folds, 2)`` held-out ``[rmse, r2]``.

    Fold ``i`` = ``(train, test)`` row indices grows its forest as replicate ``i`` does (on the
    host's cores, by ``trainer``: ``TrainConfig.cpu_trainer``); with the ensemble's own draws
    as folds, these are its replicates' scores. ``on_fold(i, forest, train, test)``, when
    given, is called with each fold's forest after it is scored (a second use of the same
    forest, e.g. its calibration: :func:`srgpu.analysis.selection_calibration.calibrate_folds`).
    """
    out = np.empty((len(folds), 2))
    for i, (train, test) in enumerate(folds):
        rf = grow(
            X[train], y[train], forest=forest, seed=seed, replicate=i, flux=flux, trainer=trainer
        )
        m = validate(rf, X[test], y[test])
        out[i] = (m["rmse"], m["r2"])
        if on_fold is not None:
            on_fold(i, rf, train, test)
    return out
