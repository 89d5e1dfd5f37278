"""An infeasible scenario is diagnosed to the right site, quarter and limit, or participation
requirement; a scenario with a plan is confirmed as `dsx plan solve` would find it."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import yaml

from planner import pipeline, walk_away
from planner.errors import NoPlanError
from planner.insight import diagnose as diagnose_module
from planner.insight.diagnose import diagnose, iis_text
from tests.dsx.harness import assert_one_clear_error, dsx
from tests.planner.insight.helpers import three_quarters
from tests.planner.small_scenarios import BASE, NO_REQUIREMENTS, tiny


def _two_sites_one_overfull(data):
    beta = dict(data["sites"][0], id="beta", gpu_cap=150, existing_racks={"rack10": 20}, existing_mw=10.0)
    data["sites"].append(beta)


def test_existing_racks_above_the_gpu_cap_are_named_by_site_and_quarter():
    result = diagnose(three_quarters(_two_sites_one_overfull))
    assert not result.feasible
    assert {(c.site, c.period, c.limit) for c in result.conflicts} == {("beta", "2026Q1", "gpu_cap")}
    assert "200 GPUs" in result.conflicts[0].explanation and "gpu_cap" in result.conflicts[0].fix
    assert result.iis_constraints == ["gpu_cap[beta,0]"]
    assert "gpu_cap[beta,0]" in iis_text(result)


def test_a_feasible_scenario_has_no_conflicts():
    result = diagnose(three_quarters())
    assert result.feasible and not result.conflicts and result.status == "Optimal"


def _cloud_needs(least_usd: float):
    """The tiny case (55 GPUs wanted at US$21,900 a quarter each, racks of 10 at US$100,000)
    with the cloud requiring an expected value of at least `least_usd`. Whole racks reach at
    most 6 x 10 GPUs: 55 x 21,900 - 600,000 = US$604,500; the LP relaxation's 5.5 racks reach
    55 x 21,900 - 550,000 = US$654,500."""
    return tiny(lambda d: d.update(participation={"cloud": {"min_expected_value_usd": least_usd}}))


def test_a_requirement_no_whole_rack_plan_meets_is_named_with_its_shortfall_though_the_relaxation_meets_it():
    result = diagnose(_cloud_needs(620_000))
    assert not result.feasible
    [conflict] = result.conflicts
    assert conflict.limit == "participation.cloud.min_expected_value_usd"
    assert conflict.shortfall_usd == pytest.approx(15_500, abs=1)
    assert "US$15,500" in conflict.explanation and "US$604,500" in conflict.explanation
    assert "lower participation.cloud.min_expected_value_usd to at most 604500" in conflict.fix
    assert "no whole-rack plan meets every participation requirement" in result.finding


def test_an_unreachable_requirement_is_named_although_the_relaxations_iis_names_nothing():
    # The relaxation is infeasible, and HiGHS's light IIS test names no row: the diagnosis said
    # "no plan (0 conflict(s) above)" with nothing above.
    result = diagnose(_cloud_needs(1e9))
    assert not result.feasible
    assert [(c.limit, round(c.shortfall_usd)) for c in result.conflicts] == [
        ("participation.cloud.min_expected_value_usd", 1_000_000_000 - 604_500)
    ]


def test_a_plan_is_confirmed_by_the_elastic_model_and_the_diagnosis_says_so():
    result = diagnose(_cloud_needs(600_000))
    assert result.feasible and not result.conflicts
    assert "a whole-rack plan meets every participation requirement" in result.finding
    assert "has a plan" in iis_text(result)


def test_without_requirements_a_feasible_relaxation_is_a_plan_and_the_diagnosis_says_why():
    result = diagnose(tiny(lambda d: d.update(participation=NO_REQUIREMENTS)))
    assert result.feasible and result.status == "Optimal"
    assert "building nothing beyond the existing racks is a whole plan" in result.finding


def test_where_the_light_iis_names_nothing_the_elastic_lp_iis_names_the_rows(monkeypatch):
    # As if the elastic model had found no plan (then the requirements are not the cause).
    monkeypatch.setattr(
        pipeline,
        "requirement_shortfalls",
        lambda *_a, **_k: pipeline.Shortfalls(
            SimpleNamespace(has_solution=False, infeasible=True, status="Infeasible"), {}
        ),
    )
    result = diagnose(_cloud_needs(1e9))
    assert not result.feasible and result.status == "Infeasible"
    assert "participation_expected_value[cloud]" in result.iis_constraints
    assert "participation_expected_value" in {c.limit for c in result.conflicts}
    assert f"IIS names {len(result.iis_constraints) + len(result.iis_bounds)} row(s)" in result.finding


def _cloud_needs_stopped_early(least_usd: float, *, rounded_start: bool = False, **highs: object):
    """`_cloud_needs`, with HiGHS stopped by a limit in `solver.extra` rather than the clock, so
    where it stops does not depend on the machine's speed."""

    def mutate(data):
        data.update(participation={"cloud": {"min_expected_value_usd": least_usd}})
        data["solver"].update(rounded_start=rounded_start, extra=dict(highs))

    return tiny(mutate)


