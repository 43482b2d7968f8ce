"""HTML primitives of the report: style, script, escaping, tables and embedded PNG figures."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from srgpu.analysis.report.constants import DPI
from srgpu.analysis.report.panels import _plt

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;
color:#222;background:#fafafa}
main{max-width:1400px;margin:0 auto;padding:0 24px 48px}
header{background:#2d3e50;color:#fff;padding:16px 24px}
header h1{margin:0;font-size:1.5em} header p{margin:4px 0 0;color:#dfe6ee}
nav{background:#eef2f6;padding:8px 24px;border-bottom:1px solid #ccd}
nav a{margin-right:14px;color:#2d3e50;text-decoration:none;font-size:.92em}
h2{border-bottom:2px solid #2d3e50;padding-bottom:4px;margin-top:36px}
figure{margin:12px 0 20px;background:#fff;border:1px solid #ddd;padding:8px}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.88em;color:#444;margin-top:6px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:.86em;background:#fff}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eef2f6} td.l,th.l{text-align:left}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:8px 12px;margin:10px 0}
pre{background:#fff;border:1px solid #ddd;padding:8px;font-size:.82em;overflow-x:auto}
.kv td:first-child{text-align:left;color:#444}
p.cap{font-size:.88em;color:#444;margin:6px 0 2px}
"""

# Sets data-images-loaded / data-images-total on <body> once the page is loaded, so that a
# headless browser can check that every embedded figure decoded (tests/test_report.py).
SCRIPT = """
window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { ok++; }
  }
  document.body.setAttribute('data-images-total', String(imgs.length));
  document.body.setAttribute('data-images-loaded', String(ok));
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _fmt(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "—"
        a = abs(float(value))
        return f"{value:.0f}" if a >= 1e4 else f"{value:.3g}" if a < 10 else f"{value:.1f}"
    return str(value)


def html_table(
    df: pd.DataFrame,
    *,
    columns: list[str] | None = None,
    caption: str = "",
    scores: bool = False,
) -> str:
    """A small HTML table (numbers right-aligned, 3 significant digits). ``scores``: the
    columns of the comparison's score tables get their unit in the header and one precision
    per column (:mod:`srgpu.analysis.table_format`)."""
    from srgpu.analysis import table_format as tf

    if df is None or df.empty:
        return '<p class="note">(empty table)</p>'
    cols = [c for c in (columns or list(df.columns)) if c in df]
    num = {c: pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool for c in cols}
    fixed = {c: scores and tf.formats(c) for c in cols}
    head = "".join(
        f'<th class="{"" if num[c] else "l"}">{_e(tf.header(c) if fixed[c] else c)}</th>'
        for c in cols
    )
    rows = []
    for _, row in df.iterrows():
        cells = "".join(
            f'<td class="{"" if num[c] else "l"}">'
            f"{_e(tf.cell(c, row[c]) if fixed[c] else _fmt(row[c]))}</td>"
            for c in cols
        )
        rows.append(f"<tr>{cells}</tr>")
    cap = f'<p class="cap">{_e(caption)}</p>' if caption else ""
    return f"{cap}<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(_fmt(v))}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


@dataclass
class Figure:
    """A rendered figure: file name, PNG bytes and caption."""

    name: str
    png: bytes
    caption: str

    def html(self) -> str:
        data = base64.b64encode(self.png).decode("ascii")
        return (
            f'<figure id="fig-{_e(self.name)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(self.name)}"><figcaption>{_e(self.caption)}</figcaption></figure>'
        )


def _render(fig, name: str, caption: str) -> Figure:
    import io

    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return Figure(name=name, png=buf.getvalue(), caption=caption)
