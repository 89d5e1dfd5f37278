"""A site that may hold no rack type: a file saying so is refused (planner.schema.consistency,
tests/dsx/test_bad_inputs.py), but `build_model` takes any `Scenario`, and its per-site rows over
no rack type were constants that Pyomo refused with a traceback (`gpu_cap[batam,0]`)."""

from __future__ import annotations

import copy

from planner.pipeline import solve_scenario
from planner.schema.scenario import Scenario
from tests.planner.small_scenarios import BASE


def _with_sites(*rack_types: list[str] | None, exposure_cap_usd: float | None = None) -> Scenario:
    """The tiny case with one site per entry, each allowing those rack types; validated field by
    field only (no cross-field check: a library caller's `Scenario`)."""
    data = copy.deepcopy(BASE)
    site = data["sites"][0]
    data["sites"] = [dict(site, id=f"site{n}", rack_types=allowed) for n, allowed in enumerate(rack_types)]
    if exposure_cap_usd is not None:
        data["participation"] = {"guarantor": {"max_buyback_exposure_usd_per_period": exposure_cap_usd}}
    return Scenario.model_validate(data)


def test_a_site_that_may_hold_no_rack_type_builds_nothing_and_the_plan_verifies():
    plan = solve_scenario(_with_sites(None, []))
    assert plan.verification.passed, plan.verification.violations
    assert {r.site for r in plan.racks} == {"site0"}  # 55 GPUs wanted: 6 racks, all at site0


def test_with_no_site_holding_a_rack_type_the_plan_builds_nothing_and_verifies():
    # The buyback exposure rows sum over every site's rack types: constants too.
    plan = solve_scenario(_with_sites([], [], exposure_cap_usd=1_000_000))
    assert plan.verification.passed, plan.verification.violations
    assert plan.racks == []
