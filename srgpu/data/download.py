"""Download and cache the SRDB data table (``srgpu fetch srdb``).

The SRDB data CSV comes from the public GitHub repository ``bpbond/srdb`` at a pinned commit, so
that the bytes the URL serves never change and their sha256 can be pinned. Files are cached with
pooch in ``$SRGPU_CACHE`` or, when unset, ``pooch.os_cache("srgpu")``, under the name
``srdb-data_<version>.csv``.

Hashes are of the *uncompressed* CSV: exactly what the raw URL serves, and what a gzip copy
decompresses to. They were computed from the repository's git objects at the pinned commits and
match the decompressed copies of SRDB v5.0 (2020-05-11) and of the 2022-10-09 release.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from srgpu.errors import DownloadError, InputError

CACHE_ENV = "SRGPU_CACHE"
"""Environment variable naming the cache directory."""

_RAW = "https://raw.githubusercontent.com/bpbond/srdb/{commit}/srdb-data.csv"


@dataclass(frozen=True)
class SrdbRelease:
    """One pinned SRDB data release: where it is served and the sha256 of its CSV bytes."""

    version: str
    date: str
    commit: str
    sha256: str
    tag: str | None = None

    @property
    def url(self) -> str:
        return _RAW.format(commit=self.commit)

    @property
    def filename(self) -> str:
        return f"srdb-data_{self.version}.csv"


SRDB_RELEASES: Mapping[str, SrdbRelease] = MappingProxyType(
    {
        "v5.0": SrdbRelease(
            version="v5.0",
            date="2020-05-11",
            commit="c61d88ae32b78d56f78083b71b2cc1d016716bba",
            tag="v20200511a",
            sha256="3695124acf2744cff2720eb923ec12da3e436aba67e2ab58b48fca754a54b361",
        ),
        "20221009": SrdbRelease(
            version="20221009",
            date="2022-10-09",
            commit="ddeee8460c0c1529ff340264e4f44ca80b6e9a4a",
            sha256="23504c761e0a35a349fd100b7a6da6bdda73d0e8fcb361740cfc492751296c34",
        ),
    }
)
"""Pinned releases. ``v5.0`` is the release Lu et al. 2021 used (tags ``v20200511`` and
``v20200511a`` of ``bpbond/srdb`` point at the same commit)."""

DEFAULT_VERSION = "v5.0"


@dataclass(frozen=True)
class FetchedSrdb:
    """A SRDB data CSV in the cache: its path, version, sha256 and whether it is a pinned one."""

    path: Path
    version: str
    sha256: str
    pinned: bool


def default_cache_dir() -> Path:
    """``$SRGPU_CACHE`` if set, else pooch's per-user cache for ``srgpu``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("srgpu"))


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's content, decompressed first if it is gzip."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read file: {exc}", file=path) from None
    return digest.hexdigest()


def short_reason(exc: BaseException) -> str:
    """The gist of a download error in a few words (requests' own messages run to 400
    characters of connection-pool detail)."""
    text = str(exc)
    for key, gist in (
        ("Name or service not known", "host not found (no network?)"),
        ("Failed to resolve", "host not found (no network?)"),
        ("Temporary failure in name resolution", "host not found (no network?)"),
        ("No address associated", "host not found (no network?)"),
        ("Connection refused", "connection refused"),
        ("Network is unreachable", "network unreachable"),
        ("timed out", "timed out"),
        ("SHA256 hash", "hash mismatch: the served file is not the pinned one (not cached)"),
    ):
        if key in text:
            return gist
    m = re.search(r"\b([45]\d\d) (?:Client|Server) Error", text)
    if m:
        return f"HTTP {m.group(1)}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 120 else first[:117] + "..."


def _release(version: str) -> SrdbRelease:
    try:
        return SRDB_RELEASES[version]
    except KeyError:
        raise DownloadError(
            f"unknown SRDB version {version!r}; pinned versions: {', '.join(SRDB_RELEASES)} "
            "(use --from PATH to register another release)"
        ) from None


