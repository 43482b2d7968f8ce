"""Extending a run to more replicates ends bit for bit where a fresh run of the larger count ends.

The demo world, 5 trees, batches of 2: a fresh run of 5 replicates is the reference; runs of 1
(no full batch), 3 (a partial last batch), 4 (full batches only) and an unfinished run are
extended to 5 with ``srgpu ensemble --replicates 5`` on the same ``--out``, and every store
variable (with the kept moments of ``ensemble.zarr/extension``), every attribute and
``summary.json`` must equal the reference's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli.ensemble import build_config
from srgpu.run.ensemble import run_ensemble
from srgpu.run.extend import EXTENSION_GROUP
from tests.badstores import one_error_line

FLAGS = ("--trees", "5", "--batch-size", "2")


def _cli(out: Path, replicates: int, *extra: str):
    args = ["ensemble", *FLAGS, "--replicates", str(replicates), "--quiet", "--out", str(out)]
    return CliRunner().invoke(app, [*args, *extra])


def _ok(result):
    assert result.exit_code == 0, (result.stderr, result.exception)
    return result


def same_run(got: Path, ref: Path) -> None:
    """Every store variable and the kept moments bit for bit (numpy array_equal), every
    attribute, and summary.json equal."""
    a = xr.open_zarr(got / "ensemble.zarr", consolidated=False)
    b = xr.open_zarr(ref / "ensemble.zarr", consolidated=False)
    assert set(a.variables) == set(b.variables)
    for name in b.variables:
        va, vb = a[name].values, b[name].values
        assert np.array_equal(va, vb, equal_nan=vb.dtype.kind == "f"), name
        assert a[name].attrs == b[name].attrs, name
    assert a.attrs == b.attrs
    ga = zarr.open_group(got / "ensemble.zarr", mode="r")[EXTENSION_GROUP]
    gb = zarr.open_group(ref / "ensemble.zarr", mode="r")[EXTENSION_GROUP]
    assert dict(ga.attrs) == dict(gb.attrs)
    assert sorted(ga.array_keys()) == sorted(gb.array_keys())
    for name in gb.array_keys():
        assert np.array_equal(ga[name][:], gb[name][:]), name
    assert json.loads((got / "summary.json").read_text()) == json.loads(
        (ref / "summary.json").read_text()
    )
    assert not (got / "work.zarr").exists()


@pytest.fixture(scope="module")
def fresh5(tmp_path_factory):
    out = tmp_path_factory.mktemp("fresh") / "out"
    _ok(_cli(out, 5))
    return out


@pytest.fixture(scope="module")
def done3(tmp_path_factory):
    """A finished run of 3 replicates: batches {0, 1} and {2} (the last one partial)."""
    out = tmp_path_factory.mktemp("three") / "out"
    _ok(_cli(out, 3))
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(src, out, symlinks=True)
    return out


def test_the_kept_moments_are_those_of_the_full_batches(fresh5):
    """5 replicates in batches of 2: the moments after batches {0, 1} and {2, 3}, i.e. of
    replicates 0-3: their time mean is the mean of those replicates' time-mean maps."""
    grp = zarr.open_group(fresh5 / "ensemble.zarr", mode="r")[EXTENSION_GROUP]
    assert grp.attrs["replicates"] == 4 and grp.attrs["batches"] == 2
    ds = xr.open_zarr(fresh5 / "ensemble.zarr", consolidated=False)
    maps = ds["SR_replicate_map"].values.astype(np.float64)  # (replicate, cell)
    n_years = ds.sizes["year"]
    kept = grp["SR_mean"][:].reshape(n_years, -1).mean(axis=0)
    np.testing.assert_allclose(kept, maps[:4].mean(axis=0), rtol=1e-6)
    assert not np.allclose(kept, maps.mean(axis=0), rtol=1e-6)  # not all 5


def test_extending_a_run_with_a_partial_last_batch(done3, fresh5, tmp_path):
    out = _copy(done3, tmp_path)
    result = _ok(_cli(out, 5))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [f"srgpu: extending {out} from 3 to 5 replicates"], result.stderr
    same_run(out, fresh5)


@pytest.mark.parametrize("old", [1, 4])
def test_extending_with_no_or_only_full_batches(old, fresh5, tmp_path):
    """1 < batch size: nothing to keep, the run starts again; 4: both batches kept."""
    out = tmp_path / "out"
    _ok(_cli(out, old))
    result = _ok(_cli(out, 5))
    assert f"extending {out} from {old} to 5 replicates" in result.stderr
    same_run(out, fresh5)


