"""A separate virtual environment holding the pinned ilamb3, for ``tests/test_compare_ilamb.py``.

ilamb3 pins an older xarray than srgpu needs, so it cannot be installed beside srgpu. The test
creates, once, a virtual environment of its own (``python -m venv``) and pip-installs there the
requirement of pyproject.toml's ``ilamb`` extra (ilamb3 and its dependencies; not srgpu). ilamb3
then runs in a subprocess of that environment (``tests/ilamb3_child.py``) on files that srgpu
writes in the test's own environment.

Where: ``$SRGPU_ILAMB3_VENV`` if set, else ``ilamb3-venv`` in pytest's cache folder
(``.pytest_cache/d/ilamb3-venv``, git-ignored; ``pytest --cache-clear`` removes it). A file in
the environment records the requirement it was built for; an environment built for another pin
is rebuilt. When pip fails because no package index can be reached, the test skips and says so;
any other failure of pip fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAMP = "srgpu-ilamb3-requirement.txt"

# what pip (through urllib3 / requests) prints when it cannot reach an index at all
NETWORK_ERRORS = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|Network is unreachable|No route to host|Connection "
    r"refused|ConnectTimeoutError|ProxyError|connection broken by|Max retries exceeded"
)


def ilamb3_requirements() -> list[str]:
    """The requirements of pyproject.toml's ``ilamb`` extra (the pinned ilamb3)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return list(project["optional-dependencies"]["ilamb"])


def is_network_failure(pip_output: str) -> bool:
    """Whether pip's output says that it could not reach a package index."""
    return NETWORK_ERRORS.search(pip_output) is not None


def clean_env() -> dict[str, str]:
    """This process's environment without PYTHONPATH and VIRTUAL_ENV, so that the ilamb3
    environment sees neither srgpu's checkout nor its virtual environment."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return env


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ilamb3_python(venv: Path) -> Path:
    """The python of a virtual environment at ``venv`` holding the pinned ilamb3, created (or
    rebuilt for another pin) on the first call; skips the calling test when pip cannot reach a
    package index, fails it on any other error."""
    requirements = ilamb3_requirements()
    stamp = venv / STAMP
    python = venv_python(venv)
    wanted = "\n".join(requirements) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=clean_env())
    # --retries >= 1 (5: pip's default, whatever the configuration says): pip names a refused
    # or unresolvable connection only in its "Retrying ... after connection broken by" warnings
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--retries", "5"]
    pip += requirements
    res = subprocess.run(pip, capture_output=True, text=True, env=clean_env(), timeout=1800)
    if res.returncode != 0:
        output = res.stdout + res.stderr
        if is_network_failure(output):
            last = (res.stderr.strip().splitlines() or ["pip install failed"])[-1]
            pytest.skip(f"pip cannot reach a package index to install {requirements}: {last}")
        raise AssertionError(f"pip install {requirements} failed:\n{output[-4000:]}")
    stamp.write_text(wanted)  # only after a complete install
    return python
