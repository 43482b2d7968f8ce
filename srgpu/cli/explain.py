"""``srgpu explain``: importance, partial dependence and area of applicability of an ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.config import TRAINED_FLUXES
from srgpu.errors import ConfigError
from srgpu.results import open_run


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def explain(
        store: Annotated[Path, typer.Argument(help="Output directory of `srgpu ensemble`.")],
        replicates: Annotated[
            int, typer.Option(help="Replicates to re-grow and explain (0..N-1).")
        ] = 10,
        repeats: Annotated[int, typer.Option(help="Shuffles per permutation importance.")] = 5,
        points: Annotated[int, typer.Option(help="Grid points per partial-dependence curve.")] = 20,
        rows: Annotated[int, typer.Option(help="Records averaged per PD point.")] = 500,
        engine: Annotated[str, typer.Option(help="Inference engine for PD.")] = "auto",
        flux: Annotated[list[str] | None, typer.Option(help="SR and/or HR (default both).")] = None,
        out: Annotated[Path | None, typer.Option(help="Output directory (default STORE).")] = None,
    ) -> None:
        """Re-grow replicate forests from the store's config and explain them: permutation and
        impurity importance, partial dependence with replicate bands, dissimilarity index and
        area of applicability. Writes OUT/explain.nc and PNG figures."""
        from srgpu.analysis.explain import (
            explain_flux,
            explanation_dataset,
            plot_explanation,
            summary_lines,
        )
        from srgpu.data.inputs import prepare_inputs
        from srgpu.forest.engines import get_engine
        from srgpu.provenance import resolve_inputs

        run = open_run(store)
        ds, cfg = run.dataset, resolve_inputs(run.require_config(), run.out)
        n_rep = int(ds.sizes.get("replicate", cfg.n_replicates))
        if replicates < 1:
            raise ConfigError(f"--replicates must be >= 1, got {replicates}")
        fluxes = flux or list(TRAINED_FLUXES)
        bad = [f for f in fluxes if f not in TRAINED_FLUXES]
        if bad:
            raise ConfigError(f"--flux {bad}: expected SR and/or HR")
        k = min(replicates, n_rep)
        console.print(
            f"srgpu explain: re-growing {k} of {n_rep} replicates x {cfg.forest.trees} trees "
            f"for {', '.join(fluxes)}",
            highlight=False,
        )
        inputs = prepare_inputs(cfg)
        eng = get_engine(engine, device="cpu")
        with console.status("explaining") as status:  # a live line per stage
            results = [
                explain_flux(
                    inputs,
                    cfg,
                    flux=f,
                    replicates=range(k),
                    engine=eng,
                    repeats=repeats,
                    points=points,
                    rows=rows,
                    progress=status.update,
                )
                for f in fluxes
            ]
        xds = explanation_dataset(results, inputs, store=ds)
        xds.attrs["config_hash"] = ds.attrs.get("config_hash", cfg.hash())
        out_dir = out or (store if store.suffix != ".zarr" else store.parent)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "explain.nc"
        xds.to_netcdf(path)
        figs = plot_explanation(xds, out_dir)
        for line in summary_lines(xds):
            console.print(line, highlight=False)
        console.print(f"wrote {path} and {len(figs)} figures", highlight=False)
