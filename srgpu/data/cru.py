"""CRU TS 4.x monthly 0.5° climate as srgpu drivers (``srgpu fetch cru``).

CRU TS (Harris et al. 2020, *Sci. Data* 7 109, doi:10.1038/s41597-020-0453-3) is an openly
downloadable monthly 0.5° land grid from 1901. It gives the paper's temperature and
precipitation and, through vapour pressure, its relative humidity:

* ``tmp``: near-surface air temperature, ``degrees Celsius`` -> ``tas`` (degC);
* ``pre``: precipitation, ``mm/month`` -> ``pr`` (mm month-1);
* ``vap``: vapour pressure, ``hPa`` -> ``hurs`` (%) = 100 e / e_s(T), with the saturation
  vapour pressure of :func:`saturation_vapour_pressure_hpa` at the month's mean temperature.

The provider serves one gzip-compressed NetCDF file per variable and decade,
``<base>/<var>/cru_ts<version>.<first>.<last>.<var>.dat.nc.gz``, and publishes no checksums.
srgpu therefore pins the version and the file names, and trusts the bytes on first use: the
sha256 of every downloaded ``.gz`` is recorded in ``<cache>/cru_ts<version>/sha256.json`` and
every later use (and any re-download) is checked against it; a mismatch is a
:class:`~srgpu.errors.DownloadError`. Hashes pinned in :data:`CRU_RELEASES` (none published
yet) take precedence over the record.

:func:`build_cru_drivers` writes three CF files (``tas``, ``pr``, ``hurs``; one variable each,
the years asked for) into a folder that ``srgpu ensemble --drivers FOLDER`` reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import xarray as xr

from srgpu.errors import DownloadError, InputError

__all__ = [
    "CRU_RELEASES",
    "CruRelease",
    "build_cru_drivers",
    "fetch_cru_files",
    "relative_humidity_percent",
    "saturation_vapour_pressure_hpa",
]

CRU_VARIABLES = ("tmp", "pre", "vap")
"""The CRU variables srgpu uses."""


@dataclass(frozen=True)
class CruRelease:
    """One CRU TS release: where its decadal files are served and (if published) their sha256."""

    version: str
    base_url: str
    decades: tuple[tuple[int, int], ...]
    sha256: Mapping[str, str] = field(default_factory=dict)

    def filename(self, var: str, decade: tuple[int, int]) -> str:
        return f"cru_ts{self.version}.{decade[0]}.{decade[1]}.{var}.dat.nc.gz"

    def url(self, var: str, decade: tuple[int, int], *, base_url: str | None = None) -> str:
        return f"{(base_url or self.base_url).rstrip('/')}/{var}/{self.filename(var, decade)}"

    @property
    def years(self) -> tuple[int, int]:
        return self.decades[0][0], self.decades[-1][1]


CRU_RELEASES: Mapping[str, CruRelease] = MappingProxyType(
    {
        "4.07": CruRelease(
            version="4.07",
            base_url="https://crudata.uea.ac.uk/cru/data/hrg/cru_ts_4.07/cruts.2304141047.v4.07",
            decades=tuple((y, y + 9) for y in range(1901, 2021, 10)) + ((2021, 2022),),
        ),
    }
)
"""Pinned CRU TS releases (the provider publishes no checksums: trust on first use)."""

DEFAULT_CRU_VERSION = "4.07"


# ------------------------------------------------------------------------------ humidity
def saturation_vapour_pressure_hpa(t_degc: Any) -> Any:
    """Saturation vapour pressure over water, hPa, at air temperature ``t_degc`` (°C).

    Tetens' formula in the form of FAO Irrigation and Drainage Paper 56 (Allen et al. 1998,
    chapter 3, equation 11): e°(T) = 0.6108 exp(17.27 T / (T + 237.3)) kPa, here × 10 for hPa.
    FAO-56 Annex 2 Table 2.3 lists 0.611 kPa at 0 °C, 1.228 at 10 °C, 2.338 at 20 °C, 4.243 at
    30 °C (tested). The same formula is used below 0 °C (over water, as CRU's own derivations;
    over ice e_s is lower, so RH over frozen months comes out lower).
    """
    t = np.asarray(t_degc, dtype=np.float64)
    return 6.108 * np.exp(17.27 * t / (t + 237.3))


def relative_humidity_percent(vap_hpa: Any, t_degc: Any) -> np.ndarray:
    """Relative humidity, %, from vapour pressure ``vap_hpa`` (hPa) and temperature (°C):
    100 e / e_s(T) (:func:`saturation_vapour_pressure_hpa`), clipped to [0, 100].

    With monthly means, e_s of the mean temperature is below the mean of e_s, so the ratio can
    pass 100 % in cold, humid months; it is clipped there. NaN stays NaN.
    """
    e = np.asarray(vap_hpa, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rh = 100.0 * e / saturation_vapour_pressure_hpa(t_degc)
    return np.clip(rh, 0.0, 100.0)


# ------------------------------------------------------------------------------ download
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _record_path(cache: Path, release: CruRelease) -> Path:
    return cache / f"cru_ts{release.version}" / "sha256.json"


def _read_record(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable hash record: {exc}", file=path) from None
    return {str(k): str(v) for k, v in data.items()}


def _write_record(path: Path, record: Mapping[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sha256-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(dict(sorted(record.items())), fh, indent=1)
    os.replace(tmp, path)


def decades_for(release: CruRelease, years: tuple[int, int]) -> list[tuple[int, int]]:
    """The release's decadal files that hold ``years`` (inclusive); a year outside the release
    is a :class:`DownloadError`."""
    first, last = years
    lo, hi = release.years
    if first > last or first < lo or last > hi:
        raise DownloadError(
            f"CRU TS {release.version} covers {lo}-{hi}; asked for {first}-{last} "
            f"(expected --years FIRST-LAST within {lo}-{hi})"
        )
    return [d for d in release.decades if d[1] >= first and d[0] <= last]


def fetch_cru_files(
    *,
    years: tuple[int, int],
    version: str = DEFAULT_CRU_VERSION,
    variables: tuple[str, ...] = CRU_VARIABLES,
    cache_dir: str | Path | None = None,
    base_url: str | None = None,
    timeout: float = 60.0,
    downloader: Callable[..., Any] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, list[Path]]:
    """Download (or find in the cache) the decadal CRU files of ``variables`` covering
    ``years``; return ``{var: [decompressed .nc paths in time order]}``.

    Each ``.gz`` is checked against a pinned sha256 if the release has one, else against the
    one recorded when it was first downloaded (recorded now if this is the first time).
    ``base_url`` replaces the provider's address (a mirror; the tests' loopback server).
    """
    import pooch

    from srgpu.data.download import default_cache_dir, short_reason

    try:
        release = CRU_RELEASES[version]
    except KeyError:
        raise DownloadError(
            f"unknown CRU TS version {version!r}; pinned versions: {', '.join(CRU_RELEASES)}"
        ) from None
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache / f"cru_ts{release.version}"
    record_file = _record_path(cache, release)
    record = _read_record(record_file)
    if downloader is None:
        downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    out: dict[str, list[Path]] = {}
    for var in variables:
        if var not in CRU_VARIABLES:
            raise DownloadError(f"unknown CRU variable {var!r}; expected one of {CRU_VARIABLES}")
        out[var] = []
        for decade in decades_for(release, years):
            name = release.filename(var, decade)
            url = release.url(var, decade, base_url=base_url)
            expected = release.sha256.get(name) or record.get(name)
            gz = folder / name
            if gz.is_file() and expected is not None:
                got = _sha256(gz)
                if got != expected:
                    raise DownloadError(
                        f"{gz}: sha256 {got[:12]}... differs from the one recorded on first "
                        f"use ({expected[:12]}...); delete the file to download it again"
                    )
            elif not gz.is_file():
                if log is not None:
                    log(f"downloading {url}")
                try:
                    pooch.retrieve(
                        url,
                        known_hash=None if expected is None else f"sha256:{expected}",
                        fname=name,
                        path=folder,
                        downloader=downloader,
                        progressbar=False,
                    )
                except Exception as exc:  # requests/OS/hash errors
                    reason = short_reason(exc)
                    hint = (
                        ""
                        if reason.startswith("hash mismatch")
                        else f" (without network: put the file in {folder} and rerun)"
                    )
                    raise DownloadError(f"cannot download {url}: {reason}{hint}") from None
            if name not in record and name not in release.sha256:
                record[name] = _sha256(gz)
                _write_record(record_file, record)
            out[var].append(_decompressed(gz))
    return out


def _decompressed(gz: Path) -> Path:
    """``x.nc.gz`` -> ``x.nc`` beside it (written atomically once)."""
    import gzip
    import shutil

    target = gz.with_suffix("")
    if target.is_file() and target.stat().st_mtime >= gz.stat().st_mtime:
        return target
    fd, tmp = tempfile.mkstemp(dir=gz.parent, prefix=".gunzip-", suffix=".tmp")
    try:
        with gzip.open(gz, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
        os.replace(tmp, target)
    except (OSError, EOFError) as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"not a gzip file: {exc}", file=gz) from None
    return target


# ------------------------------------------------------------------------------ drivers
def _open_years(paths: list[Path], var: str, years: tuple[int, int]) -> xr.DataArray:
    parts = []
    for p in paths:
        try:
            ds = xr.open_dataset(p, decode_times=True)
        except Exception as exc:
            raise InputError(f"cannot open NetCDF: {type(exc).__name__}", file=p) from None
        if var not in ds:
            raise InputError("variable missing", file=p, field=var, expected=f"CRU TS '{var}'")
        da = ds[var]
        da = da.sel(time=(da["time"].dt.year >= years[0]) & (da["time"].dt.year <= years[1]))
        parts.append(da.load())
        ds.close()
    da = xr.concat(parts, dim="time")
    n = int(da.sizes["time"])
    want = 12 * (years[1] - years[0] + 1)
    if n != want:
        raise InputError(
            f"{n} months for {years[0]}-{years[1]}",
            file=paths[0],
            field=var,
            expected=f"{want} monthly steps",
        )
    return da


def build_cru_drivers(
    files: Mapping[str, list[Path]], *, years: tuple[int, int], out: str | Path
) -> dict[str, Path]:
    """Write CF driver files ``cru_tas.nc``, ``cru_pr.nc`` and ``cru_hurs.nc`` (one variable
    each, months of ``years``) from the CRU files of :func:`fetch_cru_files`; return their
    paths by role. RH comes from ``vap`` and ``tmp`` (:func:`relative_humidity_percent`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = _open_years(files["tmp"], "tmp", years)
    written: dict[str, Path] = {}
    specs: list[tuple[str, xr.DataArray, str, str, str]] = [
        ("tas", tmp, "degC", "air_temperature", "CRU TS tmp"),
    ]
    if "pre" in files:
        specs.append(
            (
                "pr",
                _open_years(files["pre"], "pre", years),
                "mm month-1",
                "precipitation_amount",
                "CRU TS pre",
            )
        )
    if "vap" in files:
        vap = _open_years(files["vap"], "vap", years)
        rh = xr.DataArray(
            relative_humidity_percent(vap.values, tmp.values).astype(np.float32),
            dims=tmp.dims,
            coords=tmp.coords,
        )
        specs.append(
            (
                "hurs",
                rh,
                "%",
                "relative_humidity",
                "100 * vap / e_s(tmp), e_s = 6.108 exp(17.27 T / (T + 237.3)) hPa (FAO-56 eq. 11)"
                ", clipped to [0, 100]",
            )
        )
    for role, da, units, std, source in specs:
        arr = xr.DataArray(
            np.asarray(da.values, dtype=np.float32), dims=da.dims, coords=da.coords, name=role
        )
        arr.attrs = {"units": units, "standard_name": std, "source": source}
        ds = arr.to_dataset()
        ds.attrs = {
            "Conventions": "CF-1.8",
            "source": "CRU TS (Harris et al. 2020, doi:10.1038/s41597-020-0453-3), via srgpu",
            "years": f"{years[0]}-{years[1]}",
        }
        path = out / f"cru_{role}.nc"
        tmp_path = path.with_suffix(".nc.tmp")
        ds.to_netcdf(
            tmp_path,
            encoding={
                role: {
                    "zlib": True,
                    "complevel": 1,
                    "_FillValue": np.nan,
                    # one year a chunk: how srgpu's driver reader reads it
                    "chunksizes": (min(12, arr.shape[0]), *arr.shape[1:]),
                }
            },
        )
        os.replace(tmp_path, path)
        written[role] = path
    return written
