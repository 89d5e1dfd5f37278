"""The planner checks the no-deal record it makes with the verifier's checks before solving the
deal (planner/walk_away.py), so a record the verifier would refuse is refused as the no-deal
plan's, with the field named, not later as the deal's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner import walk_away
from planner.files import load_scenario, parse_scenario
from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.verify import walk_away_record_violations
from planner.walk_away import NoDealPlanError, solve_no_deal
from tests.planner.test_plan_properties import small_scenarios
from tests.planner.test_walk_away import credit_deal

EXAMPLE = Path(__file__).parents[2] / "examples" / "dsx-2026.yaml"


def test_a_record_whose_decisions_do_not_yield_its_values_is_refused_before_the_deal(monkeypatch):
    real = walk_away.first_stage

    def one_rack_short(plan: Plan):
        recorded = real(plan)
        rack = recorded["racks"][0]
        recorded["racks"] = [rack.model_copy(update={"racks_built": rack.racks_built - 1})]
        return recorded

    monkeypatch.setattr(walk_away, "first_stage", one_rack_short)
    with pytest.raises(NoDealPlanError) as caught:
        solve_no_deal(credit_deal(floors="walk_away"))
    assert (
        "the record of the no-deal plan behind the walk-away floors failed independent verification"
        in str(caught.value)
    )
    details = "\n".join(caught.value.details)
    # 2 racks, acme's 30 GPUs of quota on a 20-GPU pool: overcommitted, and the values are 3 racks'.
    assert "walk_away.racks_built: the record says 3 racks, its racks list 2" in details
    assert "quota_fits alpha/rack10 2026Q1: tenant quotas total 30.0 GPUs but the pool has 20 GPUs" in details
    assert "walk_away.guarantor_value_usd: the record says US$30,000.00" in details


@st.composite
def walk_away_scenarios(draw: st.DrawFn) -> Scenario:
    """test_plan_properties' random small scenarios with walk-away floors, the cloud's CVaR floor
    absent or 0 (which may leave no plan alone, and be dropped)."""
    data = draw(small_scenarios()).model_dump(mode="json")
    data["participation"].update(floors="walk_away")
    data["participation"]["cloud"]["min_cvar_usd"] = draw(st.sampled_from([None, 0.0]))
    return parse_scenario(data, "random.yaml")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=walk_away_scenarios())
def test_every_no_deal_record_the_planner_makes_passes_the_verifiers_checks(scenario: Scenario) -> None:
    # The verifier's greedy second stage must find what HiGHS's plan alone makes: else a true
    # record would be refused. solve_no_deal raises where it would; checked again here.
    record = solve_no_deal(scenario).record
    assert record.has_decisions
    assert walk_away_record_violations(scenario, record) == []


@pytest.mark.parametrize("extra", [{"mip_rel_gap": 0.05}, {"mip_abs_gap": 200.0}])
def test_a_no_deal_plan_stopped_short_of_its_gap_is_recorded_so_not_refused(extra):
    # `solver.extra` runs HiGHS to a looser gap than the record's 1e-3, and HiGHS says "optimal":
    # recorded as having reached its gap, the verifier's gap check refused the honest record and
    # nothing could be solved (review, session 26). The decomposition keeps "optimal" where its
    # loop ran out of time, the same way.
    data = load_scenario(EXAMPLE).model_dump(mode="json")
    data["participation"]["floors"] = "walk_away"
    data["solver"].update(mip_rel_gap=0.01, extra=extra)
    deal = parse_scenario(data, "bundled example, a loose extra gap")
    record = solve_no_deal(deal).record
    assert record.status == "Optimal" and record.cloud_bound_usd is not None
    assert record.cloud_bound_usd - record.cloud_value_usd > record.mip_rel_gap * record.cloud_bound_usd
    assert record.reached_gap is False
    assert walk_away_record_violations(deal, record) == []
