"""``srgpu bench quick|full|tiny [--out DIR] [--no-scaling]``: the repository's benchmarks.

Runs the same code as ``python -m benchmarks`` (``benchmarks/`` beside the package in a source
checkout): end-to-end srgpu vs a scikit-learn loop vs R randomForest, inference and training
alone, scaling curves; writes JSON and a PNG (default ``benchmarks/results``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.errors import ConfigError

SUITES = ("quick", "full", "tiny")


def _import_benchmarks():
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise ConfigError(
            "srgpu bench needs the benchmarks/ folder of a source checkout "
            "(install srgpu from the repository with pip install -e .)"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import benchmarks.__main__ as bench_main

    return bench_main


def register(app: typer.Typer) -> None:
    """Add the ``bench`` command to ``app``."""

    @app.command("bench")
    @handle_errors
    def bench_cmd(
        suite: Annotated[
            str,
            typer.Argument(
                help="quick (< 5 min on 2 cores), full, or tiny (about a minute on 2 cores)."
            ),
        ] = "quick",
        out: Annotated[
            Path | None, typer.Option(help="Results folder (default: benchmarks/results).")
        ] = None,
        no_scaling: Annotated[
            bool, typer.Option("--no-scaling", help="Skip the scaling curves.")
        ] = False,
    ) -> None:
        """Benchmark srgpu's CPU path against scikit-learn and R randomForest."""
        if suite not in SUITES:
            raise ConfigError(f"suite must be one of {SUITES}, got {suite!r}")
        bench_main = _import_benchmarks()
        res = bench_main.run_suite(
            suite, out=out, scaling=not no_scaling, log=lambda s: console.print(s, markup=False)
        )
        for f in res["files"]:
            console.print(f"written {f}", highlight=False, markup=False)
