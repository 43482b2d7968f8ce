"""The ``srgpu select`` workflow as library functions: set up, search, validate, write.

:func:`prepare_selection` builds the inputs for every candidate predictor (dropping those the
drivers cannot provide) and the ensemble's own draws; :func:`run_selection` scores every subset
(:func:`srgpu.analysis.selection.search_subsets`, on a Dask cluster from
:func:`srgpu.run.cluster.make_client` when ``workers`` or ``scheduler`` is given) and scores the
best and the paper's set by honest (grouped) cross-validation. The :class:`SelectionResult`
writes the command's files; the command line only parses, calls and prints.

Files (``SelectionResult.write``): ``selection_F.csv`` (the ranked table; RMSE in
g C m-2 yr-1, R² in 1), ``selection_F.png`` (RMSE against subset size),
``validation_F.csv`` (honest validation, when run), ``calibration_F.csv`` (calibration of the
predictive distribution under the same schemes, when run:
:mod:`srgpu.analysis.selection_calibration`) and ``selection_F.json`` (options, headline
numbers and the calibration under ``calibration``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from srgpu.analysis.selection import (
    Candidates,
    SelectionProblem,
    find_rank,
    honest_validation,
    plot_selection,
    prepare_candidates,
    repeat_splits,
    search_subsets,
    validation_schemes,
)
from srgpu.analysis.selection_calibration import calibrated_validation, calibration_table
from srgpu.config import PAPER_PREDICTORS, PREDICTOR_NAMES, TRAINED_FLUXES, EnsembleConfig
from srgpu.errors import ConfigError


@dataclass(frozen=True)
class SelectionSetup:
    """What the search runs on: the config, the inputs of every candidate and the problem."""

    config: EnsembleConfig
    flux: str
    inputs: Any
    candidates: Candidates
    problem: SelectionProblem
    repeats: int

    @property
    def records(self) -> int:
        return int(len(self.problem.y))

    @property
    def n_subsets(self) -> int:
        return 2 ** len(self.candidates.names) - 1

    @property
    def paper_set(self) -> list[str]:
        """The paper's predictors of the flux that are among the candidates."""
        return [n for n in PAPER_PREDICTORS[self.flux] if n in self.candidates.names]


@dataclass
class SelectionResult:
    """The ranked table, the honest validation and the headline numbers of one selection."""

    setup: SelectionSetup
    table: pd.DataFrame
    validation: pd.DataFrame | None
    paper_rank: int | None
    elapsed_s: float
    calibration: dict[str, dict[str, dict]] | None = None
    """``{set: {scheme: summary}}``: the predictive distribution's calibration over each
    validation scheme's folds (:func:`srgpu.calibration.summarise_replicates`), when run."""
    calibration_s: float | None = None
    """Extra wall time of the calibration (leaf tables and held-out weights), seconds."""

    @property
    def flux(self) -> str:
        return self.setup.flux

    def meta(self) -> dict[str, Any]:
        """The contents of ``selection_F.json``."""
        s, table = self.setup, self.table
        return {
            "flux": s.flux,
            "records": s.records,
            "candidates": list(s.candidates.names),
            "excluded": s.candidates.excluded,
            "repeats": s.repeats,
            "trees": s.config.forest.trees,
            "seed": s.config.seed,
            "sampling": s.config.sampling,
            "subsets": int(len(table)),
            "elapsed_s": round(self.elapsed_s, 1),
            "best": table.iloc[0][["subset", "rmse", "r2"]].to_dict(),
            "paper_set": ",".join(s.paper_set),
            "paper_rank": self.paper_rank,
            "paper_d_rmse": None
            if self.paper_rank is None
            else float(table.iloc[self.paper_rank - 1]["d_rmse"]),
            "calibration": None
            if self.calibration is None
            else {
                "units": {"coverage": "1", "pit_hist": "1", "crps": "g C m-2 yr-1"},
                "definition": "quantile-regression-forest predictive distribution of each "
                "fold's forest (leaf tables on the fold's training records, all rows) on the "
                "fold's held-out records; mean and sd over folds",
                "grouped_schemes": [
                    k
                    for k in next(iter(self.calibration.values()), {})
                    if "study" in k or "block" in k
                ],
                "extra_s": None if self.calibration_s is None else round(self.calibration_s, 1),
                "sets": self.calibration,
            },
        }

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write the files of the module docstring to ``out``; returns them by kind."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        F = self.flux
        paths = {"table": out / f"selection_{F}.csv", "plot": out / f"selection_{F}.png"}
        self.table.to_csv(paths["table"], index=False, float_format="%.4f")
        plot_selection(self.table, paths["plot"], flux=F, highlight=self.setup.paper_set)
        if self.validation is not None:
            paths["validation"] = out / f"validation_{F}.csv"
            self.validation.to_csv(paths["validation"], index=False, float_format="%.4f")
        if self.calibration is not None:
            paths["calibration"] = out / f"calibration_{F}.csv"
            calibration_table(self.calibration).to_csv(
                paths["calibration"], index=False, float_format="%.4f"
            )
        paths["meta"] = out / f"selection_{F}.json"
        paths["meta"].write_text(json.dumps(self.meta(), indent=2, default=float))
        return paths


