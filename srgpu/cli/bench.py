"""``srgpu bench quick|full|tiny [--out DIR] [--no-scaling]``: srgpu's benchmarks.

Runs the same code as ``python -m benchmarks`` in a source checkout, from the package itself
(:mod:`srgpu.bench`), so it works from an installed srgpu too: end-to-end srgpu vs a
scikit-learn loop vs R randomForest (when ``Rscript`` is there), inference and training alone,
scaling curves; writes JSON and a PNG (default ``benchmarks/results`` in a source checkout, else
``./srgpu-bench``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors
from srgpu.errors import ConfigError

SUITES = ("quick", "full", "tiny")


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
            Path | None,
            typer.Option(
                help="Results folder (default: benchmarks/results in a source checkout, "
                "else ./srgpu-bench)."
            ),
        ] = None,
        no_scaling: Annotated[
            bool, typer.Option("--no-scaling", help="Skip the scaling curves.")
        ] = False,
    ) -> None:
        """Benchmark srgpu's CPU path against scikit-learn and R randomForest."""
        if suite not in SUITES:
            raise ConfigError(f"suite must be one of {SUITES}, got {suite!r}")
        from srgpu.bench.suite import run_suite

        res = run_suite(
            suite, out=out, scaling=not no_scaling, log=lambda s: console.print(s, markup=False)
        )
        for f in res["files"]:
            console.print(f"written {f}", highlight=False, markup=False)
