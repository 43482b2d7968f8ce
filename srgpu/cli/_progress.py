"""A rich progress bar for a command's long step, counted in units of work (the same columns as
``srgpu ensemble``'s replicate bar: label, bar, done/total, rate, elapsed, remaining)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

CountCallback = Callable[[int, int], None]
"""``callback(done, total)``: ``done`` of ``total`` units finished."""


def bar_columns(label: str) -> tuple:
    """The columns of srgpu's progress bars: ``label``, the bar, done/total, the rate (the
    task's ``rate`` field), elapsed and remaining time."""
    return (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


@contextlib.contextmanager
def count_progress(
    total: int, *, label: str, unit: str, console: Console, enabled: bool = True
) -> Iterator[CountCallback | None]:
    """A progress bar of ``total`` ``label`` (e.g. "subsets") with ``unit``/s (e.g. "sub/s");
    yields the ``callback(done, total)`` that moves it (``None`` when not ``enabled``)."""
    if not enabled:
        yield None
        return
    with Progress(*bar_columns(label), console=console, transient=False) as progress:
        task = progress.add_task(label, total=total, rate="")
        t0 = time.perf_counter()

        def update(done: int, new_total: int) -> None:
            rate = done / max(time.perf_counter() - t0, 1e-9)
            progress.update(task, completed=done, total=new_total, rate=f"{rate:.2f} {unit}/s")

        yield update
