"""``srgpu report`` on a tiny demo-world ensemble: sections, embedded figures, Chromium render."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from typer.testing import CliRunner

from srgpu.analysis.compare import compare
from srgpu.analysis.report import SECTIONS, site_predictions, zonal_totals
from srgpu.cli import app
from srgpu.config import EnsembleConfig, ForestConfig, PredictConfig
from tests.modelfiles import write_model_files

TINY = EnsembleConfig(
    replicates=3,
    batch_size=3,
    forest=ForestConfig(trees=20),
    predict=PredictConfig(engine="sklearn"),
)
FIGURES = (
    "map_SR",
    "map_HR",
    "map_AR",
    "map_AR_SR",
    "map_uncertainty",
    "calibration",
    "latitude",
    "annual",
    "validation_hist",
    "sites",
    "global",
)
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """The demo ensemble (3 replicates x 20 trees)."""
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path_factory.mktemp("run")
    run_ensemble(TINY, out=out)
    return out


@pytest.fixture(scope="module")
def demo_report(demo_run):
    result = CliRunner().invoke(app, ["report", str(demo_run)])
    assert result.exit_code == 0, result.output
    return demo_run / "report" / "report.html"


RH_RAROOT = (("rh", "HR"), ("raRoot", "AR"))


def _write_model(directory, run, *, scale=1.1):
    """CMOR-like monthly rh and raRoot (noleap, kg m-2 s-1) = ``scale`` x the ensemble's
    HR and AR (negative cells set to 0) of each year, on the ensemble grid, with sftlf in %."""
    store = xr.open_zarr(run / "ensemble.zarr", consolidated=False).load()
    directory.mkdir(parents=True)
    fields = {var: store[f"{flux}_mean"].values * scale for var, flux in RH_RAROOT}
    # the ensemble's AR is negative in a few cells; a model's raRoot cannot be (the
    # plausibility check of srgpu compare refuses it): write_model_files sets them to 0
    write_model_files(directory, store, fields, prefix="M")
    return directory


def _images(text: str) -> list[Image.Image]:
    out = []
    for data in IMG.findall(text):
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        img.load()
        out.append(img)
    return out


def test_report_sections_and_figures(demo_report):
    text = demo_report.read_text(encoding="utf-8")
    for key, title in SECTIONS:
        assert f'<section id="{key}">' in text and title in text
    images = _images(text)
    assert len(images) == len(FIGURES) == text.count('<img src="data:image/png;base64,')
    for img in images:
        assert img.format == "PNG" and img.width > 400 and img.height > 200
    for name in FIGURES:
        assert f'id="fig-{name}"' in text
        png = Image.open(demo_report.parent / f"{name}.png")
        assert png.width > 400
    # self-contained: no external resource
    assert not re.search(r'(src|href)="(https?:)?//', text)
    for needle in (
        "g C m-2 yr-1",
        "Pg C yr-1",
        "config hash",
        "demo truth",
        "Lu et al. 2021, Environ. Res. Lett. 16 054048",
        "76.9",
        "Observation QC",
        "No model compared",
    ):
        assert needle in text, needle


def test_zonal_totals_add_up_to_global_totals(demo_run):
    store = xr.open_zarr(demo_run / "ensemble.zarr", consolidated=False).load()
    for flux in ("SR", "HR", "AR"):
        lat, z = zonal_totals(store, flux)
        height = np.full(lat.size, float(lat[1] - lat[0]))
        global_pg = (z * height).sum(axis=1) / 1e3
        expected = store[f"{flux}_replicate_total"].values.mean(axis=1)
        np.testing.assert_allclose(global_pg, expected, rtol=1e-5)


def test_site_predictions_index_the_mean_cube(demo_run):
    store = xr.open_zarr(demo_run / "ensemble.zarr", consolidated=False).load()
    obs, sim = site_predictions(store, "HR")
    is_hr = np.array([str(v) for v in store["site_flux"].values]) == "HR"
    assert obs.size == sim.size == is_hr.sum()
    k = int(np.flatnonzero(is_hr)[0])
    cube = store["HR_mean"].values
    iy, ia, io_ = (int(store[f"site_{c}"].values[k]) for c in ("iyear", "ilat", "ilon"))
    assert sim[0] == cube[iy, ia, io_]


def test_report_with_model(demo_run, tmp_path):
    model = _write_model(tmp_path / "M", demo_run)
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["report", str(demo_run / "ensemble.zarr"), "--model", f"M={model}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = (out / "report.html").read_text(encoding="utf-8")
    assert len(_images(text)) == len(FIGURES)
    assert "Taylor statistics" in text and "Against the SRDB sites" in text
    assert '<td class="l">M</td>' in text
    assert "No model compared" not in text
    # the band of "within the ensemble's uncertainty" is stated (default: predictive)
    assert "use the <b>predictive</b> band" in text
    header, rows = _table_after(text, "Against the ensemble with its uncertainty")
    assert {r[header.index("flux")]: r[header.index("band")] for r in rows} == {
        "SR": "predictive",
        "HR": "predictive",
        "AR": "spread",
    }


def test_report_from_compare_dir(demo_run, tmp_path):
    """A directory as ``srgpu compare`` writes it (``CompareResult.write``)."""
    model = _write_model(tmp_path / "M", demo_run)
    cmp_dir = tmp_path / "cmp"
    compare(demo_run / "ensemble.zarr", {"M": model}).write(cmp_dir)
    runner = CliRunner()
    out = tmp_path / "rep"
    result = runner.invoke(
        app, ["report", str(demo_run), "--compare", str(cmp_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = (out / "report.html").read_text(encoding="utf-8")
    assert "Taylor statistics" in text and '<td class="l">M</td>' in text
    # --compare and --model together are refused
    result = runner.invoke(
        app, ["report", str(demo_run), "--compare", str(cmp_dir), "--model", f"M={model}"]
    )
    assert result.exit_code == 2
    assert "not both" in result.output


def test_report_bad_input_exit_2(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no such ensemble output" in result.output
    (tmp_path / "ensemble.zarr").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "summary.json" in result.output
    result = runner.invoke(app, ["report", str(tmp_path), "--compare", str(tmp_path)])
    assert result.exit_code == 2


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    """Every <img> decodes in a real browser (the page's script counts naturalWidth > 0)."""
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        demo_report.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = re.search(r'data-images-loaded="(\d+)"', proc.stdout)
    total = re.search(r'data-images-total="(\d+)"', proc.stdout)
    assert loaded and total, proc.stdout[:500]
    assert int(total.group(1)) == len(FIGURES)
    assert int(loaded.group(1)) == len(FIGURES)


def test_report_passes_compare_options(demo_run, tmp_path, monkeypatch):
    """``srgpu report --model`` runs the same compare function as ``srgpu compare``, with the
    same options: a period the model lacks is refused there (exit 2); ``--years`` and
    ``--band-deg`` arrive unchanged."""
    import srgpu.analysis.compare as compare_pkg

    model = _write_model(tmp_path / "M", demo_run)
    args = ["report", str(demo_run), "--model", f"M={model}", "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, [*args, "--years", "1800-1801"])
    assert result.exit_code == 2
    assert "no year shared" in result.output
    calls = []

    def spy(*a, **kw):
        calls.append(kw)
        return compare(*a, **kw)

    monkeypatch.setattr(compare_pkg, "compare", spy)
    year = int(xr.open_zarr(demo_run / "ensemble.zarr", consolidated=False)["year"].values[0])
    result = CliRunner().invoke(app, [*args, "--years", f"{year}-{year}", "--band-deg", "30"])
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "method": "conservative",
            "root_fraction": None,
            "years": (year, year),
            "band_deg": 30.0,
            "band": None,
        }
    ]


