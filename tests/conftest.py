"""Shared fixtures: paths to the bundled example and a scratch directory per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.real_cluster import RealCluster
from tests.support.real_cluster import real_cluster as start_real_cluster

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SCENARIO = REPO_ROOT / "examples" / "dsx-2026.yaml"


def pytest_configure(config: pytest.Config) -> None:
    """DSX_TEST_KUBECONFIG names one shared cluster: two workers would each install into it and
    run operators under one ServiceAccount that contend for one lease."""
    workers = getattr(config.option, "numprocesses", None)
    if os.environ.get("DSX_TEST_KUBECONFIG") and workers not in (None, 0, 1):
        raise pytest.UsageError(
            "DSX_TEST_KUBECONFIG names one cluster, which two test workers cannot share; "
            "run in one process: make test TEST_WORKERS=0 (or pytest without -n)"
        )


@pytest.fixture
def example_scenario_path() -> Path:
    return EXAMPLE_SCENARIO


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """One real API server for the whole session (tests/support/real_cluster.py), stopped at the
    end; under pytest-xdist one per worker process, on its own ports and directory."""
    with start_real_cluster() as cluster:
        yield cluster
