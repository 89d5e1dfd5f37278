"""The independent verifier accepts a correct plan and names every kind of violation.

The hand case: one site (AU, 1 MW energised, cap 2 MW, 1 MW blocks), one rack type (10 GPUs,
100 kW, US$40,000, 4-quarter life), one tenant (US$2/GPU-hour, AU only), one quarter, no
discounting, h = 2190 hours. Energy: US$100/MWh x PUE 1.0 x 0.01 MW per GPU = US$1 per GPU-hour.
Terms: buyback US$1/GPU-hour on 50% of unsold hours, 10% revenue share, 50% hardware margin.
Plan: build 2 racks (20 GPUs, 43,800 GPU-hours), quota 20 GPUs.

  scenario "boom" (demand 15 GPUs):          scenario "bust" (demand 5 GPUs):
  served   = 15 x 2190          = 32,850      served   = 5 x 2190            = 10,950
  REV      = 2 x 32,850         = 65,700      REV      = 2 x 10,950          = 21,900
  RS       = 10% of REV         =  6,570      RS                             =  2,190
  BB       = 50% x 10,950 x $1  =  5,475      BB       = 50% x 32,850 x $1   = 16,425
  EN       = 32,850 x $1        = 32,850      EN                             = 10,950
  CX       = 40,000 / 4 x 2     = 20,000      CX                             = 20,000
  cloud    = 65,700 − 6,570 + 5,475 − 32,850 − 20,000 = 11,755
                                              cloud    = 21,900 − 2,190 + 16,425 − 10,950 − 20,000 = 5,185
  HM       = 50% x 40,000 / 4 x 2 = 10,000 (the margin is amortised like the capex)
  guarantor= 10,000 + 6,570 − 5,475 = 11,095  guarantor= 10,000 + 2,190 − 16,425 = −4,235

No participation requirements (each test of a requirement states its own).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from planner.files import parse_scenario
from planner.schema.plan import Plan, QuotaDecision, RackDecision, ServedRecord, UnservedRecord
from planner.schema.scenario import Scenario
from planner.verify import cvar_by_sorting, verify_plan
from tests.planner.plan_factory import cvar_rockafellar_uryasev, make_plan

H = 2190.0
Q = "2027Q1"
NO_REQUIREMENTS: dict[str, Any] = {
    "cloud": {"min_expected_value_usd": None},
    "guarantor": {"min_expected_value_usd": None},
}

BASE: dict[str, Any] = {
    "name": "hand",
    "periods": {"start_quarter": Q, "count_quarters": 1, "discount_rate_annual": 0.0},
    "sites": [
        {
            "id": "site-a",
            "jurisdiction": "AU",
            "power_cap_mw": 2.0,
            "existing_mw": 1.0,
            "power_block_mw": 1.0,
            "power_lead_time_periods": 0,
            "power_price_usd_per_mwh": 100.0,
            "pue": 1.0,
            "gpu_cap": 1000,
            "max_racks_built_per_period": 10,
            "max_power_blocks_per_period": 1,
            "power_capex_usd_per_mw": 0.0,
        }
    ],
    "rack_types": [
        {
            "id": "rack",
            "gpu_product": "NVIDIA-GB300",
            "gpus_per_rack": 10,
            "nodes_per_rack": 2,
            "kw_per_rack": 100.0,
            "capex_usd": 40_000.0,
            "lifetime_periods": 4,
        }
    ],
    "tenants": [
        {
            "id": "tenant",
            "price_usd_per_gpu_hour": 2.0,
            "demand_gpus": {"boom": [15.0]},
            "allowed_jurisdictions": ["AU"],
        }
    ],
    "scenarios": [{"id": "boom", "probability": 1.0}],
    "terms": {
        "buyback_price_usd_per_gpu_hour": 1.0,
        "buyback_share": 0.5,
        "revenue_share": 0.1,
        "guarantor_hardware_margin": 0.5,
    },
    "objective": {"perspective": "cloud"},
    "participation": NO_REQUIREMENTS,
}


def hand_scenario(change=None) -> Scenario:
    data = copy.deepcopy(BASE)
    if change is not None:
        change(data)
    return parse_scenario(data, "hand.yaml")


def boom_and_bust(data: dict[str, Any]) -> None:
    data["scenarios"] = [{"id": "boom", "probability": 0.5}, {"id": "bust", "probability": 0.5}]
    data["tenants"][0]["demand_gpus"] = {"boom": [15.0], "bust": [5.0]}


def second_site_in_indonesia(data: dict[str, Any]) -> None:
    data["sites"].append({**data["sites"][0], "id": "site-b", "jurisdiction": "ID"})
    data["tenants"].append({"id": "local", "price_usd_per_gpu_hour": 1.0, "demand_gpus": {"boom": [0.0]}})


def hand_plan(scenario: Scenario, *, racks: int = 2, quota: float = 20.0, blocks: int = 0) -> Plan:
    """Serve all demand on site-a (as far as the quota allows) in every scenario."""
    served = {
        (case.id, "tenant", "site-a", "rack", Q): min(
            H * scenario.tenant("tenant").demand_gpus[case.id][0], H * quota
        )
        for case in scenario.scenarios
    }
    return make_plan(
        scenario,
        racks_built={("site-a", "rack", Q): racks},
        blocks_ordered={("site-a", Q): blocks},
        quotas={("tenant", "site-a", "rack", Q): quota},
        served=served,
    )


def violations(scenario: Scenario, plan: Plan) -> list[str]:
    result = verify_plan(scenario, plan)
    assert result.passed is (not result.violations)
    return result.violations


def replace(plan: Plan, **fields: Any) -> Plan:
    return plan.model_copy(update=fields)


# --- correct plans pass, with the hand-computed objective ------------------------------------


def test_hand_computed_plan_passes_and_objective_matches_hand_arithmetic() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    outcome = plan.outcomes[0]
    assert (outcome.cloud_value_usd, outcome.guarantor_value_usd) == pytest.approx((11_755.0, 11_095.0))
    assert (outcome.rental_revenue_usd, outcome.buyback_usd, outcome.revenue_share_usd) == pytest.approx(
        (65_700.0, 5_475.0, 6_570.0)
    )
    result = verify_plan(scenario, plan)
    assert result.violations == []
    assert result.passed
    assert result.objective_recomputed_usd == pytest.approx(11_755.0)
    assert result.checks_run > 40


def test_two_scenario_plan_with_cvar_has_the_hand_computed_objective() -> None:
    def change(data: dict[str, Any]) -> None:
        boom_and_bust(data)
        data["objective"] = {"perspective": "cloud", "cvar_alpha": 0.5, "cvar_weight": 0.5}

    scenario = hand_scenario(change)
    plan = hand_plan(scenario)
    # E = (11,755 + 5,185) / 2 = 8,470; CVaR_0.5 = the bust half = 5,185; 0.5 x 8,470 + 0.5 x 5,185
    assert [o.cloud_value_usd for o in plan.outcomes] == pytest.approx([11_755.0, 5_185.0])
    result = verify_plan(scenario, plan)
    assert result.violations == []
    assert result.objective_recomputed_usd == pytest.approx(6_827.5)


def test_guarantor_perspective_counts_margin_revenue_share_buyback_and_credit_losses() -> None:
    # Half the bill in token credits; 80% repaid in boom, 50% in bust.
    # CL boom = 0.5 x 0.2 x 65,700 = 6,570; bust = 0.5 x 0.5 x 21,900 = 5,475
    # guarantor boom = 11,095 − 6,570 = 4,525; bust = −4,235 − 5,475 = −9,710; E = −2,592.5
    def change(data: dict[str, Any]) -> None:
        boom_and_bust(data)
        data["tenants"][0].update(
            token_credit_share=0.5,
            credit_repayment_share=0.8,
            credit_repayment_share_by_scenario={"bust": 0.5},
        )
        data["objective"] = {"perspective": "guarantor"}

    scenario = hand_scenario(change)
    plan = hand_plan(scenario)
    assert [o.credit_loss_usd for o in plan.outcomes] == pytest.approx([6_570.0, 5_475.0])
    result = verify_plan(scenario, plan)
    assert result.violations == []
    assert result.objective_recomputed_usd == pytest.approx(-2_592.5)


def test_racks_retire_after_their_lifetime_and_blocks_arrive_after_their_lead_time() -> None:
    # Lifetime 2, one existing rack, built [3, 0, 1] -> installed [4, 4, 2].
    # Lead time 1, blocks ordered [1, 0, 0] -> available [1, 2, 2] MW.
    def change(data: dict[str, Any]) -> None:
        data["periods"]["count_quarters"] = 3
        data["rack_types"][0]["lifetime_periods"] = 2
        data["sites"][0].update(existing_racks={"rack": 1}, power_lead_time_periods=1)
        data["tenants"][0]["demand_gpus"] = {"boom": [0.0, 0.0, 0.0]}

    scenario = hand_scenario(change)
    plan = make_plan(
        scenario,
        racks_built={("site-a", "rack", "2027Q1"): 3, ("site-a", "rack", "2027Q3"): 1},
        blocks_ordered={("site-a", "2027Q1"): 1},
    )
    assert [r.racks_installed for r in plan.racks] == [4, 4, 2]
    assert [p.available_mw for p in plan.power] == [1.0, 2.0, 2.0]
    assert violations(scenario, plan) == []

    never_retired = [*plan.racks[:2], plan.racks[2].model_copy(update={"racks_installed": 4})]
    messages = violations(scenario, replace(plan, racks=never_retired))
    assert messages == [
        "reported racks site-a/rack 2027Q3: the plan says 4 racks, 20 GPUs, 4 nodes; its racks_built and the "
        "existing racks give 2 racks, 20 GPUs, 4 nodes"
    ]


# --- each constraint family is named ---------------------------------------------------------


def test_plan_that_overdraws_power_is_rejected_naming_site_and_quarter() -> None:
    scenario = hand_scenario()
    messages = violations(scenario, hand_plan(scenario, racks=11))  # 11 x 100 kW = 1.1 MW > 1.0 MW
    assert "power_fits site-a 2027Q1: racks need 1.1 MW but 1.0 MW is available (excess 0.1 MW)" in messages
    assert any(m.startswith("build_rate site-a 2027Q1: 11 racks built but at most 10") for m in messages)


def test_energised_power_above_the_site_cap_is_named() -> None:
    scenario = hand_scenario(lambda d: d["sites"][0].update(max_power_blocks_per_period=3))
    messages = violations(scenario, hand_plan(scenario, blocks=2))  # 1 + 2 x 1 MW = 3 MW > 2 MW cap
    assert messages == ["power_cap site-a 2027Q1: 3.0 MW energised but the cap is 2.0 MW (excess 1.0 MW)"]


def test_ordering_more_blocks_than_the_block_rate_is_named() -> None:
    scenario = hand_scenario(lambda d: d["sites"][0].update(power_cap_mw=5.0))
    messages = violations(scenario, hand_plan(scenario, blocks=2))
    assert messages == [
        "block_rate site-a 2027Q1: 2 power blocks ordered but at most 1 may be ordered per quarter (excess 1)"
    ]


def test_block_that_cannot_arrive_within_the_horizon_is_named() -> None:
    scenario = hand_scenario(lambda d: d["sites"][0].update(power_lead_time_periods=1))
    messages = violations(scenario, hand_plan(scenario, blocks=1))
    assert messages == [
        "block_arrival site-a 2027Q1: 1 power block(s) ordered that cannot arrive within the horizon "
        "(lead time 1 quarters, the horizon ends 2027Q1)"
    ]


def test_more_gpus_than_the_site_cap_is_named() -> None:
    scenario = hand_scenario(lambda d: d["sites"][0].update(gpu_cap=15))
    messages = violations(scenario, hand_plan(scenario, quota=15.0))
    assert messages == ["gpu_cap site-a 2027Q1: 20 GPUs installed but the cap is 15 (excess 5 GPUs)"]


def test_quotas_that_overcommit_a_pool_and_serving_beyond_capacity_are_named() -> None:
    scenario = hand_scenario()
    messages = violations(scenario, hand_plan(scenario, racks=1))  # pool of 10 GPUs, quota 20, 15 served
    assert messages == [
        "quota_fits site-a/rack 2027Q1: tenant quotas total 20.0 GPUs but the pool has 10 GPUs "
        "(overcommit 10.0 GPUs)",
        "serve_within_capacity site-a/rack 2027Q1 [boom]: 32,850 GPU-hours served but the pool's 10 GPUs "
        "give 21,900 (excess 10,950 GPU-hours)",
    ]


def test_serving_more_than_the_quota_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    smaller = QuotaDecision(tenant="tenant", site="site-a", rack_type="rack", period=Q, quota_gpus=10.0)
    messages = violations(scenario, replace(plan, quotas=[smaller]))
    assert messages == [
        "serve_within_quota tenant@site-a/rack 2027Q1 [boom]: 32,850 GPU-hours served but the quota of "
        "10.0 GPUs allows 21,900 (excess 10,950 GPU-hours)"
    ]


def test_serving_in_a_forbidden_jurisdiction_is_named() -> None:
    scenario = hand_scenario(second_site_in_indonesia)
    plan = make_plan(
        scenario,
        racks_built={("site-b", "rack", Q): 2},
        quotas={("tenant", "site-b", "rack", Q): 20.0},
        served={("boom", "tenant", "site-b", "rack", Q): 15 * H},
    )
    messages = violations(scenario, plan)
    assert messages == [
        "jurisdiction tenant@site-b/rack 2027Q1: quota of 20.0 GPUs at a site in ID, outside the tenant's "
        "allowed jurisdictions",
        "jurisdiction tenant@site-b/rack 2027Q1 [boom]: 32,850 GPU-hours served in ID, outside the tenant's "
        "allowed jurisdictions",
    ]


def test_rack_type_not_allowed_at_the_site_is_named() -> None:
    def change(data: dict[str, Any]) -> None:
        data["rack_types"].append({**data["rack_types"][0], "id": "other"})
        data["sites"][0]["rack_types"] = ["rack"]

    scenario = hand_scenario(change)
    plan = hand_plan(scenario)
    intruder = RackDecision(
        site="site-a",
        rack_type="other",
        period=Q,
        racks_built=0,
        racks_installed=0,
        gpus_installed=0,
        nodes_installed=0,
    )
    messages = violations(scenario, replace(plan, racks=[*plan.racks, intruder]))
    assert messages == [
        "rack_types_allowed site-a/other 2027Q1: rack type 'other' is not allowed at site 'site-a'"
    ]


def test_demand_imbalance_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    extra = UnservedRecord(scenario="boom", tenant="tenant", period=Q, unserved_gpu_hours=500.0)
    messages = violations(scenario, replace(plan, unserved=[extra]))
    assert messages[0] == (
        "demand_balance tenant 2027Q1 [boom]: served 32,850 + unserved 500 = 33,350 GPU-hours but demand is "
        "15.000 GPUs x 2190 h = 32,850 (difference 500)"
    )
    assert "outcome [boom] unserved_gpu_hours: the plan reports 0.000, recomputed 500.000" in messages


def test_misreported_figure_is_named_with_both_amounts() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    outcome = plan.outcomes[0].model_copy(update={"buyback_usd": 9_999.0})
    assert violations(scenario, replace(plan, outcomes=[outcome])) == [
        "outcome [boom] buyback_usd: the plan reports 9,999.00, recomputed 5,475.00 (difference 4,524.00)"
    ]


def test_money_within_one_dollar_is_accepted_and_beyond_is_not() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    nearly = plan.solver.model_copy(update={"objective_usd": 11_755.0 + 0.9})
    assert violations(scenario, replace(plan, solver=nearly)) == []
    off = plan.solver.model_copy(update={"objective_usd": 11_755.0 + 1.5})
    assert violations(scenario, replace(plan, solver=off)) == [
        "solver.objective_usd: the plan reports 11,756.50, recomputed 11,755.00 (difference 1.50)"
    ]


def test_misreported_site_period_summary_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    row = plan.site_periods[0].model_copy(update={"expected_utilisation": 0.9})
    assert violations(scenario, replace(plan, site_periods=[row])) == [
        "site_periods site-a 2027Q1 expected_utilisation: the plan reports 0.9, recomputed 0.75"
    ]


def test_plan_from_another_scenario_is_rejected_by_hash() -> None:
    scenario = hand_scenario()
    other = hand_scenario(lambda d: d["terms"].update(buyback_share=0.6))
    messages = violations(other, hand_plan(scenario))
    assert messages[0].startswith(f"scenario_hash: the plan was solved from {scenario.content_hash()}")


def test_plan_that_hands_a_tenant_to_other_owners_is_rejected() -> None:
    # Provisioning grants namespace access from the plan's copy of the owners, not the scenario's.
    scenario = hand_scenario(lambda d: d["tenants"][0].update(owners=["alice@example.com"]))
    plan = hand_plan(scenario)
    stolen = plan.tenants[0].model_copy(update={"owners": ["mallory@example.com"]})
    assert violations(scenario, replace(plan, tenants=[stolen])) == [
        "tenants tenant: the plan copies (display name, owners) as ('', ['mallory@example.com']), "
        "the scenario has ('', ['alice@example.com'])"
    ]


def test_fractional_rack_count_is_rejected() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    # pydantic keeps racks_built an int; model_construct can smuggle a fraction past it
    bad = RackDecision.model_construct(**{**plan.racks[0].model_dump(), "racks_built": 1.5})
    messages = violations(scenario, replace(plan, racks=[bad]))
    assert messages[0] == "integrality site-a/rack 2027Q1: racks_built = 1.5 must be a whole number ≥ 0"


def test_negative_rack_count_is_rejected() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    bad = plan.racks[0].model_copy(update={"racks_built": -1})
    assert "integrality site-a/rack 2027Q1: racks_built = -1 must be a whole number ≥ 0" in violations(
        scenario, replace(plan, racks=[bad])
    )


def test_unknown_ids_duplicates_and_missing_records_are_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    ghost = ServedRecord(
        scenario="boom", tenant="ghost", site="site-a", rack_type="rack", period=Q, served_gpu_hours=1
    )
    assert violations(scenario, replace(plan, served=[*plan.served, ghost])) == [
        "served ghost@site-a/rack 2027Q1 [boom]: unknown tenant, site, rack type, quarter or scenario"
    ]
    doubled = violations(scenario, replace(plan, served=[plan.served[0], plan.served[0]]))
    assert "served tenant@site-a/rack 2027Q1 [boom]: listed 2 times" in doubled
    assert violations(scenario, replace(plan, power=[]))[0] == (
        "power site-a 2027Q1: no record (the plan must list power for every site and quarter)"
    )


def test_violation_list_is_capped_at_fifty_messages() -> None:
    scenario = hand_scenario(lambda d: d["tenants"][0].update(demand_gpus={"boom": [0.0]}))
    plan = hand_plan(scenario)
    junk = [
        UnservedRecord(scenario="boom", tenant="tenant", period=f"2030Q{1 + n % 4}", unserved_gpu_hours=1.0)
        for n in range(80)
    ]
    result = verify_plan(scenario, replace(plan, unserved=junk))
    assert not result.passed
    assert len(result.violations) == 51
    assert result.violations[-1] == "and 30 more"


# --- CVaR by sorting ----------------------------------------------------------------------------


VALUES = {"low": -10.0, "base": 20.0, "high": 50.0}
PROBABILITIES = {"low": 0.25, "base": 0.5, "high": 0.25}


def test_cvar_at_075_is_the_worst_scenario_value() -> None:
    assert cvar_by_sorting(VALUES, PROBABILITIES, 0.75) == pytest.approx(-10.0)


def test_cvar_at_05_takes_the_worst_scenario_and_half_the_middle_mass() -> None:
    # worst half: all of low (0.25) and half of base (0.25) -> (0.25 x −10 + 0.25 x 20) / 0.5
    assert cvar_by_sorting(VALUES, PROBABILITIES, 0.5) == pytest.approx(5.0)


def test_cvar_at_0_is_the_expected_value_and_near_1_the_worst() -> None:
    assert cvar_by_sorting(VALUES, PROBABILITIES, 0.0) == pytest.approx(20.0)
    assert cvar_by_sorting(VALUES, PROBABILITIES, 0.999) == pytest.approx(-10.0)


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.25, 0.5, 0.6, 0.75, 0.9])
def test_cvar_by_sorting_agrees_with_the_rockafellar_uryasev_formula(alpha: float) -> None:
    assert cvar_by_sorting(VALUES, PROBABILITIES, alpha) == pytest.approx(
        cvar_rockafellar_uryasev(VALUES, PROBABILITIES, alpha)
    )


def test_misreported_cvar_is_named() -> None:
    def change(data: dict[str, Any]) -> None:
        boom_and_bust(data)
        data["objective"] = {"perspective": "cloud", "cvar_alpha": 0.5}

    scenario = hand_scenario(change)
    plan = hand_plan(scenario)
    assert plan.risk.cvar_usd == pytest.approx(5_185.0)
    wrong = plan.risk.model_copy(update={"cvar_usd": 8_470.0})
    assert violations(scenario, replace(plan, risk=wrong)) == [
        "risk.cvar_usd (alpha 0.5): the plan reports 8,470.00, recomputed 5,185.00 (difference 3,285.00)"
    ]


# --- a solved plan ----------------------------------------------------------------------------


def test_solved_example_passes_quickly_and_a_perturbed_copy_does_not(example_scenario_path) -> None:
    import time

    pipeline = pytest.importorskip("planner.pipeline")
    from planner.files import load_scenario

    scenario = load_scenario(example_scenario_path)
    plan = pipeline.solve_scenario(scenario)
    start = time.perf_counter()
    result = verify_plan(scenario, plan)
    assert time.perf_counter() - start < 1.0
    assert result.passed, result.violations
    assert result.objective_recomputed_usd == pytest.approx(plan.solver.objective_usd, rel=1e-6, abs=1.0)
    first = plan.racks[0]
    bumped = first.model_copy(
        update={"racks_built": first.racks_built + 1000, "racks_installed": first.racks_installed + 1000}
    )
    assert not verify_plan(scenario, replace(plan, racks=[bumped, *plan.racks[1:]])).passed


def test_not_a_number_is_never_accepted_as_served_gpu_hours() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    nan = plan.served[0].model_copy(update={"served_gpu_hours": float("nan")})
    messages = violations(scenario, replace(plan, served=[nan]))
    assert messages[0] == "served tenant@site-a/rack 2027Q1 [boom]: nan GPU-hours must be a number ≥ 0"
    assert any(m.startswith("demand_balance tenant 2027Q1 [boom]") for m in messages)


# --- deal economics (issue 11) -----------------------------------------------------------------


def test_buyback_is_recomputed_only_on_capacity_no_tenant_wanted() -> None:
    # Quota 10 GPUs against 15 demanded on 20 installed: 10 GPUs unsold, 5 of them wanted by the
    # refused tenant, so only 5 GPUs had no buyer: BB = 50% x 5 x 2190 x $1 = 5,475 (not 10,950).
    scenario = hand_scenario()
    plan = hand_plan(scenario, quota=10.0)
    assert plan.outcomes[0].buyback_usd == pytest.approx(5_475.0)
    assert violations(scenario, plan) == []
    inflated = plan.outcomes[0].model_copy(update={"buyback_usd": 10_950.0})
    messages = violations(scenario, replace(plan, outcomes=[inflated]))
    assert any(m.startswith("outcome [boom] buyback_usd: the plan reports 10,950.00") for m in messages)


def test_a_quota_that_shrinks_inside_its_contract_term_is_named() -> None:
    def change(data: dict[str, Any]) -> None:
        data["periods"]["count_quarters"] = 2
        data["tenants"][0]["demand_gpus"] = {"boom": [15.0, 15.0]}

    scenario = hand_scenario(change)
    plan = make_plan(
        scenario,
        racks_built={("site-a", "rack", "2027Q1"): 2},
        quotas={("tenant", "site-a", "rack", "2027Q1"): 20.0, ("tenant", "site-a", "rack", "2027Q2"): 15.0},
        served={(s, "tenant", "site-a", "rack", q): 15 * H for s in ("boom",) for q in ("2027Q1", "2027Q2")},
    )
    assert violations(scenario, plan) == [
        "quota_never_shrinks tenant@site-a/rack 2027Q2: quota falls from 20.0 to 15.0 GPUs, more than the "
        "0.0 the contract rule allows"
    ]


def test_a_plan_below_a_partys_requirement_is_named_with_the_shortfall() -> None:
    # The hand plan gives the guarantor 11,095; requiring 20,000 leaves it 8,905 short.
    scenario = hand_scenario(
        lambda d: d.update(participation={"guarantor": {"min_expected_value_usd": 20_000.0}})
    )
    messages = violations(scenario, hand_plan(scenario))
    assert messages == [
        "participation.guarantor.min_expected_value_usd: the plan gives the guarantor US$11,095, below its "
        "requirement of US$20,000 (short by US$8,905)"
    ]