# -- the numbers in the report (issue 21: report tests that checked no number) ---------------


def _table_after(text: str, heading: str, *, last: bool = False) -> tuple[list, list]:
    """Header and body cells (unescaped text) of the table after the first (or ``last``)
    ``<h3>heading</h3>``."""
    import html as html_mod

    h3 = f"<h3>{html_mod.escape(heading)}</h3>"
    start = text.rindex(h3) if last else text.index(h3)
    table = text[start : text.index("</table>", start)]
    header = [html_mod.unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)]
    body = table[table.index("<tbody>") :]
    rows = [
        [html_mod.unescape(c) for c in re.findall(r"<td(?:\s[^>]*)?>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]
    return header, rows


def _shows(shown: str, value: float, *, rel: float = 0.0) -> bool:
    """``shown`` is ``value`` rounded to the digits it shows (half a unit in its last place),
    whatever format the report chose; ``rel`` adds a relative tolerance."""
    x = float(shown)
    if "e" in shown.lower():
        mantissa = shown.lower().split("e")[0]
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        tol = 0.5 * 10.0 ** (-digits) * 10.0 ** int(shown.lower().split("e")[1])
    else:
        digits = len(shown.split(".")[1]) if "." in shown else 0
        tol = 0.5 * 10.0 ** (-digits)
    return abs(x - value) <= tol * (1 + 1e-9) + rel * abs(value)


def test_report_global_totals_are_the_summary_numbers(demo_run, demo_report):
    summary = json.loads((demo_run / "summary.json").read_text())
    text = demo_report.read_text(encoding="utf-8")
    header, rows = _table_after(text, "Global totals (Pg C yr-1)")
    assert header[0] == "flux" and [r[0] for r in rows] == ["SR", "HR", "AR"]
    col = {name: i for i, name in enumerate(header)}
    for row in rows:
        flux = row[0]
        t = summary["fluxes"][flux]["total_pg_per_yr"]
        for key in ("mean", "sd", "median", "mad", "q025", "q975"):
            assert _shows(row[col[key]], t[key]), (flux, key, row[col[key]], t[key])
        integrated = summary["fluxes"][flux]["integrated_sd_pg_per_yr"]
        assert _shows(row[col["integrated SD"]], integrated)
        assert _shows(row[col["demo truth"]], summary["demo_truth_pg_per_yr"][flux])
    # AR = SR - HR in the shown numbers, to their rounding
    mean = {r[0]: float(r[col["mean"]]) for r in rows}
    assert abs(mean["AR"] - (mean["SR"] - mean["HR"])) <= 0.15


def test_report_model_totals_are_scale_times_the_ensemble(demo_run, tmp_path):
    """The model is 1.1 x the ensemble's HR and AR: its global totals in the report are
    1.1 x the ensemble's mean total (float32 files: measured 1e-7 relative; the shown digits
    set the tolerance)."""
    model = _write_model(tmp_path / "M", demo_run, scale=1.1)
    out = tmp_path / "rep"
    result = CliRunner().invoke(
        app, ["report", str(demo_run), "--model", f"M={model}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((demo_run / "summary.json").read_text())
    text = (out / "report.html").read_text(encoding="utf-8")
    # the second table of that title: the comparison's (the first is the run's own)
    header, rows = _table_after(text, "Global totals (Pg C yr-1)", last=True)
    assert header[:3] == ["source", "flux", "total_pg"], header
    col = {name: i for i, name in enumerate(header)}
    seen = set()
    for row in rows:
        source, flux = row[col["source"]], row[col["flux"]]
        rf = summary["fluxes"][flux]["total_pg_per_yr"]["mean"]
        expected = {"RF": rf, "M": 1.1 * rf}[source]
        assert _shows(row[col["total_pg"]], expected, rel=1e-6), (source, flux, row)
        seen.add((source, flux))
    assert seen == {(s, f) for s in ("RF", "M") for f in ("SR", "HR", "AR")}


def test_report_uncertainty_numbers_are_the_summary_numbers(demo_run, demo_report):
    """The uncertainty section: the paper sentence, the integrated SDs and both bands'
    held-out calibration, each number equal to summary.json to the digits shown."""
    summary = json.loads((demo_run / "summary.json").read_text())
    text = demo_report.read_text(encoding="utf-8")
    import html as html_mod

    assert "most likely R's mad()" in html_mod.unescape(text)
    assert 'id="fig-calibration"' in text and 'id="fig-map_uncertainty"' in text
    header, rows = _table_after(text, "Integrated SD (Pg C yr-1)")
    assert header == ["flux", "replicate spread SD", "predictive SD"]
    assert [r[0] for r in rows] == ["SR", "HR"]
    for flux, spread, pred in rows:
        f = summary["fluxes"][flux]
        assert _shows(spread, f["integrated_sd_pg_per_yr"]), (flux, spread)
        assert _shows(pred, f["predictive"]["integrated_sd_pg_per_yr"]), (flux, pred)
        assert float(pred) > 3 * float(spread)
    header, rows = _table_after(text, "Held-out calibration of the two bands")
    col = {name: i for i, name in enumerate(header)}
    assert [(r[0], r[1]) for r in rows] == [
        (f, b) for f in ("SR", "HR") for b in ("predictive", "replicate spread")
    ]
    for row in rows:
        key = "calibration" if row[1] == "predictive" else "calibration_spread"
        c = summary[key][row[0]]
        for level, name in (
            ("0.5", "50 % covers"),
            ("0.9", "90 % covers"),
            ("0.95", "95 % covers"),
        ):
            assert _shows(row[col[name]], 100 * c["coverage"][level]["mean"]), (row, level)
        assert _shows(row[col["CRPS"]], c["crps"]["mean"]), row
        assert int(row[col["replicates"]]) == c["replicates"] == 3
        if key == "calibration_spread":
            assert _shows(row[col["members"]], c["members"]["mean"])
    # a moments run (the default): no quantile maps, a note on how to get them
    assert 'id="fig-map_quantiles"' not in text
    note = html_mod.unescape(text)
    assert "Quantiles were not computed in this run" in note
    assert "srgpu ensemble --predictive quantiles" in note


def test_report_without_predictive_distribution(tmp_path):
    """A run with predictive = "none" (as stores written before): no uncertainty figures, a
    note instead, and the rest of the report as usual."""
    from srgpu.run.ensemble import run_ensemble

    run_ensemble(TINY.replace(replicates=2, batch_size=2, predictive="none"), out=tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "This run has no predictive distribution" in text
    assert 'id="fig-calibration"' not in text and 'id="fig-map_uncertainty"' not in text
    assert len(_images(text)) == len(FIGURES) - 2


@pytest.fixture(scope="module")
def quantiles_run(tmp_path_factory):
    """A demo run with exact quantiles (2 replicates x 20 trees) and its report."""
    from srgpu.run.ensemble import run_ensemble

    out = tmp_path_factory.mktemp("qrun")
    run_ensemble(TINY.replace(replicates=2, batch_size=2, predictive="quantiles"), out=out)
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_report_quantile_maps_and_integrated_mad(quantiles_run):
    """A quantiles run: the quantile-map figure (embedded and as a PNG), and the integrated
    SD / MAD / 1.4826 x MAD equal to summary.json beside the paper's MAD and 'SD'."""
    import html as html_mod

    from srgpu.constants import PAPER_UNCERTAINTY_PG

    summary = json.loads((quantiles_run / "summary.json").read_text())
    report = quantiles_run / "report" / "report.html"
    text = report.read_text(encoding="utf-8")
    assert 'id="fig-map_quantiles"' in text and 'id="fig-map_uncertainty"' in text
    assert len(_images(text)) == len(FIGURES) + 1
    png = Image.open(report.parent / "map_quantiles.png")
    assert png.width > 1000 and png.height > 400
    assert len(png.convert("RGB").getcolors(maxcolors=1 << 20)) > 200  # maps, not a blank page
    assert "Quantiles were not computed" not in text
    assert "most likely R's default mad() (1.4826 × MAD" in html_mod.unescape(text)
    header, rows = _table_after(text, "Integrated MAD beside the paper (Pg C yr-1)")
    assert header == ["flux", "predictive SD", "MAD", "1.4826 × MAD", "paper MAD", "paper 'SD'"]
    assert [r[0] for r in rows] == ["SR", "HR"]
    for flux, sd, mad, scaled, paper_mad, paper_sd in rows:
        pred = summary["fluxes"][flux]["predictive"]
        assert _shows(sd, pred["integrated_sd_pg_per_yr"]), (flux, sd)
        assert _shows(mad, pred["integrated_mad_pg_per_yr"]), (flux, mad)
        assert _shows(scaled, pred["integrated_mad_scaled_pg_per_yr"]), (flux, scaled)
        assert float(paper_mad) == PAPER_UNCERTAINTY_PG[flux]["mad"]
        assert float(paper_sd) == PAPER_UNCERTAINTY_PG[flux]["sd"]
        assert pred["integrated_mad_scaled_pg_per_yr"] == pytest.approx(
            1.482602218505602 * pred["integrated_mad_pg_per_yr"], rel=1e-12
        )


def test_quantile_maps_draw_the_store_fields(quantiles_run):
    """The three panels per flux are the store's median, scaled MAD and q975 - q025."""
    import matplotlib.pyplot as plt

    from srgpu.analysis.report.quantiles import fig_quantile_maps

    store = xr.open_zarr(quantiles_run / "ensemble.zarr", consolidated=False).load()
    summary = json.loads((quantiles_run / "summary.json").read_text())
    fig = fig_quantile_maps(store, summary)
    try:
        for i, flux in enumerate(("SR", "HR")):
            want = (
                store[f"{flux}_pred_median"].values,
                store[f"{flux}_pred_mad_scaled"].values,
                store[f"{flux}_pred_q975"].values - store[f"{flux}_pred_q025"].values,
            )
            for j, field in enumerate(want):
                ax = fig.axes[3 * i + j]
                drawn = np.ma.filled(ax.collections[1].get_array().astype(float), np.nan)
                np.testing.assert_array_equal(drawn.ravel(), np.asarray(field, float).ravel())
            mad = summary["fluxes"][flux]["predictive"]["integrated_mad_scaled_pg_per_yr"]
            assert f"integrated {mad:.3g}" in fig.axes[3 * i + 1].get_title()
            assert np.nanmin(want[2]) >= 0
    finally:
        plt.close(fig)