FIRST_PLAN_ONLY = {"presolve": "off", "mip_max_improving_sols": 1}
"""HiGHS stops at its first plan: in the elastic model of `_cloud_needs(600_000)`, 5 racks,
US$5,000 short, with its bound still at no shortfall."""


def test_a_shortfall_of_the_first_plan_found_is_not_reported_as_proof_that_none_meets_it():
    # A whole plan meets US$600,000 (6 racks reach US$604,500). HiGHS, stopped at its first
    # plan, had one US$5,000 short, and the diagnosis said "no whole-rack plan meets every
    # participation requirement", with the fix "lower ... to at most 595000".
    assert diagnose(_cloud_needs(600_000)).feasible
    result = diagnose(_cloud_needs_stopped_early(600_000, **FIRST_PLAN_ONLY))
    assert not result.feasible and not result.proven
    assert result.least_shortfall_usd == 0
    assert "no whole-rack plan meets" not in result.finding
    assert "not proven" in result.finding and "US$5,000" in result.finding
    [conflict] = result.conflicts
    assert conflict.shortfall_usd == pytest.approx(5_000, abs=1)
    assert "closest" not in conflict.explanation and "the best plan found" in conflict.explanation
    assert not conflict.fix  # no requirement change computed from a plan that may not be the closest
    assert "raise solver.time_limit_s" in result.fix
    assert "not proven" in iis_text(result)


def test_a_shortfall_the_bound_proves_is_reported_with_the_bound_though_the_closest_plan_is_not_known():
    # Stopped at the root node with the rounded start's plan: HiGHS's bound proves every whole
    # plan at least US$999,345,500 short; that plan is US$999,405,000 short, the closest
    # US$999,395,500.
    result = diagnose(_cloud_needs_stopped_early(1e9, rounded_start=True, mip_max_nodes=0))
    assert not result.feasible and result.proven
    assert result.least_shortfall_usd == pytest.approx(999_345_500, abs=1)
    assert "no whole-rack plan meets every participation requirement" in result.finding
    assert "US$999,345,500" in result.finding and "proven" in result.finding
    [conflict] = result.conflicts
    assert conflict.shortfall_usd == pytest.approx(999_405_000, abs=1)
    assert "closest" not in conflict.explanation and not conflict.fix
    assert "raise solver.time_limit_s" in result.fix


def test_the_closest_plan_is_named_only_where_highs_proved_it_closest():
    result = diagnose(_cloud_needs(620_000))
    assert result.proven and result.status == "Optimal"
    assert result.least_shortfall_usd == pytest.approx(15_500, abs=1)
    assert "proven" in result.finding and "US$15,500" in result.finding
    [conflict] = result.conflicts
    assert "the closest whole plan" in conflict.explanation and conflict.fix and not result.fix


def test_solve_says_when_the_shortfall_it_names_is_of_a_plan_not_proven_the_closest():
    # The MIP is infeasible, so no plan meets the requirement; the elastic model, stopped at
    # its first plan, had one US$25,000 short (the closest is US$15,500 short), and solve said
    # "cannot be met; the closest plan falls short by US$25,000".
    with pytest.raises(NoPlanError) as raised:
        pipeline.solve_scenario(_cloud_needs_stopped_early(620_000, **FIRST_PLAN_ONLY))
    error = raised.value
    text = "\n".join([error.message, *error.details])
    assert "no plan meets every party's participation requirement" in error.message
    assert "US$25,000" in text and "the closest plan falls short" not in text
    assert "not proven" in text and "raise solver.time_limit_s" in text
    with pytest.raises(NoPlanError) as proven:
        pipeline.solve_scenario(_cloud_needs(620_000))
    assert "the closest plan falls short of it by US$15,500" in "\n".join(proven.value.details)


def test_dsx_plan_diagnose_does_not_say_has_no_plan_where_none_is_proven_impossible(tmp_path):
    data = copy.deepcopy(BASE)
    data["participation"] = {"cloud": {"min_expected_value_usd": 600_000}}
    data["solver"].update(rounded_start=False, extra=FIRST_PLAN_ONLY)
    source = tmp_path / "stopped.yaml"
    source.write_text(yaml.safe_dump(data))
    diagnosed = dsx("plan", "diagnose", source)
    assert_one_clear_error(diagnosed, code=3, names=(str(source), "none proven impossible", "not proven"))
    assert "has no plan:" not in diagnosed.stderr and "raise solver.time_limit_s" in diagnosed.stderr


# Walk-away floors: the deal of tests/planner/test_walk_away.py (its docstring solves it by hand).
# Walk-away values: the cloud US$357,000, the guarantor US$30,000.


