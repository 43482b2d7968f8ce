"""Bad input: every broken file gives exit code 2 and one line naming the file, field and value.

The corpus (``tests/badinputs.py``) is generated into temporary directories from the demo
world: SRDB CSVs, driver NetCDF/Zarr, vegetation maps and model files with missing or renamed
columns, wrong types, NaN/inf, absurd values, duplicated records, wrong or missing units,
non-monotonic/irregular/mismatched grids, unknown calendars, empty and truncated files. Each is
driven through the CLI (``srgpu ensemble``, ``srgpu fetch srdb --from``, ``srgpu compare``);
hypothesis fuzzes SRDB cells and bytes and driver units. Record-level problems that SRDB itself
contains (missing or out-of-range coordinates, non-positive fluxes) are QC drops, counted by
reason, not errors: see ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
import shutil
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.errors import InputError, SrgpuError
from srgpu.run.ensemble import run_ensemble
from tests.badinputs import CASES, MODEL_CASES, write_good_files, write_good_model

SRDB_CASES = [c for c in CASES if c.option == "srdb"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return write_good_files(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    return write_good_model(tmp_path_factory.mktemp("model"))


def _one_error_line(result, *, names: list[str], expect: tuple[str, ...]) -> str:
    """The CLI failed with exit 2 and exactly one line on stderr that names the file(s)."""
    err = result.stderr
    assert result.exit_code == 2, (result.exit_code, err, result.exception)
    assert "Traceback" not in result.output + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("srgpu: error: "), line
    assert any(n in line for n in names), (names, line)
    for text in expect:
        assert text in line, (text, line)
    return line


def _ensemble_args(good, case, bad, out: Path) -> list[str]:
    srdb, drivers, veg = good.srdb, [good.drivers], good.vegetation
    if case.option == "srdb":
        srdb = bad
    elif case.option == "drivers":
        drivers = bad if isinstance(bad, list) else [bad]
    elif case.option == "vegetation":
        veg = bad
    args = ["ensemble", "--srdb", str(srdb), "--vegetation", str(veg)]
    for d in drivers:
        args += ["--drivers", str(d)]
    return [*args, "--out", str(out), "--replicates", "2", "--trees", "5", "--quiet"]


def _never_complete(out: Path) -> None:
    progress = out / "progress.json"
    assert not progress.exists() or not json.loads(progress.read_text())["complete"]
    assert not (out / "summary.json").exists()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_ensemble_exit_2(case, good, tmp_path):
    bad = case.make(good, tmp_path / case.name)
    bad_file = bad[-1] if isinstance(bad, list) else bad
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _ensemble_args(good, case, bad, out))
    _one_error_line(result, names=[bad_file.name], expect=case.expect)
    _never_complete(out)


@pytest.mark.parametrize("case", SRDB_CASES, ids=[c.name for c in SRDB_CASES])
def test_bad_srdb_refused_by_fetch(case, good, tmp_path):
    """``srgpu fetch srdb --from BAD`` fails the same way and caches nothing."""
    bad = case.make(good, tmp_path / case.name)
    cache = tmp_path / "cache"
    result = CliRunner().invoke(app, ["fetch", "srdb", "--from", str(bad), "--cache", str(cache)])
    _one_error_line(result, names=[bad.name], expect=case.expect)
    assert not list(cache.glob("srdb-data_*")) if cache.exists() else True


@pytest.mark.parametrize("name,make,expect", MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
def test_bad_model_file_compare_exit_2(name, make, expect, good_model, tmp_path):
    store, model = good_model
    bad = make(model, tmp_path / name)
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app, ["compare", str(store), "--model", f"M={bad}", "--out", str(out)]
    )
    _one_error_line(result, names=[bad.name], expect=expect)


def test_wrong_hash_is_refused(good, tmp_path):
    """A local file registered as a pinned release must have its hash; a download whose bytes
    do not match the pinned sha256 is refused and not cached."""
    from srgpu.data.download import fetch_srdb

    cache = tmp_path / "cache"
    result = CliRunner().invoke(
        app,
        ["fetch", "srdb", "--from", str(good.srdb), "--version", "v5.0", "--cache", str(cache)],
    )
    _one_error_line(result, names=[good.srdb.name], expect=("sha256", "does not match"))

    def fake_download(url, output_file, pooch):
        Path(output_file).write_bytes(good.srdb.read_bytes())

    with pytest.raises(SrgpuError, match="cannot download SRDB v5.0.*[Hh]ash|SHA256"):
        fetch_srdb(version="v5.0", cache_dir=cache, downloader=fake_download)
    assert not (cache / "srdb-data_v5.0.csv").exists()


# ------------------------------------------------------------------------ QC drops, not errors
def test_bad_records_are_qc_drops(good, tmp_path):
    """A few records with missing/out-of-range coordinates, a missing or non-positive flux are
    dropped and counted by reason; the rest of the file is used."""
    from srgpu.data.observations import load_observations

    ref = load_observations(good.srdb).qc
    frame = good.srdb_frame()
    kept = [i for i in range(len(frame)) if frame.loc[i, "Manipulation"] == "None"]
    kept = [i for i in kept if frame.loc[i, "Rs_annual"] and frame.loc[i, "Study_midyear"]]
    kept = [i for i in kept if not frame.loc[i, "Rh_annual"]][:6]
    frame.loc[kept[0], "Latitude"] = "95"
    frame.loc[kept[1], "Longitude"] = "-181"
    frame.loc[kept[2], "Latitude"] = "NA"
    frame.loc[kept[3], "Rs_annual"] = "-20"
    frame.loc[kept[4], "Rs_annual"] = "0"
    path = tmp_path / "srdb.csv"
    frame.to_csv(path, index=False)
    qc = load_observations(path).qc
    assert qc.sr["invalid_coordinates"] == ref.sr["invalid_coordinates"] + 3
    assert qc.sr["nonpositive"] == ref.sr["nonpositive"] + 2
    assert qc.n_sr == ref.n_sr - 5
    assert qc.n_hr == ref.n_hr


# ------------------------------------------------------------------------ property-based
NUMERIC = ("Record_number", "Latitude", "Longitude", "Study_midyear", "Rs_annual", "Rh_annual")
cell_text = st.one_of(
    st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e308", "-0", "1,5", "NA", "", " ", "None", '"']),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(row=st.integers(min_value=0, max_value=39), column=st.sampled_from(NUMERIC), text=cell_text)
def test_fuzz_srdb_cell(good, tmp_path, row, column, text):
    """Any text in any numeric cell gives a result or an InputError naming the file; never
    another exception, never a multi-line message."""
    from srgpu.data.observations import load_observations

    frame = good.srdb_frame().iloc[:40].copy()
    frame.loc[frame.index[row], column] = text
    path = tmp_path / "fuzz.csv"
    frame.to_csv(path, index=False)
    try:
        obs = load_observations(path)
    except InputError as exc:
        message = str(exc)
        assert "\n" not in message and str(path) in message
    else:
        assert np.isfinite(obs.table["value"]).all()
        assert (obs.table["value"] > 0).all() and (obs.table["value"] <= 10_000).all()
        assert obs.table["lat"].between(-90, 90).all()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), gz=st.booleans())
def test_fuzz_srdb_bytes(tmp_path, data, gz):
    """Arbitrary bytes (plain or gzip-framed) never escape as anything but InputError."""
    import gzip

    from srgpu.data.observations import read_srdb

    path = tmp_path / "bytes.csv"
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(InputError) as info:
        read_srdb(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


@settings(max_examples=40, deadline=None)
@given(
    role=st.sampled_from(["tas", "pr", "hurs", "lai", "rsds", "par", "soc", "sftlf"]),
    units=st.one_of(st.none(), st.text(max_size=15), st.sampled_from(["K", "degC", "W m-2"])),
)
def test_fuzz_driver_units(role, units):
    """Any units attribute either converts or is a UnitError naming the file and variable."""
    from srgpu.data.drivers import Found, convert_units
    from srgpu.errors import UnitError

    attrs = {} if units is None else {"units": units}
    da = xr.DataArray(np.ones((2, 2)), dims=("lat", "lon"), attrs=attrs, name="v")
    found = Found(role, "drivers.nc", "v", da)
    try:
        out = convert_units(da, found=found, days=30.0)
    except UnitError as exc:
        assert "drivers.nc" in str(exc) and "'v'" in str(exc) and "\n" not in str(exc)
    else:
        assert np.isfinite(out.values).all()


# ------------------------------------------------------------------------ output directory
def test_out_under_a_regular_file_fails_cleanly(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file")
    out = blocker / "out"
    result = CliRunner().invoke(
        app, ["ensemble", "--replicates", "2", "--trees", "5", "--quiet", "--out", str(out)]
    )
    _one_error_line(result, names=[str(out)], expect=("output directory",))
    assert blocker.read_text() == "a regular file"


def _invoke_as_unprivileged_real_user(args: list[str]) -> dict:
    """Run the CLI in a forked child whose *real* uid/gid are 65534 (nobody) and effective ids
    unchanged. ``os.access`` (the store's writability check) tests the real ids, so a root
    test run sees a 0o555 directory as not writable, as an ordinary user does; the effective
    ids stay root so the child can still import modules from anywhere."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        code = 1
        try:
            os.close(read_fd)
            os.setresgid(65534, os.getegid(), os.getegid())
            os.setresuid(65534, os.geteuid(), os.geteuid())
            res = CliRunner().invoke(app, args)
            msg = {"exit_code": res.exit_code, "stderr": res.stderr, "output": res.output}
            os.write(write_fd, json.dumps(msg).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    data = b""
    while chunk := os.read(read_fd, 1 << 16):
        data += chunk
    os.close(read_fd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and data, "the child failed"
    return json.loads(data)


def test_read_only_out_fails_cleanly(tmp_path):
    """A 0o555 output directory is refused in one line, exit 2. As root (CI), chmod does not
    stop root's writes, so the CLI runs in a child whose real uid is unprivileged (in a
    directory under the system temp dir, which that uid can look up; pytest's is 0o700)."""
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp()) if as_root else tmp_path
    base.chmod(0o755)
    out = base / "ro"
    out.mkdir()
    out.chmod(0o555)
    args = ["ensemble", "--replicates", "2", "--trees", "5", "--quiet", "--out", str(out)]
    try:
        if as_root:
            res = _invoke_as_unprivileged_real_user(args)
            assert res["exit_code"] == 2, res
            lines = res["stderr"].strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in res["output"], res
            assert lines[0] == f"srgpu: error: {out}: the output directory is not writable"
        else:
            result = CliRunner().invoke(app, args)
            _one_error_line(result, names=[str(out)], expect=("not writable",))
        assert list(out.iterdir()) == []  # nothing written
    finally:
        out.chmod(0o755)
        if as_root:
            shutil.rmtree(base)


# ------------------------------------------------------------------------ safety
UNSAFE_LOADS = (
    "pickle.load",
    "pickle.loads",
    "cloudpickle.load",
    "joblib.load",
    "dill.load",
    "torch.load",
    "read_pickle",
    "allow_pickle=True",
    "shelve.open",
    "marshal.load",
)


def test_no_code_path_loads_pickles():
    """No module of the package deserialises pickle/joblib files (only Dask's own transport
    pickles between processes of the same run)."""
    package = Path(__file__).resolve().parents[1] / "srgpu"
    hits = []
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        hits += [f"{path.name}: {pat}" for pat in UNSAFE_LOADS if pat in text]
    assert hits == []


def _demo_cli(out: Path, *extra: str):
    args = ["ensemble", "--replicates", "2", "--trees", "5", "--quiet", "--out", str(out)]
    return CliRunner().invoke(app, [*args, *extra])


def test_out_with_dotdot_writes_only_inside_resolved_dir(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "keep.txt").write_text("user data")
    result = _demo_cli(tmp_path / "a" / ".." / "b")
    assert result.exit_code == 0, result.output
    written = {p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()}
    assert written == {"b", "sibling"}
    assert (tmp_path / "b" / "summary.json").exists()
    assert list((tmp_path / "a").iterdir()) == []
    assert (tmp_path / "sibling" / "keep.txt").read_text() == "user data"


def test_overwrite_clears_only_srgpu_files(tmp_path):
    """``--overwrite`` removes srgpu's own files, nothing else in ``--out``, and never follows
    a symbolic link out of it."""
    from srgpu.run.store import EnsembleStore

    out = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("user data")
    out.mkdir()
    (out / "notes.txt").write_text("user notes")
    (out / "figures").mkdir()
    (out / "figures" / "f.png").write_bytes(b"png")
    (out / "work.zarr").symlink_to(outside, target_is_directory=True)
    EnsembleStore(out).clear()
    assert (outside / "precious.txt").read_text() == "user data"
    assert not (out / "work.zarr").exists() and not (out / "work.zarr").is_symlink()
    result = _demo_cli(out)
    assert result.exit_code == 0, result.output
    result = _demo_cli(out, "--overwrite", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "user notes"
    assert (out / "figures" / "f.png").read_bytes() == b"png"
    assert (outside / "precious.txt").read_text() == "user data"


def test_unwritable_store_fails_cleanly_then_resumes(tmp_path):
    """A store that cannot be written (here a chunk directory replaced by a regular file: tests
    run as root, where chmod does not stop writes) fails with exit 2 and one line, records
    nothing, and the same command resumes once the store is writable again."""
    from srgpu.cli.ensemble import build_config

    flags = ("--batch-size", "1", "--replicates", "3")
    cfg = build_config(config_file=None, replicates=3, trees=5, batch_size=1)
    ref, out = tmp_path / "ref", tmp_path / "out"
    assert _demo_cli(ref, *flags).exit_code == 0
    partial = run_ensemble(cfg, out=out, max_batches=1)
    assert partial["batches_done"] == 1
    chunks = out / "ensemble.zarr" / "SR_replicate_map" / "c"
    aside = tmp_path / "aside"
    chunks.rename(aside)
    chunks.write_text("not a directory")
    result = _demo_cli(out, *flags)
    # the resume first checks the finished batch against the arrays: its rows cannot be read
    # (the chunk directory is a file), so it recomputes them, and that write fails
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and "Traceback" not in result.output + result.stderr
    assert len(lines) == 2 and "recomputing batch 0" in lines[0], lines
    assert lines[1].startswith(f"srgpu: error: {out}"), lines
    assert "rewriting batch 0 failed" in lines[1] and "rerun the same command" in lines[1]
    assert json.loads((out / "progress.json").read_text())["batches_done"] == 1
    _never_complete(out)
    chunks.unlink()
    aside.rename(chunks)
    result = _demo_cli(out, *flags)
    assert result.exit_code == 0, result.output
    a = xr.open_zarr(out / "ensemble.zarr", consolidated=False)
    b = xr.open_zarr(ref / "ensemble.zarr", consolidated=False)
    for name in b.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
