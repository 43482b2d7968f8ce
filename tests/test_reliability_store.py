"""The store between runs: damage, changed inputs, foreign files, locks, signals, strict JSON.

Every damage of the corpus (``tests/badstores.py``) is done to a copy of a partial or a complete
store; the rerun of the same command either repairs it (exit 0, bit for bit the uninterrupted
run) or refuses it with exit 2 and one line naming the array and chunk; a refused store is never
marked complete, and the fix the line suggests (``--overwrite``) works.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.cli.ensemble import build_config
from srgpu.run.ensemble import run_ensemble
from tests.badinputs import write_good_files
from tests.badstores import COMPLETE_DAMAGE, FLAGS, PARTIAL_DAMAGE, one_error_line

REPO = Path(__file__).resolve().parents[1]


def _cli(out: Path, *extra: str, flags=FLAGS):
    return CliRunner().invoke(app, ["ensemble", *flags, "--quiet", "--out", str(out), *extra])


def same_store(got: Path, ref: Path) -> None:
    """Every variable bit for bit, every attribute, and summary.json equal."""
    a = xr.open_zarr(got / "ensemble.zarr", consolidated=False)
    b = xr.open_zarr(ref / "ensemble.zarr", consolidated=False)
    assert set(a.variables) == set(b.variables)
    for name in b.variables:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert a[name].attrs == b[name].attrs, name
    assert a.attrs == b.attrs
    assert json.loads((got / "summary.json").read_text()) == json.loads(
        (ref / "summary.json").read_text()
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "out"
    result = _cli(out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    """A run of 3 batches stopped after 2."""
    out = tmp_path_factory.mktemp("partial") / "out"
    cfg = build_config(config_file=None, replicates=3, trees=5, batch_size=1)
    assert run_ensemble(cfg, out=out, max_batches=2)["batches_done"] == 2
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(src, out, symlinks=True)
    return out


# ------------------------------------------------------------------------ damage corpus
@pytest.mark.parametrize("case", PARTIAL_DAMAGE, ids=[c.name for c in PARTIAL_DAMAGE])
def test_damaged_partial_store(case, partial, reference, tmp_path):
    out = _copy(partial, tmp_path)
    case.damage(out)
    progress = (out / "progress.json").read_text()
    result = _cli(out)
    if case.outcome == "repair":
        assert result.exit_code == 0, (result.stderr, result.exception)
        for text in case.expect:
            assert text in result.stderr, (text, result.stderr)
        same_store(out, reference)
        return
    one_error_line(result, *case.expect)
    assert (out / "progress.json").read_text() == progress  # a refused store is left as it is
    assert not (out / "summary.json").exists()
    fixed = _cli(out, "--overwrite")  # the fix the line suggests
    assert fixed.exit_code == 0, (fixed.stderr, fixed.exception)
    same_store(out, reference)


@pytest.mark.parametrize("case", COMPLETE_DAMAGE, ids=[c.name for c in COMPLETE_DAMAGE])
def test_damaged_complete_store(case, reference, tmp_path):
    out = _copy(reference, tmp_path)
    case.damage(out)
    result = _cli(out)
    if case.outcome == "repair":
        assert result.exit_code == 0, (result.stderr, result.exception)
        for text in case.expect:
            assert text in result.stderr, (text, result.stderr)
        same_store(out, reference)
        again = _cli(out)  # repaired for good: nothing left to say
        assert again.exit_code == 0 and again.stderr == "", again.stderr
        return
    one_error_line(result, *case.expect)
    fixed = _cli(out, "--overwrite")
    assert fixed.exit_code == 0, (fixed.stderr, fixed.exception)
    same_store(out, reference)


def test_resume_says_it_resumes(partial, reference, tmp_path):
    out = _copy(partial, tmp_path)
    result = _cli(out)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip() == f"srgpu: resuming {out}: 2 of 3 batches already done"
    same_store(out, reference)


def test_store_arrays_carry_crc32c(reference):
    """Every array of the store (its groups' too: the kept moments of ``extension``; and of the
    work store while it exists) ends its codec chain with a crc32c checksum."""
    root = reference / "ensemble.zarr"
    metas = [
        m
        for m in sorted(root.rglob("zarr.json"))
        if json.loads(m.read_text())["node_type"] == "array"
    ]
    assert len(metas) > 50
    assert any(m.parent.parent.name == "extension" for m in metas)
    for meta in metas:
        codecs = [c["name"] for c in json.loads(meta.read_text())["codecs"]]
        assert codecs[-1] == "crc32c", (meta.parent.name, codecs)


def test_work_store_arrays_carry_crc32c_and_nan_fill(partial):
    for meta in sorted((partial / "work.zarr").glob("*/zarr.json")):
        data = json.loads(meta.read_text())
        assert [c["name"] for c in data["codecs"]][-1] == "crc32c"
        assert data["fill_value"] == "NaN"  # a deleted chunk reads as missing, not zeros


# ------------------------------------------------------------------------ input identity
def _edit_srdb(files):
    import pandas as pd

    frame = pd.read_csv(files.srdb)
    frame["Rs_annual"] = frame["Rs_annual"] * 1.5
    frame.to_csv(files.srdb, index=False)
    return files.srdb


def _edit_drivers(files):
    ds = xr.load_dataset(files.drivers)
    ds["tas"] = ds["tas"] + 0.25
    ds.to_netcdf(files.drivers)
    return files.drivers


def _edit_vegetation(files):
    ds = xr.load_dataset(files.vegetation)
    ds.attrs["history"] = "edited"
    ds.to_netcdf(files.vegetation)
    return files.vegetation


def _edit_zarr_chunk(files):
    store = files.root / "drivers.zarr"
    chunk = sorted(p for p in (store / "pr" / "c").rglob("*") if p.is_file())[0]
    data = xr.open_zarr(store, consolidated=False).load()
    data["pr"] = data["pr"] * 1.01
    data.to_zarr(store, mode="w", zarr_format=3, consolidated=False)
    assert chunk.exists()
    return store


@pytest.mark.parametrize(
    "edit",
    [_edit_srdb, _edit_drivers, _edit_vegetation, _edit_zarr_chunk],
    ids=lambda f: f.__name__,
)
def test_changed_input_on_resume_is_refused(edit, tmp_path):
    """The sha256 of every input is in progress.json: a file whose content changed between
    runs (same path) is named, nothing is mixed, and --overwrite starts again."""
    files = write_good_files(tmp_path / "in")
    drivers = files.drivers
    if edit is _edit_zarr_chunk:
        drivers = files.root / "drivers.zarr"
        xr.load_dataset(files.drivers).to_zarr(drivers, mode="w", zarr_format=3, consolidated=False)
    flags = ["--srdb", str(files.srdb), "--drivers", str(drivers)]
    flags += ["--vegetation", str(files.vegetation), "--replicates", "2", "--trees", "5"]
    flags += ["--batch-size", "1"]
    cfg = build_config(
        config_file=None,
        srdb=str(files.srdb),
        drivers=[str(drivers)],
        vegetation=str(files.vegetation),
        replicates=2,
        trees=5,
        batch_size=1,
    )
    out = tmp_path / "out"
    assert run_ensemble(cfg, out=out, max_batches=1)["batches_done"] == 1
    recorded = json.loads((out / "progress.json").read_text())["inputs"]
    assert set(recorded) == {str(files.srdb), str(drivers), str(files.vegetation)}
    changed = edit(files)
    result = _cli(out, flags=flags)
    one_error_line(result, str(changed), "content changed", "--overwrite")
    assert json.loads((out / "progress.json").read_text())["batches_done"] == 1
    fixed = _cli(out, "--overwrite", flags=flags)
    assert fixed.exit_code == 0, (fixed.stderr, fixed.exception)


# ------------------------------------------------------------------------ foreign files
@pytest.mark.parametrize("name", ["work.zarr", "summary.json", "ensemble.zarr", "progress.json"])
@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
def test_files_srgpu_did_not_write_are_never_touched(name, overwrite, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / name
    if name.endswith(".zarr"):
        target.mkdir()
        (target / "notes.txt").write_text("user data")
        keep = target / "notes.txt"
    else:
        target.write_text('{"mine": true}')
        keep = target
    before = keep.read_text()
    result = _cli(out, *(["--overwrite"] if overwrite else []))
    line = one_error_line(result, name)
    assert "not written by srgpu" in line or "unreadable" in line or "damaged" in line, line
    assert keep.read_text() == before
    assert not (out / "ensemble.zarr" / "zarr.json").exists()


@pytest.mark.parametrize("out", ["/", "/etc", "/usr/share/srgpu-out", "/home", "/proc/x"])
def test_system_folders_are_refused(out):
    result = CliRunner().invoke(app, ["ensemble", *FLAGS, "--quiet", "--out", out])
    one_error_line(result, "system folder", "--out")


def test_link_to_a_system_folder_is_refused(tmp_path):
    link = tmp_path / "out"
    link.symlink_to("/etc", target_is_directory=True)
    one_error_line(_cli(link), "/etc", "system folder")


# ------------------------------------------------------------------------ lock
@pytest.mark.parametrize("extra", [(), ("--overwrite",)], ids=["run", "overwrite"])
def test_second_run_on_a_locked_out_is_refused(extra, reference, tmp_path):
    from srgpu.run.guard import OutLock

    out = _copy(reference, tmp_path)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with OutLock(out):
        result = _cli(out, *extra)
        one_error_line(result, str(out), "in use by another srgpu run", f"pid {os.getpid()}")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert _cli(out).exit_code == 0  # released: the next run gets it
    same_store(out, reference)


def test_lock_file_link_is_not_followed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("user data")
    (out / ".srgpu.lock").symlink_to(victim)
    one_error_line(_cli(out), ".srgpu.lock", "symbolic link")
    assert victim.read_text() == "user data"


# ------------------------------------------------------------------------ JSON and modes
def test_one_replicate_writes_strict_json_and_usual_modes(tmp_path):
    out = tmp_path / "out"
    result = _cli(out, flags=("--replicates", "1", "--trees", "5"))
    assert result.exit_code == 0, result.stderr

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    for name in ("summary.json", "progress.json"):
        json.loads((out / name).read_text(), parse_constant=refuse)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fluxes"]["SR"]["total_pg_per_yr"]["sd"] is None  # one replicate: no SD
    chunk_mode = (out / "ensemble.zarr" / "zarr.json").stat().st_mode & 0o777
    for name in ("summary.json", "progress.json"):
        assert (out / name).stat().st_mode & 0o777 == chunk_mode, name


# ------------------------------------------------------------------------ explain
def test_explain_refuses_an_unfinished_run(partial, tmp_path):
    out = _copy(partial, tmp_path)
    result = CliRunner().invoke(app, ["explain", str(out), "--replicates", "1"])
    one_error_line(result, "not finished", "srgpu ensemble")


# ------------------------------------------------------------------------ signals
# The run of the signal test: ``srgpu ensemble`` in a child process whose store blocks when the
# second batch has been computed and is about to be written, after printing a marker line. The
# parent sends the signal only once it has read the marker, so the run is always still going
# (batch 1 written, batch 2 computed but not written) when the signal arrives.
SIGNAL_MARKER = "srgpu-test: batch 2 computed, waiting for the signal"
SIGNAL_CHILD = f"""
import sys, time
from srgpu.run.store import EnsembleStore

