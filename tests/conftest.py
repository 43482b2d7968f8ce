from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
SRDB_V5 = SHARED_DATA / "srdb" / "srdb-data_v5.0_20200511.csv.gz"
SRDB_2022 = SHARED_DATA / "srdb" / "srdb-data_20221009.csv.gz"
GRIDS = SHARED_DATA / "grids"


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
    from tests import has_gpu

    if has_gpu:
        return
    skip = pytest.mark.skip(reason="no CUDA GPU visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
