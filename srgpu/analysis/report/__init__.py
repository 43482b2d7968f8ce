"""Figures and a self-contained HTML report of an ensemble store (``srgpu report``).

:func:`build_report` reads ``OUT/ensemble.zarr`` and ``OUT/summary.json`` (layout in
``docs/store.md``), optionally the tables of ``srgpu compare`` (a ``--compare`` directory, or
models compared in process with :func:`srgpu.analysis.compare.compare`), draws each figure with
matplotlib's Agg backend, writes the PNGs beside ``report.html`` and embeds them in it as base64
data URIs: the HTML needs no network and no other file. Each figure is one small function
taking the opened store (and the summary or tables) and returning a ``matplotlib`` figure.

Units shown: fluxes in g C m-2 yr-1, global totals in Pg C yr-1, zonal totals in Tg C yr-1 per
degree of latitude.

Modules: :mod:`~srgpu.analysis.report.inputs` (the opened store and its summary),
:mod:`~srgpu.analysis.report.figures` (one function per figure, on the map panels of
:mod:`~srgpu.analysis.report.panels`), :mod:`~srgpu.analysis.report.html` (HTML primitives and
embedded PNGs), :mod:`~srgpu.analysis.report.sections` (the sections' HTML and the page);
:func:`build_report` wires them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from srgpu.analysis.report.constants import SECTIONS
from srgpu.analysis.report.figures import (
    fig_annual,
    fig_global,
    fig_latitude,
    fig_maps,
    fig_ratio_map,
    fig_sites,
    fig_validation_hist,
    make_figures,
    site_predictions,
    zonal_totals,
)
from srgpu.analysis.report.inputs import ReportData, open_store
from srgpu.analysis.report.sections import render_html

__all__ = [
    "SECTIONS",
    "ReportData",
    "build_report",
    "fig_annual",
    "fig_global",
    "fig_latitude",
    "fig_maps",
    "fig_ratio_map",
    "fig_sites",
    "fig_validation_hist",
    "make_figures",
    "open_store",
    "render_html",
    "site_predictions",
    "zonal_totals",
]


def build_report(
    store: str | Path,
    *,
    out: str | Path | None = None,
    compare_dir: str | Path | None = None,
    models: Mapping[str, str | Path] | None = None,
    root_fraction: float | None = None,
    method: str = "conservative",
    years: tuple[int, int] | None = None,
    band_deg: float | None = None,
    band: str | None = None,
) -> Path:
    """Write ``report.html`` and its PNG figures to ``out`` (default ``OUT/report``); return
    the HTML's path. ``compare_dir``: the output of ``srgpu compare``; ``models``: name -> path,
    compared in process by :func:`srgpu.analysis.compare.compare` with ``root_fraction``,
    ``method``, ``years``, ``band_deg`` and ``band`` (not both)."""
    from srgpu.analysis.compare.result import CompareResult
    from srgpu.errors import ConfigError

    if compare_dir is not None and models:
        raise ConfigError("give either --compare DIR or --model NAME=PATH, not both")
    ds, summary, zarr = open_store(store)
    comparison = CompareResult(tables={}, meta={})
    if compare_dir is not None:
        comparison = CompareResult.read(compare_dir)
    elif models:
        from srgpu.analysis.compare import compare

        comparison = compare(
            zarr,
            models,
            method=method,
            root_fraction=root_fraction,
            years=years,
            band_deg=band_deg,
            band=band,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of masked maps
        data = ReportData(
            store=ds.load(),
            summary=summary,
            store_path=zarr,
            tables=comparison.tables,
            compare_meta=comparison.meta,
        )
        figures = make_figures(data)
    out_dir = Path(out) if out is not None else zarr.parent / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    for figs in figures.values():
        for fig in figs:
            (out_dir / f"{fig.name}.png").write_bytes(fig.png)
    path = out_dir / "report.html"
    path.write_text(render_html(data, figures), encoding="utf-8")
    return path