def fetch_srdb(
    *,
    version: str = DEFAULT_VERSION,
    cache_dir: str | Path | None = None,
    timeout: float = 30.0,
    downloader: Callable[..., Any] | None = None,
) -> FetchedSrdb:
    """Download (or find in the cache) a pinned SRDB data CSV and check its sha256.

    ``downloader`` is passed to :func:`pooch.retrieve` (default: an HTTP downloader with
    ``timeout`` seconds). Any failure (no network, HTTP error, hash mismatch) is a
    :class:`DownloadError` naming the URL.
    """
    import pooch

    release = _release(version)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if downloader is None:
        downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=False)
    try:
        path = pooch.retrieve(
            release.url,
            known_hash=f"sha256:{release.sha256}",
            fname=release.filename,
            path=cache,
            downloader=downloader,
            progressbar=False,
        )
    except Exception as exc:  # requests/OS/hash errors all end up here
        reason = short_reason(exc)
        hint = (
            ""
            if reason.startswith("hash mismatch")
            else f"; without network: srgpu fetch srdb --from PATH (a copy of "
            f"{release.filename}, plain or gzip)"
        )
        raise DownloadError(f"cannot download SRDB {version}: {reason}{hint}") from None
    return FetchedSrdb(path=Path(path), version=version, sha256=release.sha256, pinned=True)


def register_srdb(
    source: str | Path,
    *,
    version: str | None = None,
    cache_dir: str | Path | None = None,
) -> FetchedSrdb:
    """Validate a local SRDB data CSV (plain or gzip) and copy it, uncompressed, into the cache.

    A file whose content hash is that of a pinned release is registered under that release (a
    ``version`` that names a different pinned release is a :class:`DownloadError`). Any other
    file must name no pinned ``version``; its columns, values and selection are checked with
    :func:`srgpu.data.observations.load_observations` (an :class:`InputError` if bad, and nothing is
    written to the cache) and it is registered
    as ``version`` or ``local-<first 12 hex of sha256>``, with a :class:`UserWarning`.
    """
    from srgpu.config import check_param
    from srgpu.data.observations import load_observations

    if version is not None:  # it becomes part of a file name in the cache: no path in it
        check_param("fetch.version", version, source="--version")
    src = Path(source)
    if not src.is_file():
        raise InputError("no such file", file=src, expected="an SRDB data CSV (plain or gzip)")
    sha = content_sha256(src)
    known = {r.sha256: r for r in SRDB_RELEASES.values()}
    release = known.get(sha)
    if release is not None:
        if version is not None and version != release.version:
            raise DownloadError(
                f"{src}: content is SRDB {release.version} (sha256 {sha[:12]}...), not {version}"
            )
        name, pinned = release.version, True
    elif version in SRDB_RELEASES:
        raise DownloadError(
            f"{src}: sha256 {sha} does not match the pinned SRDB {version} "
            f"({SRDB_RELEASES[version].sha256})"
        )
    else:
        # raises InputError naming the file and the field: a file the ensemble could not use
        # (bad columns or values, no record selected) is never put into the cache
        load_observations(src)
        name, pinned = version or f"local-{sha[:12]}", False
        warnings.warn(
            f"{src} is not a pinned SRDB release (sha256 {sha}); registered as {name!r} "
            "after checking its columns",
            UserWarning,
            stacklevel=2,
        )
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"srdb-data_{name}.csv"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _copy_uncompressed(src, target)
    except OSError as exc:
        raise DownloadError(f"cannot write to cache {cache}: {exc.strerror or exc}") from None
    return FetchedSrdb(path=target, version=name, sha256=sha, pinned=pinned)


def _copy_uncompressed(src: Path, target: Path) -> None:
    """Copy ``src`` to ``target`` (gunzipped if gzip), atomically."""
    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".srdb-", suffix=".tmp")
    try:
        with opener(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
