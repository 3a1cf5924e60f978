"""Shared test fixtures: where the real data lives, and a skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


def _threads_per_worker() -> int:
    """The suite runs in pytest-xdist workers (addopts "-n auto"): each gets its share of the CPUs as
    torch threads, and so do the trainings it starts (OMP_NUM_THREADS is inherited). Two workers at
    torch's default thread count each would oversubscribe the cores; measured on a 2-core CI-like host,
    a tiny training beside a busy process ran several times slower at 2 threads than at 1."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // workers)


if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(_threads_per_worker())
    torch.set_num_threads(_threads_per_worker())
_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _same_thread_count_for_every_test():
    """A test (or an in-process training with trainer.num_threads) that changes torch's thread count
    does not change it for the tests after it."""
    yield
    if torch.get_num_threads() != _THREADS:
        torch.set_num_threads(_THREADS)


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