write_batch = EnsembleStore.write_batch
calls = []

def blocking_write_batch(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        print({SIGNAL_MARKER!r}, flush=True)
        time.sleep(600)
        raise SystemExit("srgpu-test: no signal came within 600 s")
    return write_batch(self, *args, **kwargs)

EnsembleStore.write_batch = blocking_write_batch
from srgpu.cli import main

sys.argv[0] = "srgpu"
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_prints_one_line_and_rerun_resumes(sig, code, reference, tmp_path):
    out = tmp_path / "out"
    args = ["ensemble", *FLAGS, "--quiet", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NUMBA_NUM_THREADS": "1"}
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", SIGNAL_CHILD, *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
        seen = []
        for line in proc.stdout:  # ends at the marker, or when the child exits without it
            seen.append(line)
            if line.strip() == SIGNAL_MARKER:
                break
        assert seen and seen[-1].strip() == SIGNAL_MARKER, (seen, err_path.read_text())
        proc.send_signal(sig)
        proc.communicate(timeout=240)
    err = err_path.read_text()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0] == "srgpu: interrupted after 1 of 3 batches; rerun the same command to resume"
    cmd = [sys.executable, "-m", "srgpu", *args]
    again = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"srgpu: resuming {out}: 1 of 3 batches already done" in again.stderr, again.stderr
    same_store(out, reference)


# ------------------------------------------------------------------------ readers
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from tests.badinputs import write_good_model

    return write_good_model(tmp_path_factory.mktemp("model"))[1]


@pytest.mark.parametrize("command", ["report", "compare", "explain"])
@pytest.mark.parametrize(
    "chunk", ["SR_replicate_map/c/1/0", "AR_replicate_total/c/0/0", "HR_sd_map/c/0/0"]
)
def test_readers_name_a_truncated_chunk(command, chunk, reference, model_file, tmp_path):
    """``srgpu report``/``compare``/``explain`` on a store with a truncated chunk: exit 2, one
    line naming the array and the chunk (each chunk is read once, its checksum checked)."""
    out = _copy(reference, tmp_path)
    path = out / "ensemble.zarr" / chunk
    path.write_bytes(path.read_bytes()[:7])
    array, key = chunk.split("/", 1)
    target = out / "ensemble.zarr" if command == "compare" else out
    args = [command, str(target)]
    if command == "compare":
        args += ["--model", f"M={model_file}", "--out", str(tmp_path / "cmp")]
    elif command == "report":
        args += ["--out", str(tmp_path / "rep")]
    else:
        args += ["--replicates", "1", "--out", str(tmp_path / "exp")]
    result = CliRunner().invoke(app, args)
    one_error_line(result, f"'{array}'", key, "--overwrite")


# ------------------------------------------------------------------------ disk full
def _enospc_on(monkeypatch, *, name: str, nth: int):
    """Make the ``nth`` atomic write of ``name`` (progress.json, summary.json) fail as a full
    disk does."""
    import errno

    import srgpu.run.final_results as final_mod
    import srgpu.run.progress as progress_mod
    from srgpu.run.safe_io import atomic_write_text as real

    seen = [0]

    def failing(path, text):
        if Path(path).name == name:
            seen[0] += 1
            if seen[0] == nth:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, text)

    for module in (progress_mod, final_mod):  # the writers of progress.json, summary.json
        monkeypatch.setattr(module, "atomic_write_text", failing)


