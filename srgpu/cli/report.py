"""``srgpu report STORE [--compare DIR | --model NAME=PATH ...] [--out DIR]``: HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.cli.compare import parse_models, parse_years


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app``."""

    @app.command("report")
    @handle_errors
    def report_cmd(
        store: Annotated[
            Path, typer.Argument(help="Ensemble output directory (OUT) or OUT/ensemble.zarr.")
        ],
        compare_dir: Annotated[
            Path | None,
            typer.Option("--compare", help="Output directory of srgpu compare to include."),
        ] = None,
        model: Annotated[
            list[str] | None,
            typer.Option(
                "--model", "-m", help="NAME=PATH of a model to compare (runs srgpu compare)."
            ),
        ] = None,
        out: Annotated[
            Path | None, typer.Option(help="Output directory (default: OUT/report).")
        ] = None,
        root_fraction: Annotated[
            float | None,
            typer.Option(help="With --model: root share of total ra (see srgpu compare)."),
        ] = None,
        method: Annotated[
            str, typer.Option(help="With --model: regridding, conservative or nearest.")
        ] = "conservative",
        years: Annotated[
            str | None,
            typer.Option(help="With --model: comparison period FIRST-LAST (see srgpu compare)."),
        ] = None,
        band_deg: Annotated[
            float | None,
            typer.Option(help="With --model: latitude band width (see srgpu compare)."),
        ] = None,
        band: Annotated[
            str | None,
            typer.Option(
                help="With --model: uncertainty band of the scores, predictive or spread "
                "(see srgpu compare)."
            ),
        ] = None,
    ) -> None:
        """Write a self-contained HTML report (maps, profiles, totals, validation, models)."""
        from srgpu.analysis.report import build_report

        path = build_report(
            store,
            out=out,
            compare_dir=compare_dir,
            models=parse_models(model),
            root_fraction=root_fraction,
            method=method,
            years=parse_years(years),
            band_deg=band_deg,
            band=band,
        )
        console.print(f"report written to {path}", highlight=False, markup=False)
