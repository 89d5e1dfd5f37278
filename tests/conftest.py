"""Shared fixtures: paths to the bundled example and a scratch directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SCENARIO = REPO_ROOT / "examples" / "dsx-2026.yaml"


@pytest.fixture
def example_scenario_path() -> Path:
    return EXAMPLE_SCENARIO
