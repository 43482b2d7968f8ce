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
