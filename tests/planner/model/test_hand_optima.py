"""Optimal plans of tiny cases, derived by hand in the comments (docs/model.md formulas)."""

from __future__ import annotations

import pytest

from planner.model.build import build_model
from planner.results import build_plan
from planner.schema.plan import Plan
from planner.solve.interfaces import solve_model
from tests.planner.small_scenarios import NO_REQUIREMENTS, H, tiny, uncertain


def solve(scenario) -> Plan:
    m = build_model(scenario)
    outcome = solve_model(m, scenario.solver, "direct")
    assert outcome.status == "Optimal"
    plan = build_plan(scenario, m, outcome, build_s=0.0)
    # The solver's objective and the report's recomputation from the decisions agree.
    assert plan.solver.objective_usd == pytest.approx(
        plan.verification.objective_recomputed_usd, rel=1e-7, abs=1e-3
    )
    return plan


def racks(plan: Plan, site: str = "alpha", period: str = "2026Q1") -> int:
    return sum(plan.racks_at(site, period).values())


def test_one_site_one_type_one_scenario_builds_the_sixth_rack_for_five_gpus():
    # 55 GPUs of demand: 5 racks run full (50 GPUs); a 6th serving 5 GPUs earns
    # 5 x 2190 x 10 = 109,500 > 100,000 capex, so it pays; a 7th earns nothing.
    # Value = 55 x 2190 x 10 - 6 x 100,000 = 1,204,500 - 600,000 = 604,500.
    plan = solve(tiny())
    assert racks(plan) == 6
    assert plan.solver.objective_usd == pytest.approx(604_500.0, rel=1e-9)
    assert plan.outcomes[0].served_gpu_hours == pytest.approx(55 * H)
    assert plan.outcomes[0].unserved_gpu_hours == pytest.approx(0.0, abs=1e-3)


def test_lp_relaxation_builds_fractional_racks():
    # Relaxed, the 6th rack is built only for the 5 GPUs it serves: 5.5 racks,
    # value = 55 x 21,900 - 5.5 x 100,000 = 654,500.
    def relax(data):
        data["solver"]["relax_integrality"] = True

    scenario = tiny(relax)
    m = build_model(scenario)
    outcome = solve_model(m, scenario.solver, "direct")
    assert outcome.integer_columns == 0
    assert outcome.objective_usd == pytest.approx(654_500.0, rel=1e-9)
    assert m.racks_built["alpha", "rack10", 0].value == pytest.approx(5.5)


def test_binding_power_cap_limits_racks_and_orders_blocks_ahead_of_lead_time():
    # Two quarters, racks live one quarter. 0.1 MW energised at the start: 1 rack in 2026Q1.
    # Blocks of 0.2 MW arrive one quarter after ordering; the cap of 0.5 MW admits
    # floor((0.5 - 0.1) / 0.2) = 2 blocks, ordered in 2026Q1, so 2026Q2 has 0.5 MW = 5 racks
    # (demand would take 6). Value = (10 x 21,900 - 100,000) + (50 x 21,900 - 500,000)
    # = 119,000 + 595,000 = 714,000.
    def change(data):
        data["periods"]["count_quarters"] = 2
        site = data["sites"][0]
        site.update(power_cap_mw=0.5, existing_mw=0.1, power_block_mw=0.2, power_lead_time_periods=1)
        data["tenants"][0]["demand_gpus"] = {"only": [55.0, 55.0]}

    plan = solve(tiny(change))
    assert racks(plan, period="2026Q1") == 1
    assert racks(plan, period="2026Q2") == 5
    blocks = {p.period: p.blocks_ordered for p in plan.power}
    assert blocks == {"2026Q1": 2, "2026Q2": 0}
    assert plan.power[1].available_mw == pytest.approx(0.5)
    assert plan.solver.objective_usd == pytest.approx(714_000.0, rel=1e-9)


