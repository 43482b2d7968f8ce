"""``srgpu fetch cru``: the humidity formula on known values, and downloads from a loopback HTTP
server (127.0.0.1 only) serving small files in CRU TS's layout: one gzip NetCDF per variable
and decade, ``<var>/cru_ts4.07.<first>.<last>.<var>.dat.nc.gz``."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from srgpu.cli import app
from srgpu.data.cru import (
    CRU_RELEASES,
    build_cru_drivers,
    fetch_cru_files,
    relative_humidity_percent,
    saturation_vapour_pressure_hpa,
)
from srgpu.data.drivers import convert_units, find_variable, open_sources
from srgpu.errors import DownloadError

RELEASE = CRU_RELEASES["4.07"]
LAT = np.array([10.25, 10.75, 11.25, 11.75])
LON = np.array([20.25, 20.75, 21.25, 21.75, 22.25, 22.75])
UNITS = {"tmp": "degrees Celsius", "pre": "mm/month", "vap": "hPa"}
LONG = {"tmp": "near-surface temperature", "pre": "precipitation", "vap": "vapour pressure"}


def test_saturation_vapour_pressure_matches_fao56_table():
    # FAO-56 Annex 2, Table 2.3 (kPa, three decimals)
    t = np.array([0.0, 10.0, 20.0, 30.0])
    table_kpa = np.array([0.611, 1.228, 2.338, 4.243])
    np.testing.assert_allclose(saturation_vapour_pressure_hpa(t) / 10.0, table_kpa, atol=6e-4)


def test_relative_humidity_from_vapour_pressure():
    t = np.array([5.0, 20.0, -10.0, 25.0, np.nan])
    es = saturation_vapour_pressure_hpa(t)
    vap = np.array([0.5, 0.25, 1.2, 0.0, 3.0]) * np.nan_to_num(es, nan=1.0)
    rh = relative_humidity_percent(vap, t)
    np.testing.assert_allclose(rh[:4], [50.0, 25.0, 100.0, 0.0])  # 120 % clipped to 100
    assert np.isnan(rh[4])
    # 20 °C and 11.69 hPa: e_s = 23.38 hPa -> 50 %
    assert abs(relative_humidity_percent(11.69, 20.0) - 50.0) < 0.05


def _decade_file(var: str, decade: tuple[int, int], *, seed: int) -> bytes:
    """One CRU-like decadal file, gzip-compressed: (time, lat, lon) float32 in CRU's units,
    missing value 9.96921e36 over 'ocean', a ``stn`` station-count companion, days since
    1900-1-1 at mid-month."""
    rng = np.random.default_rng(seed)
    months = pd.date_range(
        f"{decade[0]}-01-16", periods=12 * (decade[1] - decade[0] + 1), freq="MS"
    )
    months = months + pd.Timedelta(days=15)
    shape = (months.size, LAT.size, LON.size)
    base = {"tmp": 10.0 + 15.0 * rng.random(shape), "pre": 200.0 * rng.random(shape)}
    base["vap"] = 5.0 + 10.0 * rng.random(shape)
    data = base[var].astype(np.float32)
    data[:, 0, 0] = np.nan  # a sea cell
    ds = xr.Dataset(
        {
            var: (("time", "lat", "lon"), data, {"long_name": LONG[var], "units": UNITS[var]}),
            "stn": (("time", "lat", "lon"), np.full(shape, 3, dtype=np.int32)),
        },
        coords={
            "lon": ("lon", LON, {"long_name": "longitude", "units": "degrees_east"}),
            "lat": ("lat", LAT, {"long_name": "latitude", "units": "degrees_north"}),
            "time": ("time", months.values),
        },
        attrs={"Conventions": "CF-1.4", "title": "CRU TS4.07 Mean Temperature"},
    )
    enc = {
        var: {"_FillValue": np.float32(9.96921e36)},
        "time": {"units": "days since 1900-1-1", "calendar": "gregorian"},
    }
    raw = ds.to_netcdf(None, format="NETCDF3_CLASSIC", encoding=enc)
    return gzip.compress(bytes(raw))


@pytest.fixture
def cru_server(tmp_path):
    """A bounded HTTP server on 127.0.0.1 serving the release's layout for 1981-2000."""
    root = tmp_path / "served"
    for i, var in enumerate(("tmp", "pre", "vap")):
        (root / var).mkdir(parents=True)
        for j, decade in enumerate(RELEASE.decades):
            if decade[0] in (1981, 1991):
                path = root / var / RELEASE.filename(var, decade)
                path.write_bytes(_decade_file(var, decade, seed=10 * i + j))
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    server.timeout = 10
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_builds_drivers_srgpu_reads(cru_server, tmp_path):
    url, root, requests = cru_server
    cache = tmp_path / "cache"
    files = fetch_cru_files(years=(1989, 1992), cache_dir=cache, base_url=url, timeout=10)
    assert [p.name for p in files["vap"]] == [
        "cru_ts4.07.1981.1990.vap.dat.nc",
        "cru_ts4.07.1991.2000.vap.dat.nc",
    ]
    assert len(requests) == 6
    # trust on first use: the sha256 of every served file is recorded
    record = json.loads((cache / "cru_ts4.07" / "sha256.json").read_text())
    assert record == {
        p.name: _sha(p) for var in ("tmp", "pre", "vap") for p in sorted((root / var).iterdir())
    }
    out = build_cru_drivers(files, years=(1989, 1992), out=tmp_path / "drivers")
    assert sorted(p.name for p in out.values()) == ["cru_hurs.nc", "cru_pr.nc", "cru_tas.nc"]

    raw = {
        v: xr.concat([xr.open_dataset(p)[v] for p in files[v]], dim="time").sel(
            time=slice("1989", "1992")
        )
        for v in ("tmp", "pre", "vap")
    }
    sources = open_sources([tmp_path / "drivers"])
    for role, var in (("tas", "tmp"), ("pr", "pre"), ("hurs", "vap")):
        found = find_variable(sources, role)
        assert found is not None and found.name == role
        got = convert_units(found.da.load(), found=found, days=30.0).values
        assert got.shape == (48, LAT.size, LON.size)
        assert np.isnan(got[:, 0, 0]).all()
        if role == "hurs":
            want = relative_humidity_percent(raw["vap"].values, raw["tmp"].values)
        else:
            want = raw[var].values
        np.testing.assert_allclose(got, want, rtol=1e-6)

    # second call: everything from the cache, nothing requested
    again = fetch_cru_files(years=(1989, 1992), cache_dir=cache, base_url=url, timeout=10)
    assert again == files and len(requests) == 6


