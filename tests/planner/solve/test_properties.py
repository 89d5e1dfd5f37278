"""Property: every plan the pipeline returns passes the independent verifier (random small cases)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.scenarios import synthetic_scenario
from planner.pipeline import solve_scenario


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sites=st.integers(1, 3),
    rack_types=st.integers(1, 2),
    quarters=st.integers(1, 6),
    tenants=st.integers(1, 4),
    scenarios=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    perspective=st.sampled_from(["cloud", "guarantor", "syndicate"]),
    cvar_weight=st.sampled_from([0.0, 0.5]),
    interface=st.sampled_from(["direct", "appsi"]),
)
def test_every_returned_plan_passes_the_verifier(
    sites, rack_types, quarters, tenants, scenarios, seed, perspective, cvar_weight, interface
):
    scenario = synthetic_scenario(sites, rack_types, quarters, tenants, scenarios, seed=seed)
    objective = scenario.objective.model_copy(update={"perspective": perspective, "cvar_weight": cvar_weight})
    solver = scenario.solver.model_copy(update={"time_limit_s": 10.0, "mip_rel_gap": 0.01})
    scenario = scenario.model_copy(update={"objective": objective, "solver": solver})
    plan = solve_scenario(scenario, interface=interface)
    assert plan.verification.passed, plan.verification.violations
    assert plan.verification.objective_recomputed_usd == pytest.approx(
        plan.solver.objective_usd, rel=1e-6, abs=1.0
    )