def test_jurisdiction_forces_the_expensive_site():
    # A second site in Norway has free power; 'alpha' (AU) pays US$100/MWh, i.e.
    # 100 x 1.0 x 0.1 MW / 10 GPUs = US$1 per GPU-hour. The tenant may only be served in AU,
    # so both racks for its 20 GPUs go to alpha:
    # value = 20 x 2190 x (10 - 1) - 2 x 100,000 = 394,200 - 200,000 = 194,200.
    def change(data):
        alpha = data["sites"][0]
        alpha["power_price_usd_per_mwh"] = 100.0
        data["sites"].append({**alpha, "id": "bravo", "jurisdiction": "NO", "power_price_usd_per_mwh": 0.0})
        data["tenants"][0]["demand_gpus"] = {"only": [20.0]}
        data["tenants"][0]["allowed_jurisdictions"] = ["AU"]

    plan = solve(tiny(change))
    assert racks(plan, "alpha") == 2
    assert racks(plan, "bravo") == 0
    assert {q.site for q in plan.quotas} == {"alpha"}
    assert plan.solver.objective_usd == pytest.approx(194_200.0, rel=1e-9)


def test_buyback_makes_building_worth_it_under_uncertainty_when_the_guarantor_accepts_any_value():
    # Without buyback a rack earns 0.5 x 438,000 = 219,000 expected < 300,000 capex: build none.
    # Buying back unsold GPU-hours at US$8 pays 21,900 x 8 = 175,200 in the bust, so the rack is
    # worth 0.5 x 438,000 + 0.5 x 175,200 - 300,000 = 6,600 > 0 to the cloud: build one. (In the
    # boom the cloud still serves: US$20 rent beats US$8 buyback.) Here the guarantor requires
    # nothing; it expects 0.5 x (-175,200) = -87,600.
    without = solve(uncertain(buyback_price=0.0, participation=NO_REQUIREMENTS))
    assert racks(without) == 0
    assert without.solver.objective_usd == pytest.approx(0.0, abs=1e-3)

    with_buyback = solve(uncertain(buyback_price=8.0, participation=NO_REQUIREMENTS))
    assert racks(with_buyback) == 1
    assert with_buyback.solver.objective_usd == pytest.approx(6_600.0, rel=1e-9)
    values = {o.scenario: o.cloud_value_usd for o in with_buyback.outcomes}
    assert values == pytest.approx({"boom": 138_000.0, "bust": -124_800.0})
    bust = next(o for o in with_buyback.outcomes if o.scenario == "bust")
    assert bust.buyback_usd == pytest.approx(175_200.0)
    guarantor = next(f for f in with_buyback.parties if f.party == "guarantor")
    assert guarantor.expected_value_usd == pytest.approx(-87_600.0)


def test_the_guarantors_default_requirement_refuses_a_plan_that_costs_it_money():
    # Same case with the default participation (each party expects at least zero): the rack
    # above would cost the guarantor 87,600 in expectation, so no plan with it is signed; the
    # cloud's best remaining plan builds nothing (value 0 for both).
    plan = solve(uncertain(buyback_price=8.0, participation={}))
    assert racks(plan) == 0
    assert plan.solver.objective_usd == pytest.approx(0.0, abs=1e-3)
    assert {f.party: f.expected_value_usd for f in plan.parties} == pytest.approx(
        {"cloud": 0.0, "guarantor": 0.0, "syndicate": 0.0}, abs=1e-3
    )