def test_changed_file_is_refused_after_first_use(cru_server, tmp_path):
    url, root, _ = cru_server
    cache = tmp_path / "cache"
    fetch_cru_files(years=(1985, 1986), variables=("tmp",), cache_dir=cache, base_url=url)
    cached = cache / "cru_ts4.07" / "cru_ts4.07.1981.1990.tmp.dat.nc.gz"
    # the cached copy altered: refused before use
    cached.write_bytes(cached.read_bytes() + b"x")
    with pytest.raises(DownloadError, match="differs from the one recorded on first use"):
        fetch_cru_files(years=(1985, 1986), variables=("tmp",), cache_dir=cache, base_url=url)
    # deleted, and the provider now serves other bytes: the recorded hash refuses the download
    cached.unlink()
    served = root / "tmp" / "cru_ts4.07.1981.1990.tmp.dat.nc.gz"
    served.write_bytes(_decade_file("tmp", (1981, 1990), seed=99))
    with pytest.raises(DownloadError, match="hash mismatch: the served file is not the pinned one"):
        fetch_cru_files(years=(1985, 1986), variables=("tmp",), cache_dir=cache, base_url=url)
    assert not cached.exists()


def test_fetch_cru_command(cru_server, tmp_path):
    url, _, _ = cru_server
    args = ["fetch", "cru", "--years", "1990-1991", "--base-url", url]
    args += ["--cache", str(tmp_path / "c"), "--out", str(tmp_path / "d")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "use: srgpu ensemble --drivers" in res.output
    ds = xr.open_dataset(tmp_path / "d" / "cru_hurs.nc")
    assert ds["hurs"].attrs["units"] == "%" and ds.sizes["time"] == 24


def test_fetch_cru_messages(tmp_path):
    # a port nothing listens on: one short line that says what to do
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["fetch", "cru", "--years", "1990-1990", "--base-url", f"http://127.0.0.1:{port}"]
    args += ["--cache", str(tmp_path / "c"), "--timeout", "5"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2
    line = res.output.strip().splitlines()[-1]
    assert line.startswith("srgpu: error: cannot download http://127.0.0.1")
    assert "connection refused" in line and "put the file in" in line
    assert len(line) < 250
    res = CliRunner().invoke(app, ["fetch", "cru", "--years", "1850-1900"])
    assert res.exit_code == 2 and "covers 1901-2022" in res.output
    res = CliRunner().invoke(app, ["fetch", "cru", "--years", "1990to2000"])
    assert res.exit_code == 2 and "--years 1982-2012" in res.output
