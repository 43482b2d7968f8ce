"""Every ```bash block of README.md runs as written from the root of a fresh copy of the
repository with ``../shared`` beside it (issue 18, deliver 2).

The copy holds the files git tracks plus the untracked ones it does not ignore (what a clone of
this working tree would hold), in a temporary folder next to a link ``shared`` to this checkout's
``../shared``. Blocks run in order with ``bash -euo pipefail`` in that copy, so the venv the first
block creates serves the later ones. Documented rewrites, and nothing else:

* ``srgpu ensemble``: any ``--replicates N`` / ``--trees N`` is replaced by
  ``--replicates $SRGPU_README_REPLICATES --trees $SRGPU_README_TREES`` (default 2 and 10), so
  that the 2000-replicate command takes seconds;
* pip runs offline from the wheelhouse of :mod:`tests.freshenv` (``PIP_NO_INDEX``,
  ``PIP_FIND_LINKS``), the README's own command unchanged;
* the line that installs the test extras and runs the whole suite is what CI runs: the test
  checks that it equals the command of ``.ci/run`` instead of running the suite inside itself;
* a block preceded by ``<!-- readme-test: skip (REASON) -->`` is skipped (a GPU, the whole suite).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.freshenv import fill_wheelhouse, offline_pip_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]*)\)\s*-->\s*$")


def bash_blocks(text: str) -> list[tuple[str, str | None]]:
    """``(code, skip_reason)`` of every ```bash block of a Markdown text, in order."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            j = i + 1
            while lines[j].strip() != "```":
                j += 1
            prev = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
            m = SKIP.search(prev.strip())
            blocks.append(("\n".join(lines[i + 1 : j]), m.group("reason") if m else None))
            i = j
        i += 1
    return blocks


def small_counts(code: str, *, replicates: int, trees: int) -> str:
    """The documented rewrite: every ``srgpu ensemble`` gets small replicate and tree counts."""
    code = re.sub(r"\s--(replicates|trees)\s+\d+", "", code)
    return re.sub(r"(srgpu ensemble)\b", rf"\1 --replicates {replicates} --trees {trees}", code)


def ci_command() -> str:
    return (REPO / ".ci" / "run").read_text().strip().splitlines()[-1].strip()


def test_bash_blocks_are_found_and_rewritten():
    blocks = bash_blocks((REPO / "README.md").read_text())
    runnable = [code for code, reason in blocks if reason is None]
    assert len(blocks) >= 4 and len(runnable) >= 2
    assert runnable[0].splitlines()[1].strip() == ci_command()
    out = small_counts(
        "a && srgpu ensemble --x 1 \\\n  --replicates 2000 --out o", replicates=3, trees=7
    )
    assert out == "a && srgpu ensemble --replicates 3 --trees 7 --x 1 \\\n  --out o"


def _copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = REPO / os.fsdecode(name)
        if src.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


@pytest.mark.skipif(not (SHARED / "data").is_dir(), reason="../shared/data is not beside the repo")
def test_readme_bash_blocks_run_as_written(tmp_path):
    replicates = int(os.environ.get("SRGPU_README_REPLICATES", "2"))
    trees = int(os.environ.get("SRGPU_README_TREES", "10"))
    clone = tmp_path / "srgpu"
    _copy_checkout(clone)
    (tmp_path / "shared").symlink_to(SHARED)
    env = offline_pip_env()
    env["MPLBACKEND"] = "Agg"
    # the first block installs from the wheelhouse: fill it first if it lacks something
    probe = tmp_path / "probe"
    subprocess.run(["python3", "-m", "venv", str(probe)], check=True, timeout=300)
    dry = subprocess.run(
        [str(probe / "bin" / "python"), "-m", "pip", "download", "--dest", str(tmp_path / "d")]
        + [str(REPO)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if dry.returncode != 0:
        fill_wheelhouse(probe / "bin" / "python", REPO)

    ran = 0
    for code, reason in bash_blocks((clone / "README.md").read_text()):
        if reason is not None:
            print(f"\nskipped README block ({reason}):\n{code}")
            continue
        lines = [ln for ln in code.splitlines() if ln.strip() != ci_command()]
        script = small_counts("\n".join(lines), replicates=replicates, trees=trees)
        t0 = time.perf_counter()
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=3000,
        )
        print(f"\nREADME block ({time.perf_counter() - t0:.0f} s):\n{script}")
        assert res.returncode == 0, f"{script}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
        assert "Traceback" not in res.stderr, res.stderr[-3000:]
        ran += 1
    assert ran >= 2
    assert (clone / "run-area" / "ensemble.zarr").is_dir()