def test_cvar_builds_less_than_the_risk_neutral_plan():
    # With one rack: boom 138,000, bust -124,800; EV 6,600; CVaR at alpha 0.5 (the worst half)
    # = -124,800. With w = 0.5: 0.5 x 6,600 + 0.5 x (-124,800) = -59,100 < 0 (no rack), so the
    # risk-averse plan builds nothing while the risk-neutral plan above builds one.
    plan = solve(uncertain(buyback_price=8.0, cvar_weight=0.5, participation=NO_REQUIREMENTS))
    assert racks(plan) == 0
    assert plan.solver.objective_usd == pytest.approx(0.0, abs=1e-3)
    assert plan.risk.cvar_usd == pytest.approx(0.0, abs=1e-3)

    neutral = solve(uncertain(buyback_price=8.0, participation=NO_REQUIREMENTS))
    assert neutral.risk.cvar_alpha is None  # no level asked, no CVaR figure
    assert racks(neutral) > racks(plan)


def test_cvar_figure_is_reported_when_weight_is_zero():
    # alpha 0.5 with w = 0 keeps the risk-neutral plan (one rack) and reports CVaR = bust value.
    base = uncertain(buyback_price=8.0, participation=NO_REQUIREMENTS)
    scenario = base.model_copy(update={"objective": base.objective.model_copy(update={"cvar_alpha": 0.5})})
    plan = solve(scenario)
    assert racks(plan) == 1
    assert plan.risk.cvar_usd == pytest.approx(-124_800.0)
    assert plan.risk.worst_case_value_usd == pytest.approx(-124_800.0)


def test_a_clouds_cvar_requirement_stops_the_risk_neutral_build():
    # The risk-neutral cloud builds one rack (EV 6,600, CVaR at 0.5 = -124,800). Requiring a
    # CVaR of at least -100,000 (participation.cvar_alpha 0.5) rules that rack out: build none.
    need = {
        "cvar_alpha": 0.5,
        "cloud": {"min_expected_value_usd": None, "min_cvar_usd": -100_000.0},
        "guarantor": {"min_expected_value_usd": None},
    }
    plan = solve(uncertain(buyback_price=8.0, participation=need))
    assert racks(plan) == 0
    cloud = next(f for f in plan.parties if f.party == "cloud")
    assert cloud.cvar_usd == pytest.approx(0.0, abs=1e-3)
    assert cloud.min_cvar_usd == -100_000.0


def test_the_guarantor_perspective_builds_only_as_far_as_the_cloud_still_signs():
    # The guarantor earns 55% of capex on every rack (55,000, the rack's one quarter of life) and
    # pays nothing here, so alone it would build to the site's limit of 100 racks. The cloud
    # requires an expected value of at least zero: serving the 55 GPUs earns 55 x 21,900 =
    # 1,204,500 and each rack costs 100,000, so the cloud signs at most 12 racks
    # (1,204,500 - 1,200,000 = 4,500 >= 0; 13 racks: -95,500). Guarantor value 12 x 55,000 = 660,000.
    def change(data):
        data["terms"]["guarantor_hardware_margin"] = 0.55
        data["objective"] = {"perspective": "guarantor"}

    plan = solve(tiny(change))
    assert racks(plan) == 12
    assert plan.solver.objective_usd == pytest.approx(660_000.0, rel=1e-9)
    assert plan.outcomes[0].cloud_value_usd == pytest.approx(4_500.0, rel=1e-9)


def test_a_buyback_exposure_cap_limits_the_build():
    # Buyback of 50% of unsold GPU-hours at US$1: a rack's exposure is 0.5 x 1 x 2190 x 10 =
    # 10,950 per quarter. A cap of US$35,000 allows 3 racks (32,850), all rented (no buyback
    # paid): cloud value 30 x 21,900 - 300,000 = 357,000 instead of 604,500 with 6 racks.
    def change(data):
        data["terms"].update(buyback_price_usd_per_gpu_hour=1.0, buyback_share=0.5)
        data["participation"] = {"guarantor": {"max_buyback_exposure_usd_per_period": 35_000.0}}

    plan = solve(tiny(change))
    assert racks(plan) == 3
    assert plan.solver.objective_usd == pytest.approx(357_000.0, rel=1e-9)
    assert plan.site_periods[0].buyback_exposure_usd == pytest.approx(32_850.0)