def test_diagnose_checks_the_walk_away_floors_solve_refuses_and_names_the_binding_one():
    # Repayment 0.3: no plan gives the guarantor its walk-away value; the closest leaves it at
    # -4,766.67, short by 34,766.67. The given floors (0) alone are met, as diagnose said before.
    from tests.planner.test_walk_away import credit_deal

    result = diagnose(credit_deal(floors="walk_away", repayment=0.3))
    assert not result.feasible and result.proven
    assert result.walk_away_value_usd == pytest.approx({"cloud": 357_000.0, "guarantor": 30_000.0}, abs=1.0)
    assert "the cloud's US$357,000, the guarantor's US$30,000" in result.finding
    [conflict] = result.conflicts
    assert conflict.limit == "participation.guarantor.min_expected_value_usd"
    assert conflict.shortfall_usd == pytest.approx(34_766.67, abs=1.0)
    assert "the walk-away value binds" in conflict.explanation
    assert "change the deal's terms" in conflict.fix
    assert "lowering participation.guarantor.min_expected_value_usd does not help" in conflict.fix
    with pytest.raises(NoPlanError, match="the deal cannot beat walking away"):
        pipeline.solve_scenario(credit_deal(floors="walk_away", repayment=0.3))


def test_a_given_floor_above_the_walk_away_value_binds_and_lowering_it_helps_only_down_to_that_value():
    from tests.planner.test_walk_away import credit_deal

    # Repayment 0.5: the closest plan gives the guarantor 32,055.56, so lowering 40,000 to it helps.
    result = diagnose(credit_deal(floors="walk_away", guarantor_floor=40_000.0))
    [conflict] = result.conflicts
    assert conflict.shortfall_usd == pytest.approx(40_000 - 32_055.56, abs=1.0)
    assert "the given floor binds: given US$40,000, above the guarantor's walk-away value US$30,000" in (
        conflict.explanation
    )
    assert "lower participation.guarantor.min_expected_value_usd to at most 32055" in conflict.fix
    # Repayment 0.3: the closest plan leaves the guarantor -4,766.67, below its walk-away value too.
    result = diagnose(credit_deal(floors="walk_away", repayment=0.3, guarantor_floor=40_000.0))
    [conflict] = result.conflicts
    assert conflict.shortfall_usd == pytest.approx(44_766.67, abs=1.0)
    assert "helps only down to the guarantor's walk-away value US$30,000" in conflict.fix
    assert "change the deal's terms" in conflict.fix


def test_a_deal_that_beats_walking_away_has_a_plan_and_the_finding_names_the_walk_away_values():
    from tests.planner.test_walk_away import credit_deal

    result = diagnose(credit_deal(floors="walk_away"))
    assert result.feasible and not result.conflicts
    assert result.floor_usd == pytest.approx({"cloud": 357_000.0, "guarantor": 30_000.0}, abs=1.0)
    assert "walk-away value" in result.finding and "US$357,000" in result.finding


def test_a_cvar_floor_the_cloud_cannot_meet_alone_is_dropped_and_named(tmp_path):
    # The cloud's CVaR floor (the worst half, boom or bust at even odds) at US$1: alone, every
    # rack loses its cost in the bust and building nothing gives 0, so no no-deal plan meets it
    # (proven). Not signing is always possible: the no-deal plan is solved without it (one rack,
    # 0.5 x 219,000 - 100,000 = 9,500), and the finding says so.
    def change(data):
        data["tenants"][0]["demand_gpus"] = {"boom": [10.0], "bust": [0.0]}
        data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
        data["participation"] = {"floors": "walk_away", "cvar_alpha": 0.5, "cloud": {"min_cvar_usd": 1.0}}

    result = diagnose(tiny(change))
    assert result.walk_away_value_usd == {"cloud": pytest.approx(9_500.0, abs=1.0), "guarantor": 0.0}
    assert "without the cloud's CVaR floor" in result.finding


def test_where_the_no_deal_plan_has_none_diagnose_says_so(tmp_path, monkeypatch):
    # HiGHS stopped with no plan alone (a time limit, say): the floors are unknown, and so is the deal.
    scenario = tiny(lambda data: data.update(participation={"floors": "walk_away"}))
    stopped = SimpleNamespace(infeasible=False, status="Time limit reached")

    def none_found(scenario, interface=None):
        raise walk_away._no_no_deal_plan(scenario, stopped, False)

    monkeypatch.setattr(diagnose_module, "solve_no_deal", none_found)
    result = diagnose(scenario)
    assert not result.feasible and not result.proven
    assert "the walk-away floors cannot be set" in result.finding
    assert "no deal" in result.finding and "stopped" in result.finding
    assert "raise solver.time_limit_s" in result.fix
    assert "participation.floors: given" in result.fix
