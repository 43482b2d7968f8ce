"""``srgpu report STORE [--compare DIR | --model NAME=PATH ...] [--out DIR]``: HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.errors import ConfigError


def _parse_models(specs: list[str] | None) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=PATH (a NetCDF file or directory)")
        if name in models:
            raise ConfigError(f"--model {name!r} given twice")
        models[name] = Path(path)
    return models


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
    ) -> None:
        """Write a self-contained HTML report (maps, profiles, totals, validation, models)."""
        from srgpu.analysis.report import build_report

        path = build_report(
            store,
            out=out,
            compare_dir=compare_dir,
            models=_parse_models(model),
            root_fraction=root_fraction,
            method=method,
        )
        console.print(f"report written to {path}", highlight=False, markup=False)
