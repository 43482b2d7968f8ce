"""Helpers shared by the CLI command modules: error handling and console output."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from srgpu.errors import SrgpuError

console = Console()
err_console = Console(stderr=True)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn any :class:`SrgpuError` raised by a command into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SrgpuError as exc:
            # plain print: rich would wrap the line and interpret [brackets]
            line = " ".join(str(exc).split())  # always one line, whatever the message holds
            print(f"srgpu: error: {line}", file=sys.stderr)
            raise typer.Exit(code=exc.exit_code) from None

    return wrapper
