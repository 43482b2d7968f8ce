"""Guards around a run's output directory: where it may be, who holds it, what it was made from.

* :func:`check_out_dir`: ``--out`` must not be ``/`` or resolve into a system folder.
* :class:`OutLock`: an exclusive ``fcntl.flock`` on ``OUT/.srgpu.lock`` held for the whole run
  (and for ``--overwrite``); a second run on the same ``--out`` gets one line naming the PID of
  the holder. The lock is released by the kernel when the holder dies, so a killed run never
  leaves a stale lock.
* :func:`input_fingerprints`: the sha256 of every input file (SRDB table, each driver file or
  every file of a driver Zarr store, the vegetation map), recorded in ``progress.json``; a run
  resumed on inputs whose *content* changed is refused, naming the file.
* :func:`written_by_srgpu`: whether a file or directory in one of the four places srgpu writes
  (``ensemble.zarr``, ``work.zarr``, ``progress.json``, ``summary.json``) carries srgpu's marks;
  srgpu never deletes or overwrites one that does not.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srgpu.config import EnsembleConfig
from srgpu.errors import InputError, StoreError

LOCK_NAME = ".srgpu.lock"
WORK_MARK = "srgpu_work"
"""Root attribute of ``work.zarr`` that marks it as srgpu's."""

SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
)
"""Folders (and everything below them) that ``--out`` may not resolve into."""

SYSTEM_FOLDERS = ("/", "/home", "/root", "/var", "/opt", "/srv", "/mnt", "/media", "/tmp")
"""Folders that ``--out`` may not *be* (their subfolders are fine)."""


def check_out_dir(out: Path) -> Path:
    """Refuse an output directory that is ``/``, a top-level system folder or inside one.

    Returns the resolved path. Symbolic links are resolved first, so a link to ``/etc`` is
    refused like ``/etc`` itself.
    """
    resolved = Path(os.path.realpath(out))
    text = str(resolved)
    if text in SYSTEM_FOLDERS or any(
        text == tree or text.startswith(tree + "/") for tree in SYSTEM_TREES
    ):
        raise StoreError(
            f"--out {out}: resolves to the system folder {text}; give a directory of your own "
            "(e.g. --out ./srgpu-out)"
        )
    return resolved


class OutLock:
    """Exclusive lock on an output directory (``OUT/.srgpu.lock``, ``fcntl.flock``).

    ``acquire`` fails at once (never waits) with a :class:`StoreError` naming the holder's PID.
    The lock file is opened without following a symbolic link and holds the PID of the holder.
    """

    def __init__(self, out: Path):
        self.path = Path(out) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> OutLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(
                    f"{self.path}: is a symbolic link; srgpu will not follow it: remove it"
                ) from None
            raise StoreError(
                f"{self.path}: cannot create the lock file: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f"pid {holder}" if holder else "another process"
                raise StoreError(
                    f"{self.path.parent}: in use by another srgpu run ({who}); wait for it to "
                    "finish or stop it, or use another --out"
                ) from None
            raise StoreError(f"{self.path}: cannot lock: {exc.strerror or exc}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the lock holds without the PID (e.g. disk full); only the message loses it
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> OutLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


# --------------------------------------------------------------------------- input identity
def _hash_file(path: Path, h: Any) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)


def fingerprint(path: str | Path) -> str:
    """sha256 of a file, or of a directory (a Zarr store): every regular file below it, in
    sorted order, each as its relative path, its size and its bytes. Hidden files are included
    (a Zarr store's data can live in any key)."""
    path = Path(path)
    h = hashlib.sha256()
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            for p in files:
                rel = p.relative_to(path).as_posix()
                h.update(f"{rel}\0{p.stat().st_size}\0".encode())
                _hash_file(p, h)
        else:
            _hash_file(path, h)
    except OSError as exc:
        raise InputError(f"cannot read to fingerprint: {exc.strerror or exc}", file=path) from None
    return h.hexdigest()


def input_paths(config: EnsembleConfig) -> list[str]:
    """Every input file of ``config`` (directories and globs of drivers expanded), as strings;
    empty for the embedded demo world."""
    if config.is_demo:
        return []
    from srgpu.data.drivers import expand_sources

    paths: list[str] = []
    if config.srdb is not None:
        paths.append(str(config.srdb))
    paths.extend(str(p) for p in expand_sources(list(config.drivers)))
    if config.vegetation is not None:
        paths.append(str(config.vegetation))
    return paths


def input_fingerprints(config: EnsembleConfig) -> dict[str, str]:
    """``{input path: sha256}`` of every input of ``config`` (see :func:`fingerprint`)."""
    return {p: fingerprint(p) for p in input_paths(config)}


def check_fingerprints(
    recorded: Any, current: dict[str, str], *, out: Path, fix: str | None = None
) -> None:
    """Refuse a resume whose inputs differ from those the run started with. ``fix``: what
    the message suggests (default: ``--overwrite`` of ``srgpu ensemble``, or another
    ``--out``)."""
    again = fix or "use --overwrite to start again with these inputs, or another --out"
    if not isinstance(recorded, dict):
        raise StoreError(
            f"{out / 'progress.json'}: the record of the input files is missing or damaged; "
            + (fix or "use --overwrite to start the run again")
        )
    for path, sha in current.items():
        old = recorded.get(path)
        if old is None:
            raise StoreError(
                f"{path}: was not an input of the run in {out} (its inputs: "
                f"{', '.join(sorted(recorded)) or 'the demo world'}); {again}"
            )
        if old != sha:
            raise StoreError(
                f"{path}: content changed since the run in {out} started (sha256 {sha[:12]} != "
                f"{str(old)[:12]} recorded); restore the file, or "
                + (fix or "use --overwrite to start again with the new content, or another --out")
            )
    gone = sorted(set(recorded) - set(current))
    if gone:
        raise StoreError(f"{gone[0]}: was an input of the run in {out} but is not one now; {again}")


# --------------------------------------------------------------------------- ownership
def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _zarr_root_attrs(path: Path) -> dict | None:
    meta = _json_object(path / "zarr.json")
    if meta is None:
        return None
    attrs = meta.get("attributes")
    return attrs if isinstance(attrs, dict) else None


def written_by_srgpu(path: Path) -> bool:
    """Whether ``path`` (one of srgpu's four output names) carries srgpu's marks."""
    name = path.name
    if name == "ensemble.zarr":
        attrs = _zarr_root_attrs(path)
        return attrs is not None and "srgpu_version" in attrs and "config_hash" in attrs
    if name == "work.zarr":
        attrs = _zarr_root_attrs(path)
        return attrs is not None and attrs.get(WORK_MARK) == 1
    if name in ("progress.json", "summary.json"):
        data = _json_object(path)
        return data is not None and "config_hash" in data
    return False
