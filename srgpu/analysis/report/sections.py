"""The report's sections as HTML, and the self-contained page (:func:`render_html`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from srgpu.analysis.compare.result import SCORE_TABLES
from srgpu.analysis.report.constants import SECTIONS
from srgpu.analysis.report.html import CSS, SCRIPT, Figure, _e, _kv_table, html_table
from srgpu.analysis.report.inputs import ReportData
from srgpu.analysis.report.uncertainty import band_note, uncertainty_html
from srgpu.schema import OUTPUT_FLUXES


def _period(summary: dict) -> str:
    years = summary.get("years") or []
    return f"{min(years)}-{max(years)}" if years else "the driver period"


def _overview(data: ReportData) -> str:
    s = data.summary
    parts = []
    if s.get("climatology"):
        parts.append(
            '<p class="note">The drivers are a 12-month <b>climatology</b>: the run predicts one '
            "period, not one per year, and every SRDB record joins the climatology whatever its "
            "year. The paper used monthly drivers for 1982-2012; interannual variability is "
            "absent here.</p>"
        )
    if s.get("demo"):
        parts.append(
            '<p class="note">This run is on the synthetic <b>demo world</b> '
            "(docs/demo.md): its fluxes are not real estimates.</p>"
        )
    rows = []
    truth = s.get("demo_truth_pg_per_yr") or {}
    for flux in OUTPUT_FLUXES:
        f = s.get("fluxes", {}).get(flux, {})
        t = f.get("total_pg_per_yr", {})
        row = {
            "flux": flux,
            "mean": t.get("mean"),
            "sd": t.get("sd"),
            "median": t.get("median"),
            "mad": t.get("mad"),
            "q025": t.get("q025"),
            "q975": t.get("q975"),
            "integrated SD": f.get("integrated_sd_pg_per_yr"),
            "integrated MAD": f.get("integrated_mad_pg_per_yr"),
            "interannual min": (f.get("interannual_range") or [None, None])[0],
            "interannual max": (f.get("interannual_range") or [None, None])[1],
        }
        if truth:
            row["demo truth"] = truth.get(flux)
        rows.append(row)
    parts.append(
        "<p>Units: fluxes (maps, sites) in g C m-2 yr-1; global totals in Pg C yr-1; zonal "
        "totals in Tg C yr-1 per degree of latitude. AR = SR - HR, replicate by replicate.</p>"
    )
    parts.append("<h3>Global totals (Pg C yr-1)</h3>")
    parts.append(
        html_table(
            pd.DataFrame(rows).astype({"flux": str}),
            caption="Across replicates of the time-mean global total; integrated SD/MAD: the "
            "per-cell SD/MAD map across replicates summed over area (the replicate spread). The "
            "paper's 'global uncertainty' is of another kind, the forests' predictive "
            "distribution: summary.json fluxes.<F>.predictive (docs/predictive.md).",
        )
    )
    ratios = s.get("ratios", {})
    counts = s.get("counts", {})
    domain = s.get("domain", {})
    parts.append(
        _kv_table(
            [
                ("replicates", s.get("n_replicates")),
                ("years", _period(s) if not s.get("climatology") else "climatology"),
                ("SR records used", counts.get("SR")),
                ("HR records used", counts.get("HR")),
                ("domain cells", domain.get("n_cells")),
                ("domain area (km2)", domain.get("area_km2")),
                ("AR/SR (global)", ratios.get("AR/SR")),
                ("HR/SR (global)", ratios.get("HR/SR")),
                ("config hash", s.get("config_hash")),
                ("srgpu version", s.get("srgpu_version")),
            ]
        )
    )
    return "".join(parts)


VALIDATION_COLUMNS = {
    "r2": ("R² (1)", ".2f"),
    "rmse": ("RMSE (g C m-2 yr-1)", ".0f"),
    "r": ("r (1)", ".2f"),
}
"""Validation metric -> (header with unit, precision): as ``srgpu ensemble`` prints them."""


def _validation_table(summary: dict) -> str:
    def shown(v: dict | None, fmt: str) -> str:
        v = v or {}
        mean, sd = v.get("mean"), v.get("sd")
        if mean is None:
            return "—"
        return format(mean, fmt) + ("" if sd is None else f" ± {format(sd, fmt)}")

    rows = []
    for flux, metrics in summary.get("validation", {}).items():
        row = {"flux": flux}
        for metric, (head, fmt) in VALIDATION_COLUMNS.items():
            if metric in metrics:
                row[head] = shown(metrics[metric], fmt)
        rows.append(row)
    return html_table(
        pd.DataFrame(rows), caption="Held-out validation across replicates (mean ± SD)."
    )


def _scores(data: ReportData) -> str:
    if not data.tables:
        return (
            '<p class="note">No model compared. Give <code>--model NAME=PATH</code> or '
            "<code>--compare DIR</code> (the output of <code>srgpu compare</code>) to score "
            "ecosystem models here. The paper's reference values are below.</p>" + _reference_html()
        )
    parts = [band_note(data.compare_meta)]
    for name, title, cols in SCORE_TABLES:
        if name in data.tables:
            parts.append(
                f"<h3>{_e(title)}</h3>" + html_table(data.tables[name], columns=cols, scores=True)
            )
    for model, meta in data.compare_meta.get("models", {}).items():
        for note in meta.get("notes", []):
            parts.append(f'<p class="note">{_e(model)}: {_e(note)}</p>')
    return "".join(parts) + _reference_html()


def _reference_html() -> str:
    from srgpu.analysis.compare.reference import CITATION, reference_table

    df = reference_table()
    df = df[df["value"].notna()]
    return f"<h3>Values reported by {_e(CITATION)}</h3>" + html_table(
        df, columns=["model", "flux", "value", "units", "where"]
    )


def _qc_html(qc: Any) -> str:
    """The QC counts of the summary as tables (reason x records/SR/HR, site joining)."""
    if not isinstance(qc, dict):
        return ""
    parts = []
    obs = qc.get("observations", {})
    reasons = obs.get("reasons") if isinstance(obs, dict) else None
    if isinstance(reasons, dict):
        rows = [
            {"reason": k, **{c: v.get(c) for c in ("records", "SR", "HR")}}
            for k, v in reasons.items()
            if isinstance(v, dict)
        ]
        parts.append(
            "<h3>Observation QC</h3>"
            + html_table(
                pd.DataFrame(rows),
                caption=f"SRDB records dropped per reason ({obs.get('n_records', '?')} records "
                "read); 'kept' is what the forests saw.",
            )
        )
    sites = qc.get("sites")
    if isinstance(sites, dict):
        parts.append("<h3>Site joining</h3>" + _kv_table(list(sites.items())))
    return "".join(parts)


def _run_html(data: ReportData) -> str:
    from srgpu.config import EnsembleConfig

    s = data.summary
    config_text = data.store.attrs.get("config")
    if not config_text and isinstance(s.get("config"), dict):
        try:
            config_text = EnsembleConfig.from_dict(s["config"]).to_toml()
        except Exception:
            config_text = json.dumps(s["config"], indent=1)
    parts = [
        _kv_table(
            [
                ("store", data.store_path.name),
                ("config hash (sha256)", s.get("config_hash", data.store.attrs.get("config_hash"))),
                ("climatology drivers", bool(s.get("climatology"))),
                ("demo world", bool(s.get("demo"))),
            ]
        ),
        "<h3>Configuration</h3>",
        f"<pre>{_e(config_text or '(not recorded)')}</pre>",
        _qc_html(s.get("qc")),
    ]
    timing = s.get("timing")
    if isinstance(timing, dict) and timing:
        flat = [(k, v) for k, v in timing.items() if not isinstance(v, dict | list)]
        if flat:
            parts.append("<h3>Timing (s)</h3>" + _kv_table(flat))
    return "".join(parts)


def render_html(data: ReportData, figures: Mapping[str, list[Figure]]) -> str:
    """The whole report as one HTML string (figures embedded)."""
    s = data.summary
    title = "srgpu ensemble report"
    period = "climatology" if s.get("climatology") else _period(s)
    sub = (
        f"{s.get('n_replicates', '?')} replicates, {period}, "
        f"config {str(s.get('config_hash', ''))[:12]}"
    )
    body = {
        "overview": _overview(data),
        "validation": _validation_table(s),
        "uncertainty": uncertainty_html(data.store, s),
        "scores": _scores(data),
        "run": _run_html(data),
    }
    nav = "".join(f'<a href="#{k}">{_e(t)}</a>' for k, t in SECTIONS)
    sections = []
    for key, heading in SECTIONS:
        content = body.get(key, "") + "".join(f.html() for f in figures.get(key, []))
        sections.append(f'<section id="{key}"><h2>{_e(heading)}</h2>{content}</section>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head>"
        f"<body><header><h1>{_e(title)}</h1><p>{_e(sub)}. Method after Lu et al. 2021, "
        "Environ. Res. Lett. 16 054048.</p></header>"
        f"<nav>{nav}</nav><main>{''.join(sections)}</main></body></html>\n"
    )
