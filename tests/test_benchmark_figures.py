"""Every measured figure has one voice: the README's and docs/benchmarks.md's figure blocks are
what ``benchmarks.figures`` generates from the committed result files."""

from __future__ import annotations

import json

import pytest

from benchmarks import figures


@pytest.mark.parametrize("target", figures.TARGETS, ids=lambda p: p.name)
def test_figure_block_matches_committed_results(target):
    text = target.read_text()
    assert figures.BEGIN in text and figures.END in text
    assert figures.render(text, figures.table()) == text, (
        f"{target.name}'s figures are stale: run python -m benchmarks.figures"
    )


def test_every_figure_reads_a_number_from_its_file():
    for fig in figures.FIGURES:
        value = fig.value(json.loads(figures.newest(fig.pattern).read_text()))
        assert value == value and value > 0, fig.label  # finite and positive


def test_render_replaces_only_the_block():
    text = f"a\n{figures.BEGIN}\nold\n{figures.END}\nb\n"
    assert figures.render(text, "new") == f"a\n{figures.BEGIN}\nnew\n{figures.END}\nb\n"
    with pytest.raises(ValueError):
        figures.render("no markers", "x")
