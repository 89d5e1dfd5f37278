"""Shared fixtures: paths to the bundled example and a scratch directory per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.real_cluster import RealCluster
from tests.support.real_cluster import real_cluster as start_real_cluster

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SCENARIO = REPO_ROOT / "examples" / "dsx-2026.yaml"


@pytest.fixture
def example_scenario_path() -> Path:
    return EXAMPLE_SCENARIO


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    """One real API server for the whole session (tests/support/real_cluster.py), stopped at the
    end; under pytest-xdist one per worker process, on its own ports and directory."""
    with start_real_cluster() as cluster:
        yield cluster
