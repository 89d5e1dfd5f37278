"""The planner's everyday questions in one command each: solve with overrides, show a plan again,
read a sweep at a chosen quarter, and see which start each sweep point used."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from planner.files import read_plan
from planner.insight import sweep
from tests.conftest import EXAMPLE_SCENARIO
from tests.dsx.harness import assert_one_clear_error, dsx, tree
from tests.planner.insight.helpers import stylised_data, three_quarters


@pytest.fixture
def stylised(tmp_path):
    """Boom or bust; the cloud builds its one rack exactly when the buyback covers over 74%."""
    path = tmp_path / "stylised.yaml"
    path.write_text(yaml.safe_dump(stylised_data()))
    return path


def racks_built(plan_path) -> int:
    return sum(r.racks_built for r in read_plan(plan_path).racks)


def test_solve_with_set_solves_the_changed_scenario(tmp_path, stylised):
    assert dsx("plan", "solve", stylised, "-o", tmp_path / "full.json", "--no-value-of-information").code == 0
    outcome = dsx(
        "plan", "solve", stylised, "-o", tmp_path / "half.json", "--set", "terms.buyback_share=0.5",
        "--no-value-of-information",
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    assert (racks_built(tmp_path / "full.json"), racks_built(tmp_path / "half.json")) == (1, 0)


def test_solve_with_a_named_case_applies_it_then_set(tmp_path, stylised):
    cases = tmp_path / "cases.yaml"
    cases.write_text(yaml.safe_dump({"no-cover": {"terms.buyback_share": 0.0}}))
    args = [
        "plan",
        "solve",
        stylised,
        "--overrides",
        cases,
        "--case",
        "no-cover",
        "--no-value-of-information",
    ]
    assert dsx(*args, "-o", tmp_path / "case.json").code == 0
    assert racks_built(tmp_path / "case.json") == 0
    assert dsx(*args, "-o", tmp_path / "both.json", "--set", "terms.buyback_share=1.0").code == 0
    assert racks_built(tmp_path / "both.json") == 1  # --set comes after the case


def test_solve_set_with_several_values_points_to_sweep(tmp_path, stylised):
    outcome = dsx(
        "plan", "solve", stylised, "-o", tmp_path / "p.json", "--set", "terms.buyback_share=0.5,0.6"
    )
    assert_one_clear_error(outcome, names=("terms.buyback_share", "dsx plan sweep"))


def test_solve_case_without_overrides_says_they_go_together(tmp_path, stylised):
    outcome = dsx("plan", "solve", stylised, "-o", tmp_path / "p.json", "--case", "x")
    assert_one_clear_error(outcome, names=("--overrides and --case go together",))


def test_solve_set_of_an_unknown_field_names_the_path_and_the_fix(tmp_path, stylised):
    before = tree(tmp_path)
    outcome = dsx("plan", "solve", stylised, "-o", tmp_path / "p.json", "--set", "terms.buyback_shar=0.5")
    assert_one_clear_error(
        outcome, names=(str(stylised), "terms.buyback_shar", "did you mean 'buyback_share'?")
    )
    assert tree(tmp_path) == before


@pytest.fixture(scope="module")
def three_quarter_plan(tmp_path_factory):
    root = tmp_path_factory.mktemp("show")
    source = root / "three.yaml"
    source.write_text(yaml.safe_dump(three_quarters().model_dump(mode="json")))
    plan = root / "plan.json"
    assert dsx("plan", "solve", source, "-o", plan, "--no-value-of-information").code == 0
    return source, plan


def test_show_prints_the_tables_solve_printed(three_quarter_plan):
    _, plan = three_quarter_plan
    outcome = dsx("plan", "show", plan)
    assert outcome.code == 0, outcome.text
    for table in ("Per site and quarter", "Per scenario", "Risk and solver"):
        assert table in outcome.stdout
    assert all(q in outcome.stdout for q in ("2026Q1", "2026Q2", "2026Q3"))


def test_show_for_one_quarter_prints_only_its_rows(three_quarter_plan):
    _, plan = three_quarter_plan
    outcome = dsx("plan", "show", plan, "--site", "alpha", "--period", "2026Q2")
    assert outcome.code == 0, outcome.text
    assert "2026Q2" in outcome.stdout and "2026Q1" not in outcome.stdout and "2026Q3" not in outcome.stdout
    summary = json.loads(dsx("plan", "show", plan, "--period", "2026Q2", "--json").stdout)
    assert [(r["site"], r["period"]) for r in summary["site_periods"]] == [("alpha", "2026Q2")]


def test_show_for_a_quarter_outside_the_plan_names_the_horizon(three_quarter_plan):
    _, plan = three_quarter_plan
    assert_one_clear_error(dsx("plan", "show", plan, "--period", "2030Q1"), names=("2026Q1..2026Q3",))
    assert_one_clear_error(dsx("plan", "show", plan, "--site", "omega"), names=("use one of alpha",))


def test_sweep_at_a_quarter_reports_racks_at_that_quarter(tmp_path, three_quarter_plan):
    source, _ = three_quarter_plan
    out = tmp_path / "sweep"
    outcome = dsx(
        "plan", "sweep", source, "--set", "terms.revenue_share=0,0.1", "-o", out, "--at", "2026Q1",
        "--no-value-of-information",
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    assert "racks at 2026Q1" in outcome.stdout
    rows = list(csv.DictReader(io.StringIO((out / "sweep.csv").read_text())))
    for row in rows:
        point = read_plan(out / f"{row['point']}.json")
        assert row["at"] == "2026Q1"
        assert int(row["alpha_racks"]) == sum(point.racks_at("alpha", "2026Q1").values())


def test_sweep_at_a_quarter_outside_the_horizon_stops_before_solving(tmp_path, three_quarter_plan):
    source, _ = three_quarter_plan
    outcome = dsx(
        "plan", "sweep", source, "--set", "terms.revenue_share=0,0.1", "-o", tmp_path / "s", "--at", "2031Q1"
    )
    assert_one_clear_error(outcome, names=("--at '2031Q1'", "2026Q1..2026Q3"))
    assert not (tmp_path / "s").exists()


def test_each_sweep_point_says_the_start_its_plan_records(three_quarter_plan):
    _, plan_path = three_quarter_plan
    plan = read_plan(plan_path)

    def with_start(start):
        solver = plan.solver.model_copy(update={"start": start})
        return sweep.PointResult(
            values={}, label="p", plan=plan.model_copy(update={"solver": solver}), start_from="q"
        )

    assert sweep.start_used(with_start("given")) == "started from q's plan"
    # offered q's plan, but the rounding's own start was better: say so, not "from q"
    assert sweep.start_used(with_start("rounded")) == "started from its rounded LP relaxation"
    assert sweep.start_used(with_start(None)) == "solved cold"
    assert sweep.start_used(sweep.PointResult(values={}, label="p")) == "no plan"


def test_the_batam_question_is_one_command(tmp_path):
    """How many racks should Batam build by 2027Q4 if the buyback covers 60% instead of 80%?"""
    outcome = dsx(
        "plan", "solve", EXAMPLE_SCENARIO, "--set", "terms.buyback_share=0.6", "--site", "batam",
        "--period", "2027Q4", "-o", tmp_path / "batam-60.json", "--no-value-of-information", "--json",
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    (row,) = json.loads(outcome.stdout)["site_periods"]
    assert (row["site"], row["period"]) == ("batam", "2027Q4")
    plan = read_plan(tmp_path / "batam-60.json")
    assert row["racks_by_type"] == plan.racks_at("batam", "2027Q4")


def test_plot_draws_capex_only_from_the_scenario_the_plan_was_solved_from(tmp_path, three_quarter_plan):
    source, plan = three_quarter_plan
    outcome = dsx("plan", "plot", plan, "-o", tmp_path / "plain")
    assert outcome.code == 0 and "add --scenario" in outcome.stderr
    assert dsx("plan", "plot", plan, "--scenario", source, "-o", tmp_path / "priced").code == 0
    other = tmp_path / "other.yaml"
    other.write_text(source.read_text().replace("capex_usd: 150000.0", "capex_usd: 160000.0"))
    assert other.read_text() != source.read_text()
    outcome = dsx("plan", "plot", plan, "--scenario", other, "-o", tmp_path / "wrong")
    assert_one_clear_error(outcome, names=(str(other), "not the scenario", "content hash"))
    assert not (tmp_path / "wrong").exists()
