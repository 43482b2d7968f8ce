from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SRDB_V5 = SHARED_DATA / "srdb" / "srdb-data_v5.0_20200511.csv.gz"
SRDB_2022 = SHARED_DATA / "srdb" / "srdb-data_20221009.csv.gz"
GRIDS = SHARED_DATA / "grids"

FIRST = (
    "test_fresh_install.py",
    "test_readme.py",
    "test_compare_ilamb.py",
    "test_benchmarks.py",
)
"""Files collected first, longest first. They build fresh virtual environments (pip installs,
numba compiling every kernel again) or run the benchmark suite's child processes: 2-4.5 min each
of mostly one core (``--durations``, the suite on two workers). The suite runs on two xdist
workers, each test file on one (``-n 2 --dist loadfile``, .ci/run), and xdist hands out files in
collection order, two to each worker first: started first, these four overlap each other and the
rest of the suite instead of leaving one worker alone at the end. ``--no-loadscope-reorder``
keeps that order: by default xdist hands out the files with the most tests first, which put
these (two tests each) last (a run here: the two install tests one after the other on one
worker through the run's last 9 minutes)."""


@pytest.fixture(scope="session")
def srdb_v5_path() -> Path:
    if not SRDB_V5.exists():
        pytest.skip("../shared/data/srdb is absent")
    return SRDB_V5


@pytest.fixture(scope="session")
def grids_dir() -> Path:
    if not GRIDS.exists():
        pytest.skip("../shared/data/grids is absent")
    return GRIDS


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))  # stable: the rest as is

    from tests import has_gpu

    if has_gpu:
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
