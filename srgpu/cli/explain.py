"""``srgpu explain``: importance, partial dependence and area of applicability of an ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.config import check_param


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
        from srgpu.analysis.explain import explain_run, plan_explain

        for name, value in (
            ("explain.replicates", replicates),
            ("explain.repeats", repeats),
            ("explain.points", points),
            ("explain.rows", rows),
        ):
            check_param(name, value)
        plan = plan_explain(store, replicates=replicates, fluxes=flux)
        console.print(
            f"srgpu explain: re-growing {plan.replicates} of {plan.n_replicates} replicates x "
            f"{plan.config.forest.trees} trees for {', '.join(plan.fluxes)}",
            highlight=False,
        )
        with console.status("explaining") as status:  # a live line per stage
            result = explain_run(
                plan,
                engine=engine,
                repeats=repeats,
                points=points,
                rows=rows,
                progress=status.update,
            )
        path, figs = result.write(out)
        for line in result.summary_lines():
            console.print(line, highlight=False)
        console.print(f"wrote {path} and {len(figs)} figures", highlight=False)
