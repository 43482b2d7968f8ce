"""The ``srgpu`` command line: one module per command, each exposing ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="srgpu",
    help="GPU-accelerated random-forest ensemble for global soil respiration (Lu et al. 2021).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its command(s). Kept as a list so that a command module can be added
# without touching the others.
COMMAND_MODULES = (
    "ensemble",
    "info",
    "fetch",
    "select",
    "explain",
    "compare",
    "report",
    "bench",
    "export",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"srgpu.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"srgpu.cli.{_name}":
            raise
        continue
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
