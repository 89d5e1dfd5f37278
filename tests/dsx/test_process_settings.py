"""The command line (and the benchmark, which measures it) run numpy on ordinary pages unless the
environment says otherwise (dsx/__init__.py says why)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _numpy_uses_huge_pages(module: str, setting: str | None) -> bool:
    """Whether numpy, imported after `module` in a fresh process, marks large arrays for huge
    pages (numpy's own switch, which `_set_madvise_hugepage` returns as it sets it)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if setting is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = setting
    code = f"import {module}, numpy; print(numpy._core.multiarray._set_madvise_hugepage(False))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, check=True
    )
    return {"True": True, "False": False}[out.stdout.strip()]


@pytest.mark.parametrize("module", ["dsx.cli", "bench.phases"])
def test_numpy_runs_on_ordinary_pages_unless_the_environment_says_otherwise(module: str) -> None:
    assert not _numpy_uses_huge_pages(module, None)
    assert _numpy_uses_huge_pages(module, "1")
    assert not _numpy_uses_huge_pages(module, "0")
