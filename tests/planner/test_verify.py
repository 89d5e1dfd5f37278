"""The independent verifier accepts a correct plan and names every kind of violation.

The hand case: one site, one rack type, one tenant, one quarter, one scenario, no discounting.
h = 2190 hours. Build 2 racks of 10 GPUs (100 kW each, US$40,000, 4-quarter life); the tenant
rents 15 GPUs at US$2/GPU-hour; energy costs US$100/MWh at PUE 1.0, i.e. US$1 per GPU-hour.

  served   = 15 x 2190 = 32,850 GPU-hours;  capacity = 20 x 2190 = 43,800
  REV      = 2 x 32,850                     = 65,700
  RS       = 10% of REV                     =  6,570
  buyback  = 50% x (43,800 - 32,850) x US$1 =  5,475
  energy   = 32,850 x US$1                  = 32,850
  capex    = 40,000 / 4 x 2                 = 20,000
  cloud    = 65,700 - 6,570 + 5,475 - 32,850 - 20,000 = 11,755
  margin   = 50% x 40,000 x 2               = 40,000
  guarantor= 40,000 + 6,570 - 5,475         = 41,095
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from planner.io import parse_scenario
from planner.plan import (
    Plan,
    PowerDecision,
    QuotaDecision,
    RackDecision,
    RackTypeInfo,
    RiskFigures,
    ScenarioOutcome,
    ServedRecord,
    SiteInfo,
    SitePeriodSummary,
    SolverReport,
    TenantInfo,
    UnservedRecord,
    Verification,
)
from planner.scenario import Scenario
from planner.verify import cvar_by_sorting, verify_plan

H = 2190.0


def hand_scenario(**objective) -> Scenario:
    return parse_scenario(
        {
            "name": "hand",
            "periods": {"start_quarter": "2027Q1", "count_quarters": 1, "discount_rate_annual": 0.0},
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
                    "demand_gpus": {"base": [15.0]},
                    "allowed_jurisdictions": ["AU"],
                }
            ],
            "scenarios": [{"id": "base", "probability": 1.0}],
            "terms": {
                "buyback_price_usd_per_gpu_hour": 1.0,
                "buyback_share": 0.5,
                "revenue_share": 0.1,
                "guarantor_hardware_margin": 0.5,
            },
            "objective": objective or {"perspective": "cloud"},
        },
        "hand.yaml",
    )


def hand_plan(scenario: Scenario, *, racks: int = 2, served: float = 15 * H, objective_usd: float = 11_755.0) -> Plan:
    cloud, guarantor = 11_755.0, 41_095.0
    return Plan(
        scenario_name="hand",
        scenario_hash=scenario.content_hash(),
        created_at=datetime.now(UTC),
        perspective=scenario.objective.perspective,
        cvar_weight=scenario.objective.cvar_weight,
        hours_per_period=H,
        periods=["2027Q1"],
        discount_factors=[1.0],
        sites=[SiteInfo(id="site-a", jurisdiction="AU", power_cap_mw=2.0, pue=1.0, gpu_cap=1000)],
        rack_types=[
            RackTypeInfo(
                id="rack", gpu_product="NVIDIA-GB300", gpus_per_rack=10, nodes_per_rack=2, gpus_per_node=5, kw_per_rack=100
            )
        ],
        tenants=[TenantInfo(id="tenant", allowed_jurisdictions=["AU"])],
        scenario_probabilities={"base": 1.0},
        racks=[
            RackDecision(
                site="site-a",
                rack_type="rack",
                period="2027Q1",
                racks_built=racks,
                racks_installed=racks,
                gpus_installed=10 * racks,
                nodes_installed=2 * racks,
            )
        ],
        power=[PowerDecision(site="site-a", period="2027Q1", blocks_ordered=0, available_mw=1.0, it_load_mw=0.1 * racks)],
        quotas=[QuotaDecision(tenant="tenant", site="site-a", rack_type="rack", period="2027Q1", quota_gpus=20.0)],
        served=[
            ServedRecord(scenario="base", tenant="tenant", site="site-a", rack_type="rack", period="2027Q1", served_gpu_hours=served)
        ],
        unserved=[UnservedRecord(scenario="base", tenant="tenant", period="2027Q1", unserved_gpu_hours=15 * H - served)],
        site_periods=[
            SitePeriodSummary(
                site="site-a",
                period="2027Q1",
                racks_by_type={"rack": racks},
                gpus_installed=10 * racks,
                available_mw=1.0,
                it_load_mw=0.1 * racks,
                expected_utilisation=32_850 / 43_800,
                expected_buyback_gpu_hours=5_475.0,
                expected_buyback_usd=5_475.0,
                expected_revenue_share_usd=6_570.0,
            )
        ],
        outcomes=[
            ScenarioOutcome(
                scenario="base",
                probability=1.0,
                cloud_value_usd=cloud,
                guarantor_value_usd=guarantor,
                syndicate_value_usd=cloud + guarantor,
                objective_value_usd=cloud,
                rental_revenue_usd=65_700.0,
                buyback_usd=5_475.0,
                revenue_share_usd=6_570.0,
                credit_loss_usd=0.0,
                served_gpu_hours=32_850.0,
                unserved_gpu_hours=0.0,
            )
        ],
        risk=RiskFigures(expected_value_usd=cloud, worst_case_value_usd=cloud, best_case_value_usd=cloud),
        solver=SolverReport(
            interface="hand",
            status="Optimal",
            mip_gap=0.0,
            objective_usd=objective_usd,
            best_bound_usd=objective_usd,
            rows=0,
            columns=0,
            nonzeros=0,
            integer_columns=0,
            build_s=0.0,
            handoff_s=0.0,
            solve_s=0.0,
            highs_version="none",
        ),
        verification=Verification(passed=False, checks_run=0, objective_recomputed_usd=0.0),
    )


def test_hand_computed_plan_passes_and_objective_matches_hand_arithmetic() -> None:
    scenario = hand_scenario()
    result = verify_plan(scenario, hand_plan(scenario))
    assert result.violations == []
    assert result.passed
    assert result.objective_recomputed_usd == pytest.approx(11_755.0)
    assert result.checks_run > 20


def test_plan_from_another_scenario_is_rejected_by_hash() -> None:
    scenario = hand_scenario()
    other = hand_scenario(perspective="cloud", cvar_alpha=0.9)
    result = verify_plan(other, hand_plan(scenario))
    assert not result.passed
    assert any(v.startswith("scenario_hash") for v in result.violations)


def test_plan_that_overdraws_power_is_rejected_naming_site_and_quarter() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario, racks=11)  # 11 x 100 kW = 1.1 MW > 1.0 MW; also > 10 racks/quarter
    result = verify_plan(scenario, plan)
    assert any(v.startswith("power_fits site-a 2027Q1: racks need 1.1 MW but 1.0 MW") for v in result.violations)
    assert any(v.startswith("build_rate site-a 2027Q1: 11 racks built") for v in result.violations)


def test_serving_beyond_installed_capacity_and_quota_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario, racks=1)  # 10 GPUs installed, 15 served, quota 20 > pool of 10
    messages = verify_plan(scenario, plan).violations
    assert any(v.startswith("serve_within_capacity site-a/rack 2027Q1 [base]") for v in messages)
    assert any(v.startswith("quota_fits site-a/rack 2027Q1: tenant quotas total 20.0 GPUs") for v in messages)


def test_serving_more_than_the_quota_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    plan = plan.model_copy(update={"quotas": [plan.quotas[0].model_copy(update={"quota_gpus": 10.0})]})
    messages = verify_plan(scenario, plan).violations
    assert any(v.startswith("serve_within_quota tenant@site-a/rack 2027Q1 [base]") for v in messages)


def test_demand_imbalance_is_named() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    plan = plan.model_copy(update={"unserved": []})  # drop nothing: balance holds
    assert verify_plan(scenario, plan).passed
    wrong = plan.model_copy(
        update={"unserved": [UnservedRecord(scenario="base", tenant="tenant", period="2027Q1", unserved_gpu_hours=500.0)]}
    )
    messages = verify_plan(scenario, wrong).violations
    assert any(v.startswith("demand_balance tenant 2027Q1 [base]") for v in messages)


def test_serving_in_a_forbidden_jurisdiction_is_named() -> None:
    data_scenario = hand_scenario()
    data = data_scenario.model_dump(mode="json")
    data["sites"].append({**data["sites"][0], "id": "site-b", "jurisdiction": "ID"})
    scenario = parse_scenario(data, "two-sites.yaml")
    plan = hand_plan(scenario)
    plan = plan.model_copy(
        update={
            "served": [plan.served[0].model_copy(update={"site": "site-b"})],
        }
    )
    messages = verify_plan(scenario, plan).violations
    assert any(v.startswith("jurisdiction tenant@site-b 2027Q1 [base]") for v in messages)


def test_misreported_figure_is_named_with_both_amounts() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    outcome = plan.outcomes[0].model_copy(update={"buyback_usd": 9_999.0})
    messages = verify_plan(scenario, plan.model_copy(update={"outcomes": [outcome]})).violations
    assert messages == ["outcome [base] buyback_usd: plan reports 9,999.00, recomputed 5,475.00 (difference 4,524.00)"]


def test_solver_objective_that_disagrees_is_rejected() -> None:
    scenario = hand_scenario()
    messages = verify_plan(scenario, hand_plan(scenario, objective_usd=20_000.0)).violations
    assert any(v.startswith("solver.objective_usd") for v in messages)


def test_fractional_rack_count_is_rejected() -> None:
    scenario = hand_scenario()
    plan = hand_plan(scenario)
    # pydantic keeps racks_built an int; a float that is not whole must not slip through model_construct
    bad = RackDecision.model_construct(**{**plan.racks[0].model_dump(), "racks_built": 1.5})
    messages = verify_plan(scenario, plan.model_copy(update={"racks": [bad]})).violations
    assert any(v.startswith("integrality site-a/rack 2027Q1: racks_built = 1.5") for v in messages)


def test_cvar_by_sorting_takes_the_worst_probability_mass() -> None:
    values = {"low": -10.0, "base": 20.0, "high": 50.0}
    probabilities = {"low": 0.25, "base": 0.5, "high": 0.25}
    assert cvar_by_sorting(values, probabilities, 0.75) == pytest.approx(-10.0)
    # worst half: all of low (0.25) and half of base (0.25) -> (-10 + 20) / 2
    assert cvar_by_sorting(values, probabilities, 0.5) == pytest.approx(5.0)
    assert cvar_by_sorting(values, probabilities, 0.0) == pytest.approx(0.25 * -10 + 0.5 * 20 + 0.25 * 50)


def test_solved_example_passes_verification_and_a_perturbed_copy_does_not(example_scenario_path) -> None:
    from planner.io import load_scenario
    from planner.pipeline import solve_scenario

    scenario = load_scenario(example_scenario_path)
    plan = solve_scenario(scenario)
    assert plan.verification.passed
    first = plan.racks[0]
    bumped = first.model_copy(
        update={"racks_built": first.racks_built + 1000, "racks_installed": first.racks_installed + 1000}
    )
    result = verify_plan(scenario, plan.model_copy(update={"racks": [bumped, *plan.racks[1:]]}))
    assert not result.passed
