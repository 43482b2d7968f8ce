"""``srgpu select`` shows a progress bar of the subsets scored (issue 18, deliver 9): the bar's
callback receives increasing counts up to the number of subsets (no timing is asserted)."""

from __future__ import annotations

import contextlib

from typer.testing import CliRunner

import srgpu.cli.select as select_cli
from srgpu.cli import app
from srgpu.cli._common import console
from srgpu.cli._progress import count_progress


def test_select_moves_its_progress_bar_with_increasing_counts(tmp_path, monkeypatch):
    calls: list[tuple[int, int]] = []
    bars: list[dict] = []

    @contextlib.contextmanager
    def recording(total, **kw):
        bars.append({"total": total, **kw})
        with count_progress(total, **kw) as update:

            def record(done, of):
                calls.append((done, of))
                if update is not None:
                    update(done, of)

            yield record

    monkeypatch.setattr(select_cli, "count_progress", recording)
    args = ["select", "--candidates", "MAT,Prec,LAI_GS", "--repeats", "2", "--trees", "4"]
    args += ["--threads", "1", "--no-validate", "--seed", "5", "--out", str(tmp_path / "sel")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(bars) == 1 and bars[0]["total"] == 7 and bars[0]["label"] == "subsets"
    assert bars[0]["enabled"] is True
    assert calls, "the progress callback was never called"
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[-1] == 7  # strictly increasing, up to all
    assert {of for _, of in calls} == {7}
    assert "7/7" in result.output  # the bar's final state


def test_quiet_select_has_no_bar():
    with count_progress(5, label="subsets", unit="sub", console=console, enabled=False) as cb:
        assert cb is None
