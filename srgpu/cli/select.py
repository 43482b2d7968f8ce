"""``srgpu select``: complete combinatorial predictor selection with honest validation."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.config import FLUXES, PAPER_PREDICTORS, PREDICTOR_NAMES
from srgpu.errors import ConfigError


def _candidate_list(text: str | None) -> tuple[list[str], bool]:
    if text is None:
        return list(PREDICTOR_NAMES), False
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--candidates: empty list")
    return names, True


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
        out: Annotated[Path, typer.Option(help="Output directory.")] = Path("srgpu-select"),
        quiet: Annotated[bool, typer.Option(help="No progress or tables.")] = False,
    ) -> None:
        """Score every non-empty subset of the candidate predictors by repeated stratified 80/20
        hold-out (the ensemble's own draws, shared by all subsets); write the ranked table
        (CSV), a plot of RMSE against subset size (PNG) and the honest-validation table."""
        from rich.table import Table

        from srgpu.analysis.selection import (
            SelectionProblem,
            find_rank,
            honest_validation,
            plot_selection,
            prepare_candidates,
            repeat_splits,
            search_subsets,
            validation_schemes,
        )
        from srgpu.cli.ensemble import build_config
        from srgpu.run.sampling import bin_weights

        if flux not in FLUXES:
            raise ConfigError(f"--flux {flux!r}: expected one of {FLUXES}")
        if workers is not None and workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        names, explicit = _candidate_list(candidates)
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
        inputs, cands = prepare_candidates(cfg, candidates=names, explicit=explicit)
        for name, why in cands.excluded.items():
            console.print(f"[yellow]excluded candidate {name}[/]: {why}", highlight=False)
        data = inputs.fluxes[flux]
        splits = repeat_splits(
            bins=data.bins,
            weights=bin_weights(scheme=cfg.sampling, area_shares=inputs.area_shares),
            train_fraction=cfg.train_fraction,
            seed=cfg.seed,
            flux=flux,
            repeats=repeats,
        )
        problem = SelectionProblem(
            names=cands.names,
            X=data.X,
            y=data.y,
            splits=splits,
            forest=cfg.forest,
            seed=cfg.seed,
            flux=flux,
        )
        n_sub = 2 ** len(cands.names) - 1
        if not quiet:
            src = "embedded demo world" if cfg.is_demo else str(cfg.srdb)
            console.print(
                f"srgpu select {flux}: {src}; {len(data.y)} records; candidates "
                f"{','.join(cands.names)} ({n_sub} subsets) x {repeats} draws x "
                f"{cfg.forest.trees} trees",
                highlight=False,
            )
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if not quiet:
                el = time.perf_counter() - t0
                console.print(f"  {done}/{total} subsets, {el:.0f} s", highlight=False)

        if workers is not None:
            from distributed import Client, LocalCluster

            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                table = search_subsets(problem, client=client, on_progress=progress)
        else:
            table = search_subsets(problem, threads=threads, on_progress=progress)
        elapsed = time.perf_counter() - t0

        paper = [n for n in PAPER_PREDICTORS[flux] if n in cands.names]
        paper_rank = find_rank(table, paper) if paper else None
        csv = out / f"selection_{flux}.csv"
        table.to_csv(csv, index=False, float_format="%.4f")
        png = out / f"selection_{flux}.png"
        plot_selection(table, png, flux=flux, highlight=paper)

        validation = None
        if validate:
            sets = {"best": table.iloc[0]["subset"].split(",")}
            if paper:
                sets["paper"] = paper
            schemes = validation_schemes(data.table, splits, n_folds=folds, seed=cfg.seed)
            parts = []
            for label, subset in sets.items():
                cols = [cands.names.index(n) for n in subset]
                v = honest_validation(
                    data.X[:, cols],
                    data.y,
                    schemes=schemes,
                    forest=cfg.forest,
                    seed=cfg.seed,
                    flux=flux,
                    reference=f"random {folds}-fold",
                )
                v.insert(0, "subset", ",".join(subset))
                v.insert(0, "set", label)
                parts.append(v)
            import pandas as pd

            validation = pd.concat(parts, ignore_index=True)
            validation.to_csv(out / f"validation_{flux}.csv", index=False, float_format="%.4f")

        meta = {
            "flux": flux,
            "records": int(len(data.y)),
            "candidates": list(cands.names),
            "excluded": cands.excluded,
            "repeats": repeats,
            "trees": cfg.forest.trees,
            "seed": cfg.seed,
            "sampling": cfg.sampling,
            "subsets": int(len(table)),
            "elapsed_s": round(elapsed, 1),
            "best": table.iloc[0][["subset", "rmse", "r2"]].to_dict(),
            "paper_set": ",".join(paper),
            "paper_rank": paper_rank,
            "paper_d_rmse": None
            if paper_rank is None
            else float(table.iloc[paper_rank - 1]["d_rmse"]),
        }
        (out / f"selection_{flux}.json").write_text(json.dumps(meta, indent=2, default=float))

        if quiet:
            return
        t = Table(title=f"{flux}: top 10 of {len(table)} subsets ({repeats} paired 80/20 draws)")
        for col in ("rank", "subset", "RMSE", "R²", "ΔRMSE vs best"):
            t.add_column(col, justify="right" if col != "subset" else "left", overflow="fold")
        for _, row in table.head(10).iterrows():
            t.add_row(
                str(row["rank"]),
                row["subset"],
                f"{row['rmse']:.1f} ± {row['rmse_sd']:.1f}",
                f"{row['r2']:.3f} ± {row['r2_sd']:.3f}",
                f"{row['d_rmse']:.1f} ± {row['d_rmse_sd']:.1f}",
            )
        console.print(t)
        if paper_rank is not None:
            row = table.iloc[paper_rank - 1]
            console.print(
                f"paper set {','.join(paper)}: rank {paper_rank}, RMSE {row['rmse']:.1f} "
                f"(+{row['d_rmse']:.1f} ± {row['d_rmse_sd']:.1f} vs best), R² {row['r2']:.3f}",
                highlight=False,
            )
        if validation is not None:
            v = Table(
                title=f"{flux}: honest validation (optimism of random vs grouped {folds}-fold CV)"
            )
            for col in ("set", "scheme", "RMSE", "R²", "optimism R²", "optimism RMSE"):
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
            console.print(v)
        console.print(f"wrote {csv}, {png} in {elapsed:.0f} s", highlight=False)