def prepare_selection(
    config: EnsembleConfig,
    *,
    flux: str = "SR",
    candidates: Sequence[str] | None = None,
    repeats: int = 5,
) -> SelectionSetup:
    """Inputs of every candidate (default: all of ``PREDICTOR_NAMES`` that the drivers can
    provide; a listed candidate that cannot be built is an error) and the ensemble's draws
    of replicates ``0..repeats-1``, shared by all subsets."""
    from srgpu.run.replicate import draw_weights

    if flux not in TRAINED_FLUXES:
        raise ConfigError(f"flux {flux!r}: expected one of {TRAINED_FLUXES}")
    explicit = candidates is not None
    names = list(candidates) if candidates is not None else list(PREDICTOR_NAMES)
    inputs, cands = prepare_candidates(config, candidates=names, explicit=explicit)
    data = inputs.fluxes[flux]
    splits = repeat_splits(
        bins=data.bins,
        weights=draw_weights(config, inputs),
        train_fraction=config.train_fraction,
        seed=config.seed,
        flux=flux,
        repeats=repeats,
    )
    problem = SelectionProblem(
        names=cands.names,
        X=data.X,
        y=data.y,
        splits=splits,
        forest=config.forest,
        seed=config.seed,
        flux=flux,
        trainer=config.train.cpu_trainer,
    )
    return SelectionSetup(
        config=config,
        flux=flux,
        inputs=inputs,
        candidates=cands,
        problem=problem,
        repeats=repeats,
    )


def run_selection(
    setup: SelectionSetup,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    folds: int = 5,
    validate: bool = True,
    calibrate: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
) -> SelectionResult:
    """Score every subset and, with ``validate``, the best and the paper's set by honest
    cross-validation (``folds`` folds, reference: random k-fold); with ``calibrate`` (and
    ``validate``) also the calibration of their predictive distributions over the same folds
    (:func:`srgpu.analysis.selection_calibration.calibrated_validation`: the same forests, each
    grown once).

    ``workers``: a local Dask cluster of that many single-thread worker processes;
    ``scheduler``: an existing cluster's address; neither: Dask's threaded scheduler with
    ``threads`` threads (default: all cores). The numbers do not depend on which.
    ``on_progress(done, total)`` is called as subsets finish.
    """
    from srgpu.backend import cpu_backend
    from srgpu.run.cluster import make_client

    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    problem = setup.problem
    t0 = time.perf_counter()
    backend = cpu_backend("the selection grows forests on the host's cores")
    with make_client(workers=workers, scheduler=scheduler, backend=backend) as client:
        if client is not None:
            table = search_subsets(problem, client=client, on_progress=on_progress)
        else:
            table = search_subsets(problem, threads=threads, on_progress=on_progress)
    elapsed = time.perf_counter() - t0

    paper = setup.paper_set
    paper_rank = find_rank(table, paper) if paper else None
    validation = calibration = calibration_s = None
    if validate:
        sets = {"best": table.iloc[0]["subset"].split(",")}
        if paper:
            sets["paper"] = paper
        data = setup.inputs.fluxes[setup.flux]
        schemes = validation_schemes(
            data.table, problem.splits, n_folds=folds, seed=setup.config.seed
        )
        parts = []
        if calibrate:
            calibration, calibration_s = {}, 0.0
        for label, subset in sets.items():
            cols = [setup.candidates.names.index(n) for n in subset]
            kw = dict(
                schemes=schemes,
                forest=setup.config.forest,
                seed=setup.config.seed,
                flux=setup.flux,
                reference=f"random {folds}-fold",
                trainer=setup.config.train.cpu_trainer,
            )
            if calibrate and label == "paper" and list(subset) == list(sets["best"]):
                # the same columns, the same forests: the best set's numbers, not grown twice
                v = parts[0].drop(columns=["set", "subset"])
                calibration[label] = calibration["best"]
            elif calibrate:
                v, calibration[label] = calibrated_validation(data.X[:, cols], data.y, **kw)
                calibration_s += sum(c["extra_s"] for c in calibration[label].values())
            else:
                v = honest_validation(data.X[:, cols], data.y, **kw)
            v.insert(0, "subset", ",".join(subset))
            v.insert(0, "set", label)
            parts.append(v)
        validation = pd.concat(parts, ignore_index=True)
    return SelectionResult(
        setup=setup,
        table=table,
        validation=validation,
        paper_rank=paper_rank,
        elapsed_s=elapsed,
        calibration=calibration,
        calibration_s=calibration_s,
    )