def _enospc_on_chunk(monkeypatch, *, key: str):
    import errno

    from zarr.storage import LocalStore

    real = LocalStore._set

    async def failing(self, k, value, *a, **kw):
        if key in os.path.basename(str(self.root)) + "/" + k:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return await real(self, k, value, *a, **kw)

    monkeypatch.setattr(LocalStore, "_set", failing)


@pytest.mark.parametrize(
    "where",
    [
        ("progress.json", 1),  # at start: the first record
        ("progress.json", 4),  # the rewrite after batch 1
        ("summary.json", 1),  # finalisation
        ("chunk", "ensemble.zarr/HR_replicate_map/c/1/"),  # batch 1's rows
        ("chunk", "work.zarr/b_SR_m2/c/"),  # batch 1's moments
        ("chunk", "ensemble.zarr/AR_q975/"),  # a gridded result at finalisation
    ],
    ids=lambda w: f"{w[0]}-{w[1]}",
)
def test_disk_full_is_one_line_then_resumes(where, monkeypatch, reference, tmp_path):
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        if where[0] == "chunk":
            _enospc_on_chunk(m, key=where[1])
        else:
            _enospc_on(m, name=where[0], nth=where[1])
        result = _cli(out)
    line = one_error_line(result, "No space left on device", "once there is space")
    assert "--overwrite" not in line
    if (out / "progress.json").exists():
        assert json.loads((out / "progress.json").read_text())["complete"] is False
    assert not (out / "summary.json").exists()
    again = _cli(out)  # the suggested fix: the same command, once there is space
    assert again.exit_code == 0, (again.stderr, again.exception)
    same_store(out, reference)


