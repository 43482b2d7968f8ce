"""``srgpu compare STORE --model NAME=PATH ...``: score ecosystem models against the ensemble."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from srgpu.cli._common import console, handle_errors
from srgpu.errors import ConfigError

TERMINAL_TABLES = ("global_totals", "site_scores", "uncertainty_scores")
"""The score tables ``srgpu compare`` prints (all are written; the report shows them all)."""


def parse_models(specs: list[str] | None) -> dict[str, Path]:
    """``--model NAME=PATH`` options -> ``{name: path}`` (``srgpu compare`` and ``report``)."""
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


def _parse_skip(specs: list[str], models: dict[str, Path]) -> dict[str, set[str]]:
    """``--skip-checks NAME`` (every check) or ``NAME=VAR,VAR`` -> name -> variables."""
    out: dict[str, set[str]] = {}
    for spec in specs:
        name, sep, names = spec.partition("=")
        name = name.strip()
        if name not in models:
            raise ConfigError(f"--skip-checks {spec!r}: no --model named {name!r}")
        chosen = {v.strip() for v in names.split(",") if v.strip()} if sep else {"all"}
        from srgpu.analysis.compare.plausibility import ALL, PLAUSIBLE_TOTALS

        unknown = sorted(chosen - {ALL, *PLAUSIBLE_TOTALS})
        if unknown:
            raise ConfigError(
                f"--skip-checks {spec!r}: unknown variable(s) {unknown}; "
                f"expected {ALL!r} or some of {', '.join(PLAUSIBLE_TOTALS)}"
            )
        out.setdefault(name, set()).update(chosen or {"all"})
    return out


def parse_years(text: str | None) -> tuple[int, int] | None:
    """``--years FIRST-LAST`` (or one year) -> ``(first, last)``; ``None`` stays ``None``."""
    if text is None:
        return None
    first, sep, last = text.partition("-")
    try:
        years = (int(first), int(last if sep else first))
    except ValueError:
        raise ConfigError(f"--years {text!r}: expected FIRST-LAST, e.g. 1982-2012") from None
    if years[0] > years[1]:
        raise ConfigError(f"--years {text!r}: first year after last year")
    return years


def _rich(df: pd.DataFrame, *, title: str, columns: list[str]) -> Table:
    """A score table for the console: units in the headers, one precision per column
    (:mod:`srgpu.analysis.table_format`)."""
    from srgpu.analysis import table_format as tf

    table = Table(title=title)
    cols = [c for c in columns if c in df]
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(df[col]) and df[col].dtype != bool
        table.add_column(tf.header(col), justify="right" if numeric else "left")
    for _, row in df.iterrows():
        table.add_row(*[tf.cell(c, row[c]) if tf.formats(c) else _fmt(row[c]) for c in cols])
    return table


def _fmt(value) -> str:
    if isinstance(value, float):
        return "—" if pd.isna(value) else f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to ``app``."""

    @app.command("compare")
    @handle_errors
    def compare_cmd(
        store: Annotated[
            Path, typer.Argument(help="Run directory OUT or its store OUT/ensemble.zarr.")
        ],
        model: Annotated[
            list[str],
            typer.Option(
                "--model",
                "-m",
                help="NAME=PATH: a model's NetCDF file, directory or quoted glob ('dir/M_*.nc').",
            ),
        ],
        out: Annotated[
            Path | None,
            typer.Option(help="Output directory (default: OUT/compare)."),
        ] = None,
        method: Annotated[
            str, typer.Option(help="Regridding: conservative (fluxes) or nearest (as ILAMB).")
        ] = "conservative",
        root_fraction: Annotated[
            float | None,
            typer.Option(
                help="Root share of total ra for models without root respiration "
                "(default: SR/AR not computed for them; e.g. 0.55 = 35.2/64, Lu et al. table 1)."
            ),
        ] = None,
        years: Annotated[
            str | None, typer.Option(help="Comparison period FIRST-LAST (default: shared years).")
        ] = None,
        band_deg: Annotated[
            float | None, typer.Option(help="Latitude band width (default: the grid rows).")
        ] = None,
        skip_checks: Annotated[
            list[str] | None,
            typer.Option(
                "--skip-checks",
                help="NAME or NAME=VAR,VAR: compare model NAME although its sign or global "
                "total is implausible (a regional model, an experiment); recorded in the notes.",
            ),
        ] = None,
        band: Annotated[
            str | None,
            typer.Option(
                help="Ensemble uncertainty of the uncertainty scores ('within the ensemble's "
                "uncertainty'): predictive (the forests' predictive SD, the paper's kind; "
                "default where the store has it) or spread (SD across replicates; the "
                "fallback for stores without a predictive distribution).",
            ),
        ] = None,
    ) -> None:
        """Score ecosystem models (TRENDY/CMOR NetCDF) against SRDB sites and the ensemble."""
        from srgpu.analysis.compare import compare
        from srgpu.analysis.compare.result import SCORE_TABLES

        models = parse_models(model)
        skip = _parse_skip(skip_checks or [], models)
        result = compare(
            store,
            models,
            method=method,
            root_fraction=root_fraction,
            years=parse_years(years),
            band_deg=band_deg,
            skip_checks=skip,
            band=band,
        )
        out_dir = out if out is not None else result.default_dir
        result.write(out_dir)
        period = result.comparison.period
        for name, title, columns in SCORE_TABLES:
            if name in TERMINAL_TABLES and not result.tables[name].empty:
                if name == "global_totals":
                    title = f"{title}, {period.label}"
                console.print(_rich(result.tables[name], title=title, columns=columns))
        console.print(
            f"comparison period: {period.label} (ensemble: {period.ensemble_label}; "
            "every total, band and map score uses these years)",
            highlight=False,
            markup=False,
        )
        for note in result.comparison.period_notes:
            console.print(note, highlight=False, markup=False)
        console.print(
            f"uncertainty band: {result.band} ({result.meta['band']['definition']}); the "
            "global totals' rf_q025/rf_q975 are the replicate spread of the total",
            highlight=False,
            markup=False,
        )
        for note in result.comparison.band_notes:
            console.print(note, highlight=False, markup=False)
        for name in result.model_names:
            for note in result.notes(name):
                console.print(f"{name}: {note}", highlight=False, markup=False)
        console.print(f"tables written to {out_dir}", highlight=False, markup=False)
