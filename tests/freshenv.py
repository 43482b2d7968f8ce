"""Fresh virtual environments for the install tests: a wheelhouse that makes ``pip install``
run offline.

The wheelhouse is ``$SRGPU_WHEELHOUSE`` (default ``~/.cache/srgpu/wheelhouse``). Installs run
with ``--no-index --find-links WHEELHOUSE`` (or the same through ``PIP_NO_INDEX`` and
``PIP_FIND_LINKS`` when a README command calls pip itself); when the wheelhouse lacks a package
it is filled once with ``pip download`` through pip's ordinary configuration, and the calling test
skips if no index is reachable then.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

BUILD_REQUIREMENTS = ("setuptools>=68", "wheel")


def wheelhouse() -> Path:
    """The wheelhouse folder (created if missing)."""
    env = os.environ.get("SRGPU_WHEELHOUSE")
    path = Path(env) if env else Path.home() / ".cache" / "srgpu" / "wheelhouse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline_pip_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment, less PYTHONPATH and VIRTUAL_ENV) with pip
    pointed at the wheelhouse only."""
    env = dict(os.environ if base is None else base)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PIP_NO_INDEX"] = "1"
    env["PIP_FIND_LINKS"] = str(wheelhouse())
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@contextmanager
def _filling_lock():
    """An exclusive lock on the wheelhouse while it is filled: the suite runs on two workers
    (.ci/run), and on a fresh machine the install tests of both may fill it at once (a reader
    that meets a half-written file fails, fills in turn, which waits here, and retries)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(wheelhouse() / ".filling.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def fill_wheelhouse(python: Path, project: Path, *extras: str) -> None:
    """Download ``project`` (with ``extras``) and its build requirements into the wheelhouse
    with ``python``'s pip; skip the calling test when that fails (no index reachable)."""
    target = f"{project}[{','.join(extras)}]" if extras else str(project)
    with _filling_lock():
        res = subprocess.run(
            [str(python), "-m", "pip", "download", "--dest", str(wheelhouse()), target]
            + list(BUILD_REQUIREMENTS),
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["pip download failed"])[-1]
        pytest.skip(f"the wheelhouse lacks packages and no index is reachable to fill it: {last}")


def install_offline(python: Path, *args: str, project: Path, cwd: Path | None = None) -> float:
    """``pip install ARGS`` with ``python`` from the wheelhouse (filled first if that fails once);
    returns the seconds taken by the successful install."""
    import time

    cmd = [str(python), "-m", "pip", "install", *args]
    for attempt in range(2):
        t0 = time.perf_counter()
        res = subprocess.run(
            cmd, capture_output=True, text=True, timeout=1200, cwd=cwd, env=offline_pip_env()
        )
        if res.returncode == 0:
            return time.perf_counter() - t0
        if attempt == 0:
            fill_wheelhouse(python, project)
    raise AssertionError(f"offline pip install failed:\n{res.stderr[-3000:]}")