def test_explain_refuses_changed_inputs(tmp_path):
    """explain re-grows forests from the run's inputs: an input edited since is named."""
    files = write_good_files(tmp_path / "in")
    flags = ["--srdb", str(files.srdb), "--drivers", str(files.drivers)]
    flags += ["--vegetation", str(files.vegetation), "--replicates", "1", "--trees", "3"]
    out = tmp_path / "out"
    assert _cli(out, flags=flags).exit_code == 0
    changed = _edit_srdb(files)
    result = CliRunner().invoke(app, ["explain", str(out), "--replicates", "1"])
    one_error_line(result, str(changed), "changed since the run", "srgpu ensemble with --overwrite")


def test_overwrite_keeps_a_work_store_planted_beside_a_finished_run(reference, tmp_path):
    """A finished run has removed its work store: a ``work.zarr`` beside it is not srgpu's,
    and ``--overwrite`` refuses to delete it."""
    out = _copy(reference, tmp_path)
    (out / "work.zarr").mkdir()
    (out / "work.zarr" / "mine.txt").write_text("user data")
    one_error_line(_cli(out, "--overwrite"), "work.zarr", "not written by srgpu")
    assert (out / "work.zarr" / "mine.txt").read_text() == "user data"
    assert (out / "summary.json").exists()
