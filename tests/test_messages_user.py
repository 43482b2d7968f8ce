"""Messages a new user meets (issue 18, deliver 7): each one short and saying what to type."""

from __future__ import annotations

from typer.testing import CliRunner

from srgpu.cli import app

REQUESTS_OFFLINE = (
    "HTTPSConnectionPool(host='example.org', port=443): Max retries exceeded with url: "
    "/bpbond/srdb/c61d88ae32b78d56f78083b71b2cc1d016716bba/srdb-data.csv (Caused by "
    'NameResolutionError("<urllib3.connection.HTTPSConnection object at 0x7f0c2a1b3d90>: '
    "Failed to resolve 'example.org' ([Errno -3] Temporary failure in name resolution)\"))"
)


def test_offline_fetch_srdb_is_short_and_says_what_to_type(monkeypatch, tmp_path):
    import pooch

    def offline(url, output_file, pooch_):
        raise ConnectionError(REQUESTS_OFFLINE)

    monkeypatch.setattr(pooch, "HTTPDownloader", lambda **kw: offline)
    res = CliRunner().invoke(app, ["fetch", "srdb", "--cache", str(tmp_path)])
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line == (
        "srgpu: error: cannot download SRDB v5.0: host not found (no network?); without "
        "network: srgpu fetch srdb --from PATH (a copy of srdb-data_v5.0.csv, plain or gzip)"
    )
    assert len(line) < 170


def test_predictors_without_flux_says_what_to_type():
    res = CliRunner().invoke(app, ["ensemble", "--predictors", "MAT,Prec"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1] == (
        "srgpu: error: --predictors 'MAT,Prec': expected FLUX=NAME,NAME,... "
        "(e.g. --predictors SR=MAT,Prec --predictors HR=MAT,Prec)"
    )


def test_two_files_after_one_drivers_flag_says_repeat_the_flag():
    res = CliRunner().invoke(
        app, ["ensemble", "--srdb", "s.csv", "--drivers", "a.nc", "b.nc", "c.nc"]
    )
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line == (
        "srgpu: error: unexpected argument(s) b.nc c.nc: a flag takes one value; repeat it for "
        "each file, e.g. --drivers b.nc --drivers c.nc"
    )


def test_missing_driver_of_the_default_set_names_the_flux(tmp_path):
    from srgpu.data.demo import make_demo_world

    world = make_demo_world(seed=0)
    humid = [
        n
        for n, v in world.drivers.data_vars.items()
        if v.attrs.get("standard_name") == "relative_humidity"
    ]
    assert humid
    world.srdb.to_csv(tmp_path / "srdb.csv", index=False)
    world.drivers.drop_vars(humid).to_netcdf(tmp_path / "drivers.nc")
    world.vegetation.to_netcdf(tmp_path / "veg.nc")
    args = ["ensemble", "--srdb", str(tmp_path / "srdb.csv"), "--drivers"]
    args += [str(tmp_path / "drivers.nc"), "--vegetation", str(tmp_path / "veg.nc")]
    args += ["--predictors", "SR=MAT,Prec", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert "field 'RH'" in line
    assert line.endswith(
        "RH is in HR's default (paper) set MAT,Prec,RH,PAR,RH_GS,LAI_GS,PAR_GS, used because "
        "no --predictors HR=... was given; e.g. --predictors HR=MAT,Prec,PAR,LAI_GS,PAR_GS"
    )


def test_overwrite_removes_old_outputs_and_names_what_it_leaves(tmp_path):
    out = tmp_path / "o"
    args = ["ensemble", "--replicates", "1", "--trees", "3", "--out", str(out)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    (out / "report").mkdir()
    (out / "report" / "report.html").write_text("<html></html>")
    (out / "explain.nc").write_bytes(b"x")
    (out / "SR_importance.png").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    res = CliRunner().invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert "--overwrite: removed the old run's explain.nc, SR_importance.png, report/" in res.output
    assert f"--overwrite: left in {out} (not srgpu's): notes.txt" in res.output
    assert not (out / "report").exists() and not (out / "explain.nc").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "ensemble.zarr").is_dir()
