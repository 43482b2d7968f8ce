"""``srgpu fetch srdb`` and :mod:`srgpu.data.download`: local registration, pinned hashes."""

from __future__ import annotations

import gzip
import hashlib

import pytest
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.data import download
from srgpu.data.download import SRDB_RELEASES, content_sha256, fetch_srdb, register_srdb
from srgpu.errors import DownloadError

V5_SHA = "3695124acf2744cff2720eb923ec12da3e436aba67e2ab58b48fca754a54b361"
HEADER = (
    "Record_number,Study_number,Latitude,Longitude,Study_midyear,Manipulation,"
    "Rs_annual,Rh_annual,Ecosystem_type"
)


def test_pins(srdb_v5_path):
    """The pinned sha256 is the content hash of the real SRDB v5.0 file (not only a constant
    compared with a copy of itself)."""
    v5 = SRDB_RELEASES["v5.0"]
    assert v5.sha256 == V5_SHA == content_sha256(srdb_v5_path)
    assert v5.commit in v5.url and v5.url.endswith("/srdb-data.csv")
    assert download.DEFAULT_VERSION == "v5.0"


def test_content_sha256_plain_and_gzip(tmp_path):
    data = b"a,b\n1,2\n"
    (tmp_path / "p.csv").write_bytes(data)
    (tmp_path / "g.csv.gz").write_bytes(gzip.compress(data))
    expected = hashlib.sha256(data).hexdigest()
    assert content_sha256(tmp_path / "p.csv") == content_sha256(tmp_path / "g.csv.gz") == expected


def test_default_cache_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SRGPU_CACHE", str(tmp_path / "c"))
    assert download.default_cache_dir() == tmp_path / "c"


def test_cli_from_real_v5(srdb_v5_path, tmp_path):
    result = CliRunner().invoke(
        app, ["fetch", "srdb", "--from", str(srdb_v5_path), "--cache", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    cached = tmp_path / "srdb-data_v5.0.csv"
    assert cached.is_file() and str(cached) in result.stdout
    assert content_sha256(cached) == V5_SHA
    assert "3761 SR + 750 HR" in result.output
    # once cached, a plain fetch finds it without any download
    got = fetch_srdb(cache_dir=tmp_path, downloader=_offline)
    assert got.path == cached and got.pinned


def test_cli_from_wrong_version(srdb_v5_path, tmp_path):
    result = CliRunner().invoke(
        app,
        ["fetch", "srdb", "--from", str(srdb_v5_path), "--version", "20221009"],
        env={"SRGPU_CACHE": str(tmp_path)},
    )
    assert result.exit_code == 2
    assert "is SRDB v5.0" in result.output and "Traceback" not in result.output


def test_cli_from_malformed_csv(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "\n1,7,45.5,north,2001.5,None,800,400,Forest\n")
    result = CliRunner().invoke(
        app, ["fetch", "srdb", "--from", str(bad), "--cache", str(tmp_path / "c")]
    )
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(bad) in lines[0] and "'Longitude'" in lines[0] and "'north'" in lines[0]
    assert not (tmp_path / "c").exists()


def test_from_unknown_release_registers_with_warning(tmp_path):
    src = tmp_path / "mine.csv.gz"
    src.write_bytes(gzip.compress((HEADER + "\n1,7,45.5,10,2001.5,None,800,400,Forest\n").encode()))
    with pytest.warns(UserWarning, match="not a pinned SRDB release"):
        got = register_srdb(src, cache_dir=tmp_path / "c")
    assert not got.pinned and got.version.startswith("local-")
    assert got.path.read_text().startswith("Record_number,")  # stored uncompressed
    with pytest.raises(DownloadError, match="does not match the pinned SRDB v5.0"):
        register_srdb(src, version="v5.0", cache_dir=tmp_path / "c")
    result = CliRunner().invoke(
        app, ["fetch", "srdb", "--from", str(src), "--version", "mine", "--cache", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "srdb-data_mine.csv" in result.stdout


def _offline(url, output_file, pooch):
    raise ConnectionError(f"Failed to resolve host for {url}")


def test_no_network_is_one_line_exit_2(monkeypatch, tmp_path):
    import pooch

    monkeypatch.setattr(pooch, "HTTPDownloader", lambda **kw: _offline)
    result = CliRunner().invoke(app, ["fetch", "srdb", "--cache", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("srgpu: error: cannot download SRDB v5.0")
    assert "--from PATH" in lines[-1] and "Traceback" not in result.output
    assert not (tmp_path / "srdb-data_v5.0.csv").exists()


def test_unknown_version(tmp_path):
    with pytest.raises(DownloadError, match="unknown SRDB version 'v9'"):
        fetch_srdb(version="v9", cache_dir=tmp_path)
