"""``srgpu compare STORE --model NAME=PATH ...``: score ecosystem models against the ensemble."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from srgpu.cli._common import console, handle_errors
from srgpu.errors import ConfigError


def _parse_models(specs: list[str]) -> dict[str, Path]:
    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--model {spec!r}: expected NAME=PATH (a NetCDF file or directory)")
        if name in models:
            raise ConfigError(f"--model {name!r} given twice")
        models[name.strip()] = Path(path.strip())
    return models


def _parse_years(text: str | None) -> tuple[int, int] | None:
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


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Each table as ``out/NAME.csv`` and ``out/NAME.json`` (records); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, df in tables.items():
        csv, js = out / f"{name}.csv", out / f"{name}.json"
        df.to_csv(csv, index=False)
        js.write_text(df.to_json(orient="records", indent=1, double_precision=10) + "\n")
        written += [csv, js]
    return written


def _rich(df: pd.DataFrame, *, title: str, columns: list[str]) -> Table:
    table = Table(title=title)
    cols = [c for c in columns if c in df]
    for col in cols:
        table.add_column(col, justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left")
    for _, row in df.iterrows():
        table.add_row(*[_fmt(row[c]) for c in cols])
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
        store: Annotated[Path, typer.Argument(help="Ensemble store (OUT/ensemble.zarr).")],
        model: Annotated[
            list[str],
            typer.Option("--model", "-m", help="NAME=PATH of a model's NetCDF file or directory."),
        ],
        out: Annotated[
            Path | None,
            typer.Option(help="Output directory (default: STORE's folder / compare)."),
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
    ) -> None:
        """Score ecosystem models (TRENDY/CMOR NetCDF) against SRDB sites and the ensemble."""
        from srgpu.analysis.compare import compare, comparison_maps
        from srgpu.analysis.compare.reference import reference_table

        models = _parse_models(model)
        period = _parse_years(years)
        cmp, tables = compare(
            store,
            models,
            method=method,
            root_fraction=root_fraction,
            years=period,
            band_deg=band_deg,
        )
        tables["reference_lu2021"] = reference_table()
        out_dir = out if out is not None else Path(store).parent / "compare"
        write_tables(tables, out_dir)
        comparison_maps(cmp).to_netcdf(out_dir / "maps.nc")
        meta = {
            "store": str(store),
            "method": method,
            "root_fraction": root_fraction,
            "models": {
                name: {
                    "path": str(models[name]),
                    "period": list(cmp.periods[name]),
                    "notes": list(cmp.notes[name]),
                    "sources": dict(m.sources),
                }
                for name, m in cmp.models.items()
            },
        }
        (out_dir / "compare.json").write_text(json.dumps(meta, indent=1) + "\n")
        console.print(
            _rich(
                tables["global_totals"],
                title="Global totals (Pg C yr-1)",
                columns=[
                    "source",
                    "flux",
                    "total_pg",
                    "total_domain_pg",
                    "rf_q025",
                    "rf_q975",
                    "in_band",
                    "diff_pct",
                ],
            )
        )
        if not tables["site_scores"].empty:
            console.print(
                _rich(
                    tables["site_scores"],
                    title="SRDB sites (g C m-2 yr-1)",
                    columns=["source", "flux", "n", "r", "rmse", "bias"],
                )
            )
        console.print(
            _rich(
                tables["uncertainty_scores"],
                title="Against the ensemble",
                columns=[
                    "source",
                    "flux",
                    "mean_abs_z",
                    "z_score",
                    "within_2sd",
                    "ilamb_bias_score",
                ],
            )
        )
        for name in cmp.models:
            for note in cmp.notes[name]:
                console.print(f"{name}: {note}", highlight=False, markup=False)
        console.print(f"tables written to {out_dir}", highlight=False, markup=False)
