"""``srgpu export OUT --netcdf FILE``: a finished run as one CF-1.8 NetCDF file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import console, handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``export`` command to ``app``."""

    @app.command("export")
    @handle_errors
    def export_cmd(
        out: Annotated[Path, typer.Argument(help="Run directory OUT (or OUT/ensemble.zarr).")],
        netcdf: Annotated[
            Path, typer.Option("--netcdf", help="NetCDF file to write (CF-1.8, NetCDF-4).")
        ],
    ) -> None:
        """Write the gridded results of a finished run as CF-1.8 NetCDF (docs/store.md)."""
        from srgpu.run.export import export_netcdf

        path = export_netcdf(out, netcdf)
        console.print(f"written {path}", highlight=False, markup=False)
