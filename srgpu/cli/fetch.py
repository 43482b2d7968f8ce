"""``srgpu fetch srdb`` (a pinned SRDB data CSV, or a local copy registered) and ``srgpu fetch cru``
(CRU TS monthly 0.5° temperature, precipitation and relative humidity as driver files)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer

from srgpu.cli._common import handle_errors


def _srdb(
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="SRDB release: v5.0 (default, the paper's) or 20221009. With --from, the "
            "release is recognised by its hash; an unknown file may be given any name.",
        ),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Cache directory (default: $SRGPU_CACHE or the user cache)."),
    ] = None,
    from_path: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Register this local copy (plain or gzip CSV) instead of downloading.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Download timeout, seconds.")] = 30.0,
) -> None:
    """Download the SRDB data table (or register a local copy) and print its cached path."""
    from srgpu.data.download import DEFAULT_VERSION, fetch_srdb, register_srdb
    from srgpu.data.observations import load_observations

    if from_path is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = register_srdb(from_path, version=version, cache_dir=cache)
        for w in caught:
            print(f"srgpu: warning: {w.message}", file=sys.stderr)
    else:
        got = fetch_srdb(version=version or DEFAULT_VERSION, cache_dir=cache, timeout=timeout)
    obs = load_observations(got.path)
    state = "pinned" if got.pinned else "unpinned"
    print(
        f"SRDB {got.version} ({state}, sha256 {got.sha256[:12]}): {obs.qc.n_records} records, "
        f"{obs.n_sr} SR + {obs.n_hr} HR rows selected",
        file=sys.stderr,
    )
    print(got.path)


def _cru(
    years: Annotated[
        str, typer.Option(help="Years FIRST-LAST to write (paper: 1982-2012).")
    ] = "1982-2012",
    out: Annotated[
        Path, typer.Option(help="Folder for the driver files (give it to --drivers).")
    ] = Path("drivers-cru"),
    version: Annotated[str, typer.Option("--version", help="CRU TS release.")] = "4.07",
    cache: Annotated[
        Path | None,
        typer.Option("--cache", help="Cache directory (default: $SRGPU_CACHE or the user cache)."),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="A mirror of the provider's folder.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Download timeout per file, seconds.")] = 60.0,
) -> None:
    """Download CRU TS tmp, pre and vap (decadal gzip NetCDF, sha256 recorded on first use and
    checked afterwards) and write tas, pr and hurs driver files for --drivers OUT."""
    from srgpu.data.cru import build_cru_drivers, fetch_cru_files
    from srgpu.filters import parse_years

    span = parse_years(years)
    files = fetch_cru_files(
        years=span,
        version=version,
        cache_dir=cache,
        base_url=base_url,
        timeout=timeout,
        log=lambda s: print(s, file=sys.stderr),
    )
    print(f"building tas, pr, hurs for {span[0]}-{span[1]} in {out}", file=sys.stderr)
    written = build_cru_drivers(files, years=span, out=out)
    for path in written.values():
        print(path)
    print(f"use: srgpu ensemble --drivers {out} ...", file=sys.stderr)


def register(app: typer.Typer) -> None:
    """Add the ``fetch`` command group to the ``srgpu`` app."""
    fetch_app = typer.Typer(help="Download input data into the local cache.", no_args_is_help=True)
    fetch_app.command("srdb")(handle_errors(_srdb))
    fetch_app.command("cru")(handle_errors(_cru))
    app.add_typer(fetch_app, name="fetch")
