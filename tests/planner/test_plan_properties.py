"""Property: every plan the solver pipeline returns for a random small scenario passes the
independent verifier, and its objective is the one the verifier recomputes.

Scenarios: 1-2 sites, 1-2 rack types, 2-4 quarters, 1-3 tenants, 1-3 scenarios, random
jurisdictions, deal terms, perspectives and CVaR settings.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.files import parse_scenario
from planner.schema.scenario import Scenario
from planner.verify import verify_plan

pipeline = pytest.importorskip("planner.pipeline")

JURISDICTIONS = ["AU", "ID"]
money = st.floats(0.0, 1.0).map(lambda x: round(x, 3))


@st.composite
def small_scenarios(draw: st.DrawFn) -> Scenario:
    n_sites = draw(st.integers(1, 2))
    n_racks = draw(st.integers(1, 2))
    n_t = draw(st.integers(2, 4))
    n_k = draw(st.integers(1, 3))
    n_s = draw(st.integers(1, 3))
    cases = [f"case-{j}" for j in range(n_s)]
    weights = draw(st.lists(st.integers(1, 4), min_size=n_s, max_size=n_s))
    probabilities = [w / sum(weights) for w in weights]
    probabilities[-1] = 1.0 - sum(probabilities[:-1])
    sites = []
    for j in range(n_sites):
        block = draw(st.sampled_from([0.5, 1.0, 2.0]))
        sites.append(
            {
                "id": f"site-{j}",
                "jurisdiction": JURISDICTIONS[j],
                "power_cap_mw": block * draw(st.integers(1, 6)),
                "existing_mw": block * draw(st.integers(0, 1)),
                "power_block_mw": block,
                "power_lead_time_periods": draw(st.integers(0, 1)),
                "power_price_usd_per_mwh": draw(st.sampled_from([0.0, 60.0, 120.0])),
                "pue": draw(st.sampled_from([1.0, 1.2])),
                "gpu_cap": draw(st.sampled_from([200, 1000])),
                "max_racks_built_per_period": draw(st.integers(0, 6)),
                "max_power_blocks_per_period": draw(st.integers(0, 2)),
                "power_capex_usd_per_mw": draw(st.sampled_from([0.0, 1e6])),
            }
        )
    racks = [
        {
            "id": f"rack-{j}",
            "gpu_product": "NVIDIA-TEST",
            "gpus_per_rack": gpus,
            "nodes_per_rack": gpus // 4,
            "kw_per_rack": draw(st.sampled_from([40.0, 100.0, 135.0])),
            "capex_usd": draw(st.sampled_from([200_000.0, 1_000_000.0, 3_000_000.0])),
            "lifetime_periods": draw(st.integers(1, 8)),
            "opex_usd_per_rack_period": draw(st.sampled_from([0.0, 10_000.0])),
        }
        for j, gpus in enumerate(
            draw(st.lists(st.sampled_from([8, 32, 72]), min_size=n_racks, max_size=n_racks))
        )
    ]
    jurisdictions = JURISDICTIONS[:n_sites]
    tenants = [
        {
            "id": f"tenant-{j}",
            "price_usd_per_gpu_hour": draw(st.sampled_from([1.5, 3.0, 6.0])),
            "allowed_jurisdictions": draw(st.sampled_from([None, *[[x] for x in jurisdictions]])),
            "demand_gpus": {c: [float(draw(st.integers(0, 300))) for _ in range(n_t)] for c in cases},
            "token_credit_share": draw(st.sampled_from([0.0, 0.5])),
            "credit_repayment_share": draw(st.sampled_from([0.5, 1.0])),
        }
        for j in range(n_k)
    ]
    alpha = draw(st.sampled_from([None, 0.5, 0.8]))
    data: dict[str, Any] = {
        "name": "random",
        "periods": {
            "start_quarter": "2027Q1",
            "count_quarters": n_t,
            "discount_rate_annual": draw(st.sampled_from([0.0, 0.1])),
        },
        "sites": sites,
        "rack_types": racks,
        "tenants": tenants,
        "scenarios": [{"id": c, "probability": p} for c, p in zip(cases, probabilities, strict=True)],
        "terms": {
            "buyback_price_usd_per_gpu_hour": draw(st.sampled_from([0.0, 1.0, 2.5])),
            "buyback_share": draw(money),
            "revenue_share": draw(st.sampled_from([0.0, 0.1])),
            "guarantor_hardware_margin": draw(st.sampled_from([0.0, 0.2])),
        },
        "objective": {
            "perspective": draw(st.sampled_from(["cloud", "guarantor", "syndicate"])),
            "cvar_alpha": alpha,
            "cvar_weight": 0.0 if alpha is None else draw(st.sampled_from([0.0, 0.5, 1.0])),
        },
        "solver": {"time_limit_s": 10.0, "mip_rel_gap": 0.01},
    }
    return parse_scenario(data, "random.yaml")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=small_scenarios())
def test_every_solved_plan_passes_the_independent_verifier(scenario: Scenario) -> None:
    plan = pipeline.solve_scenario(scenario)
    result = verify_plan(scenario, plan)
    assert result.violations == []
    assert plan.verification.passed
    assert result.objective_recomputed_usd == pytest.approx(plan.solver.objective_usd, rel=1e-6, abs=1.0)


def test_scenario_without_any_demand_solves_to_a_verified_plan_that_builds_nothing() -> None:
    """Found by the property above: with no demand at all the served index set is empty."""
    data = {
        "name": "idle",
        "periods": {"start_quarter": "2027Q1", "count_quarters": 2, "discount_rate_annual": 0.0},
        "sites": [
            {
                "id": "site-0",
                "jurisdiction": "AU",
                "power_cap_mw": 1.0,
                "power_block_mw": 0.5,
                "power_lead_time_periods": 0,
                "power_price_usd_per_mwh": 0.0,
                "pue": 1.0,
                "gpu_cap": 200,
                "max_racks_built_per_period": 2,
                "max_power_blocks_per_period": 1,
                "power_capex_usd_per_mw": 0.0,
            }
        ],
        "rack_types": [
            {
                "id": "rack-0",
                "gpu_product": "NVIDIA-TEST",
                "gpus_per_rack": 8,
                "nodes_per_rack": 2,
                "kw_per_rack": 40.0,
                "capex_usd": 200_000.0,
                "lifetime_periods": 1,
            }
        ],
        "tenants": [{"id": "tenant-0", "price_usd_per_gpu_hour": 1.5, "demand_gpus": {"case-0": [0.0, 0.0]}}],
        "scenarios": [{"id": "case-0", "probability": 1.0}],
        "terms": {
            "buyback_price_usd_per_gpu_hour": 0.0,
            "buyback_share": 0.0,
            "revenue_share": 0.0,
            "guarantor_hardware_margin": 0.0,
        },
    }
    scenario = parse_scenario(data, "idle.yaml")
    plan = pipeline.solve_scenario(scenario)
    assert verify_plan(scenario, plan).violations == []
    assert all(r.racks_built == 0 for r in plan.racks)
    assert plan.solver.objective_usd == pytest.approx(0.0, abs=1.0)
