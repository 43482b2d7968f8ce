"""``srgpu select``: complete combinatorial predictor selection with honest validation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.cli._progress import count_progress
from srgpu.errors import ConfigError


def _candidate_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--candidates: empty list")
    return names


RMSE_UNIT = "g C m-2 yr-1"
"""The unit of every RMSE column (held-out error of the flux)."""


def _pm(mean: float, sd: float, fmt: str) -> str:
    return f"{mean:{fmt}} ± {sd:{fmt}}"


def ranking_table(table, *, flux: str, repeats: int, top: int = 10):
    """The console table of the best ``top`` subsets: RMSE and ΔRMSE in g C m-2 yr-1 with one
    decimal, R² with three, each as mean ± SD over the paired draws."""
    from rich.table import Table

    t = Table(title=f"{flux}: top {top} of {len(table)} subsets ({repeats} paired 80/20 draws)")
    for col in ("rank", "subset", f"RMSE ({RMSE_UNIT})", "R²", f"ΔRMSE vs best ({RMSE_UNIT})"):
        t.add_column(col, justify="right" if col != "subset" else "left", overflow="fold")
    for _, row in table.head(top).iterrows():
        t.add_row(
            str(row["rank"]),
            row["subset"],
            _pm(row["rmse"], row["rmse_sd"], ".1f"),
            _pm(row["r2"], row["r2_sd"], ".3f"),
            _pm(row["d_rmse"], row["d_rmse_sd"], ".1f"),
        )
    return t


def paper_line(table, *, paper, rank: int) -> str:
    """One line: the paper's predictor set, its rank and its RMSE (with unit)."""
    row = table.iloc[rank - 1]
    return (
        f"paper set {','.join(paper)}: rank {rank}, RMSE {row['rmse']:.1f} {RMSE_UNIT} "
        f"(+{row['d_rmse']:.1f} ± {row['d_rmse_sd']:.1f} vs best), R² {row['r2']:.3f}"
    )


def honest_table(validation, *, flux: str, folds: int):
    """The console table of the honest validation: RMSE and its optimism in g C m-2 yr-1
    with one decimal, R² and its optimism with three."""
    from rich.table import Table

    v = Table(title=f"{flux}: honest validation (optimism of random vs grouped {folds}-fold CV)")
    for col in (
        "set",
        "scheme",
        f"RMSE ({RMSE_UNIT})",
        "R²",
        "optimism R²",
        f"optimism RMSE ({RMSE_UNIT})",
    ):
        v.add_column(col)
    for _, row in validation.iterrows():
        v.add_row(
            row["set"],
            row["scheme"],
            f"{row['rmse']:.1f}",
            f"{row['r2']:.3f}",
            f"{row['optimism_r2']:+.3f}",
            f"{row['optimism_rmse']:+.1f}",
        )
    return v