def test_extending_an_unfinished_run(fresh5, tmp_path):
    """A run of 3 stopped after its first batch goes on as a run of 5."""
    out = tmp_path / "out"
    cfg = build_config(config_file=None, replicates=3, trees=5, batch_size=2)
    assert run_ensemble(cfg, out=out, max_batches=1)["batches_done"] == 1
    _ok(_cli(out, 5))
    same_run(out, fresh5)


def test_an_extension_killed_before_renaming_its_config_resumes(done3, fresh5, tmp_path):
    """progress.json (the commit point) has the new config, the store's attributes still the
    old one: the rerun renames them and ends as the fresh run."""
    out = _copy(done3, tmp_path)
    old_attrs = dict(zarr.open_group(out / "ensemble.zarr", mode="r").attrs)
    cfg = build_config(config_file=None, replicates=5, trees=5, batch_size=2)
    assert run_ensemble(cfg, out=out, max_batches=0)["batches_done"] == 1
    root = zarr.open_group(out / "ensemble.zarr", mode="r+")
    root.attrs.update({k: old_attrs[k] for k in ("config", "config_hash")})
    result = _ok(_cli(out, 5))
    assert "resuming" in result.stderr
    same_run(out, fresh5)


def test_fewer_replicates_than_finished_is_refused(done3, tmp_path):
    out = _copy(done3, tmp_path)
    before = (out / "summary.json").read_text()
    one_error_line(_cli(out, 2), "holds a run of 3 replicates", "--replicates 2", "--overwrite")
    assert (out / "summary.json").read_text() == before
    _ok(_cli(out, 2, "--overwrite"))


def test_another_change_beside_replicates_is_named(done3, tmp_path):
    out = _copy(done3, tmp_path)
    result = CliRunner().invoke(
        app,
        ["ensemble", "--trees", "6", "--batch-size", "2", "--replicates", "5", "--quiet"]
        + ["--out", str(out)],
    )
    one_error_line(result, "replicates 3 -> 5", "forest.trees 5 -> 6")


def test_a_run_finished_without_kept_moments_is_refused(done3, tmp_path):
    out = _copy(done3, tmp_path)
    shutil.rmtree(out / "ensemble.zarr" / EXTENSION_GROUP)
    one_error_line(_cli(out, 5), EXTENSION_GROUP, "missing", "--overwrite")
    assert json.loads((out / "progress.json").read_text())["complete"] is True


def test_damaged_kept_moments_are_refused_in_one_line(done3, tmp_path):
    out = _copy(done3, tmp_path)
    chunk = out / "ensemble.zarr" / EXTENSION_GROUP / "SR_m2" / "c" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    one_error_line(_cli(out, 5), f"{EXTENSION_GROUP}/SR_m2", "damaged", "--overwrite")


def test_a_quantiles_run_is_not_extended(tmp_path):
    """Its pooled weights after the full batches are not kept: refused in one line, nothing
    changed."""
    out = tmp_path / "out"
    _ok(_cli(out, 2, "--predictive", "quantiles"))
    before = (out / "summary.json").read_text()
    one_error_line(
        _cli(out, 3, "--predictive", "quantiles"),
        "holds a run of 2 replicates",
        "'quantiles'",
        "--overwrite",
    )
    assert (out / "summary.json").read_text() == before
    assert json.loads((out / "progress.json").read_text())["complete"] is True


def test_an_extension_names_the_outputs_that_describe_the_smaller_run(done3, fresh5, tmp_path):
    """explain/report/compare outputs of the 3-replicate run are named in the extension's line
    (they are not removed: they are the user's until --overwrite)."""
    out = _copy(done3, tmp_path)
    (out / "explain.nc").write_bytes(b"old")
    (out / "report").mkdir()
    (out / "report" / "report.html").write_text("old")
    (out / "notes").mkdir()  # not srgpu's: not named
    result = _ok(_cli(out, 5))
    line = [x for x in result.stderr.splitlines() if "extending" in x]
    assert len(line) == 1, result.stderr
    assert "from 3 to 5 replicates; explain.nc, report/ describe the 3-replicate run" in line[0]
    assert "notes" not in line[0]
    assert (out / "explain.nc").read_bytes() == b"old"
    same_run(out, fresh5)
