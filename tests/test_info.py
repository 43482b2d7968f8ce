"""``srgpu info``: text and JSON output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli.info import DEPENDENCIES, NOT_INSTALLED, dependency_versions
from tests import has_cuml, has_gpu


def test_info_json():
    result = CliRunner().invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["srgpu"] == "0.1.0"
    assert set(report["dependencies"]) == set(DEPENDENCIES)
    assert report["dependencies"]["numpy"] != NOT_INSTALLED
    if not has_cuml:
        assert report["dependencies"]["cuml"] == NOT_INSTALLED
    assert report["cpu"]["logical_cores"] >= 1
    assert report["cpu"]["numba_threads"] >= 1
    assert set(report["usable"]) == {"gpu", "cupy", "cuml", "nvforest", "dask-cuda"}
    assert report["auto_backend"]["device"] == ("gpu" if has_gpu else "cpu")
    assert report["auto_backend"]["reason"]
    assert report["usable"]["gpu"]["usable"] is has_gpu


def test_info_text():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    for word in ("numpy", "scikit-learn", "dask-cuda", "numba threads", "--predict-device auto ->"):
        assert word in result.stdout


def test_dependency_versions_are_strings():
    versions = dependency_versions()
    assert all(isinstance(v, str) and v for v in versions.values())