def calibration_console_table(calibration: dict, *, flux: str, folds: int):
    """The console table of the predictive distribution's calibration under each validation
    scheme: coverage of the central 50/90/95 % intervals (% of held-out records) and mean CRPS
    in g C m-2 yr-1, each the mean over the folds."""
    from rich.table import Table

    from srgpu.analysis.selection_calibration import calibration_table

    t = Table(
        title=f"{flux}: predictive-distribution calibration, random vs grouped {folds}-fold "
        "hold-out (mean over folds)"
    )
    for col in ("set", "scheme", "50 %", "90 %", "95 %", f"CRPS ({RMSE_UNIT})"):
        t.add_column(col)
    for _, row in calibration_table(calibration).iterrows():
        t.add_row(
            row["set"],
            row["scheme"],
            f"{100 * row['cov50']:.1f}",
            f"{100 * row['cov90']:.1f}",
            f"{100 * row['cov95']:.1f}",
            _pm(row["crps"], row["crps_sd"], ".1f"),
        )
    return t


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def select(
        flux: Annotated[str, typer.Option(help="SR or HR.")] = "SR",
        candidates: Annotated[
            str | None,
            typer.Option(help="Comma-separated candidates (default: all ten that can be built)."),
        ] = None,
        repeats: Annotated[int, typer.Option(help="Stratified 80/20 draws per subset.")] = 5,
        trees: Annotated[int, typer.Option(help="Trees per forest (paper: 500).")] = 100,
        workers: Annotated[
            int | None, typer.Option(help="Run on a local Dask cluster with N worker processes.")
        ] = None,
        threads: Annotated[
            int | None, typer.Option(help="Threads without --workers (default: all cores).")
        ] = None,
        srdb: Annotated[str | None, typer.Option(help="SRDB-format CSV (plain or gzip).")] = None,
        drivers: Annotated[
            list[str] | None, typer.Option(help="Driver files, a directory or a glob; repeatable.")
        ] = None,
        vegetation: Annotated[str | None, typer.Option(help="IGBP land-cover map.")] = None,
        var: Annotated[
            list[str] | None, typer.Option(help="ROLE=VARIABLE override of driver names.")
        ] = None,
        config: Annotated[Path | None, typer.Option(help="TOML config; flags override it.")] = None,
        seed: Annotated[int | None, typer.Option(help="Master seed (draws and forests).")] = None,
        sampling: Annotated[str | None, typer.Option(help="area (paper) or equal.")] = None,
        folds: Annotated[int, typer.Option(help="Folds of the honest validation.")] = 5,
        validate: Annotated[
            bool, typer.Option(help="Grouped (study, 5° block) CV of the best and paper sets.")
        ] = True,
        calibrate: Annotated[
            bool,
            typer.Option(
                help="Calibration of the predictive distribution on the validation's folds."
            ),
        ] = True,
        out: Annotated[Path, typer.Option(help="Output directory.")] = Path("srgpu-select"),
        quiet: Annotated[bool, typer.Option(help="No progress or tables.")] = False,
    ) -> None:
        """Score every non-empty subset of the candidate predictors by repeated stratified 80/20
        hold-out (the ensemble's own draws, shared by all subsets); write the ranked table
        (CSV), a plot of RMSE against subset size (PNG) and the honest-validation table."""
        from srgpu.config import check_param

        for name, value in (
            ("select.folds", folds),
            ("select.repeats", repeats),
            ("select.trees", trees),
            ("select.threads", threads),
            ("workers", workers),
        ):
            check_param(name, value)
        from srgpu.analysis.selection_workflow import prepare_selection, run_selection
        from srgpu.cli.ensemble import build_config

        cfg = build_config(
            config_file=config,
            srdb=srdb,
            drivers=drivers,
            vegetation=vegetation,
            trees=trees,
            seed=seed,
            sampling=sampling,
            variables=var,
        )
        setup = prepare_selection(
            cfg, flux=flux, candidates=_candidate_list(candidates), repeats=repeats
        )
        for name, why in setup.candidates.excluded.items():
            console.print(f"[yellow]excluded candidate {name}[/]: {why}", highlight=False)
        if not quiet:
            src = "embedded demo world" if cfg.is_demo else str(cfg.srdb)
            console.print(
                f"srgpu select {flux}: {src}; {setup.records} records; candidates "
                f"{','.join(setup.candidates.names)} ({setup.n_subsets} subsets) x {repeats} "
                f"draws x {cfg.forest.trees} trees",
                highlight=False,
            )
        with count_progress(
            setup.n_subsets, label="subsets", unit="sub", console=console, enabled=not quiet
        ) as progress:
            result = run_selection(
                setup,
                workers=workers,
                threads=threads,
                folds=folds,
                validate=validate,
                calibrate=calibrate,
                on_progress=progress,
            )
        paths = result.write(out)
        table, validation, paper_rank = result.table, result.validation, result.paper_rank
        paper = setup.paper_set
        elapsed = result.elapsed_s

        if quiet:
            return
        console.print(ranking_table(table, flux=flux, repeats=repeats))
        if paper_rank is not None:
            console.print(paper_line(table, paper=paper, rank=paper_rank), highlight=False)
        if validation is not None:
            console.print(honest_table(validation, flux=flux, folds=folds))
        if result.calibration is not None:
            console.print(calibration_console_table(result.calibration, flux=flux, folds=folds))
            console.print(
                f"calibration: {result.calibration_s:.1f} s over the validation's forests",
                highlight=False,
            )
        console.print(
            f"wrote {paths['table']}, {paths['plot']} in {elapsed:.0f} s", highlight=False
        )
