"""An infeasible scenario is diagnosed to the right site, quarter and limit, or participation
requirement; a scenario with a plan is confirmed as `dsx plan solve` would find it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from planner import pipeline
from planner.insight.diagnose import diagnose, iis_text
from tests.planner.insight.helpers import three_quarters
from tests.planner.small_scenarios import NO_REQUIREMENTS, tiny


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
        lambda *_a, **_k: (SimpleNamespace(has_solution=False, infeasible=True, status="Infeasible"), {}),
    )
    result = diagnose(_cloud_needs(1e9))
    assert not result.feasible and result.status == "Infeasible"
    assert "participation_expected_value[cloud]" in result.iis_constraints
    assert "participation_expected_value" in {c.limit for c in result.conflicts}
    assert f"IIS names {len(result.iis_constraints) + len(result.iis_bounds)} row(s)" in result.finding
