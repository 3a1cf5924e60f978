"""Shared test fixtures: where the real data lives, and a skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMCL_SHARED", REPO_ROOT.parent / "shared"))
SHARED_DATA = SHARED / "data"
SHARED_REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def shared_reference() -> Path:
    if not SHARED_REFERENCE.is_dir():
        pytest.skip("../shared/reference is absent")
    return SHARED_REFERENCE


@pytest.fixture(scope="session")
def nwucla_dir() -> Path:
    path = SHARED_DATA / "nw-ucla" / "all_sqe"
    if not path.is_dir():
        pytest.skip("../shared/data/nw-ucla/all_sqe is absent")
    return path


@pytest.fixture(scope="session")
def ntu_sample_dir() -> Path:
    path = SHARED_DATA / "ntu-sample"
    if not (path / "S001C001P001R001A001.skeleton").is_file():
        pytest.skip("../shared/data/ntu-sample is absent")
    return path
