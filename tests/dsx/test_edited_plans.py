"""Edited plans whose records do not hold together are refused by every reader with one clear
error, and `plot` writes its figures all or none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from planner.files import write_plan
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.infra.plan_factory import make_plan


@pytest.fixture
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plans" / "plan.json"
    write_plan(make_plan(), path)
    return path


@pytest.fixture
def without_sydney_rows(tmp_path: Path, plan_file: Path) -> Path:
    data = json.loads(plan_file.read_text())
    data["site_periods"] = [row for row in data["site_periods"] if row["site"] != "sydney"]
    edited = tmp_path / "plans" / "edited.json"
    edited.write_text(json.dumps(data))
    return edited


@pytest.mark.parametrize(
    "command",
    [
        # A traceback from the build-out figure (x and y of different lengths), exit 1.
        ("plan", "plot", "{plan}", "-o", "{tmp}/plots"),
        # An empty table, exit 0.
        ("plan", "show", "{plan}", "--site", "sydney"),
        # "3 fewer racks" at sydney, though no racks record had changed.
        ("plan", "compare", "{original}", "{plan}"),
    ],
    ids=["plot", "show", "compare"],
)
def test_a_plan_missing_a_site_s_summary_rows_is_refused_by_every_reader(
    tmp_path, plan_file, without_sydney_rows, command
):
    before = tree(tmp_path)
    args = [a.format(plan=without_sydney_rows, original=plan_file, tmp=tmp_path) for a in command]
    outcome = dsx(*args)
    assert_one_clear_error(
        outcome,
        names=(
            str(without_sydney_rows),
            "site_periods: no row for sydney in 2026Q3",
            "re-solve the scenario",
        ),
    )
    assert tree(tmp_path) == before


def test_plot_writes_nothing_when_one_figure_cannot_be_written(tmp_path, plan_file):
    # buildout.png and demand.png were written before value.png (a directory) stopped the run.
    (tmp_path / "plots" / "value.png").mkdir(parents=True)
    before = tree(tmp_path)
    outcome = dsx("plan", "plot", plan_file, "-o", tmp_path / "plots")
    assert_one_clear_error(outcome, names=(f"{tmp_path / 'plots' / 'value.png'}: is a directory",))
    assert tree(tmp_path) == before
