"""Refusals a plan counts on although the tenant's quota had room: the operator admits a tenant's
jobs up to its quota, so such a plan states less than the site runs (`planner.refusals`)."""

from __future__ import annotations

from typing import Any

import pytest

from planner.pipeline import solve_scenario
from planner.refusals import expected_refused_gpu_hours, refusals_within_quota
from planner.schema.scenario import Scenario
from tests.planner.plan_factory import make_plan
from tests.planner.small_scenarios import NO_REQUIREMENTS, H, tiny


def credit_tenant(participation: dict[str, Any] | None) -> Scenario:
    """One quarter, racks of 10 GPUs (US$100,000), one tenant wanting 10 GPUs at US$10 in each of
    two scenarios, all of it paid in the guarantor's credits, repaid in full ('good', p 0.5) or
    not at all ('bad', p 0.5); revenue share 0.1.

    A served GPU-hour nets the cloud 10 x 0.9 = US$9 either way; the guarantor gets US$1 in
    'good' and 1 - 10 = -US$9 in 'bad'. With a quota of Q GPUs served in full in both (the
    operator admits the tenant's jobs up to it), the guarantor's expected value is
    0.5 x 2190 Q - 0.5 x 9 x 2190 Q = -8,760 Q: below its floor of 0 for any Q > 0. The model,
    free to refuse within the quota, keeps the guarantor at 0 instead (`throttled_plan`); without
    the requirement: one rack, quota 10, everything served, the cloud makes 21,900 x 9 - 100,000
    = US$97,100.
    """

    def change(data: dict[str, Any]) -> None:
        data["tenants"][0].update(
            demand_gpus={"good": [10.0], "bad": [10.0]},
            token_credit_share=1.0,
            credit_repayment_share=1.0,
            credit_repayment_share_by_scenario={"bad": 0.0},
        )
        data["scenarios"] = [{"id": "good", "probability": 0.5}, {"id": "bad", "probability": 0.5}]
        data["terms"]["revenue_share"] = 0.1
        data["participation"] = NO_REQUIREMENTS if participation is None else participation

    return tiny(change)


GUARANTOR_FLOOR = {"cloud": {"min_expected_value_usd": 0.0}, "guarantor": {"min_expected_value_usd": 0.0}}


def throttled_plan():
    """The plan a model free to refuse within quota chose for `credit_tenant(GUARANTOR_FLOOR)`:
    all of 'good' (21,900 h) and x of 'bad' with 0.5 x 21,900 - 4.5 x = 0, x = 2,433.3 h,
    keeping the guarantor at 0 and the cloud at 4.5 x 24,333.3 - 100,000 = US$9,500."""
    scenario = credit_tenant(GUARANTOR_FLOOR)
    return scenario, make_plan(
        scenario,
        racks_built={("alpha", "rack10", "2026Q1"): 1},
        quotas={("acme", "alpha", "rack10", "2026Q1"): 10.0},
        served={
            ("good", "acme", "alpha", "rack10", "2026Q1"): 10 * H,
            ("bad", "acme", "alpha", "rack10", "2026Q1"): 10 * H / 9,
        },
    )


def test_refusals_a_quota_had_room_for_are_found_in_a_plan():
    _, plan = throttled_plan()
    refusals = refusals_within_quota(plan)
    assert [(r.tenant, r.period, r.scenario) for r in refusals] == [("acme", "2026Q1", "bad")]
    assert refusals[0].gpu_hours == pytest.approx(10 * H * 8 / 9, rel=1e-9)
    assert expected_refused_gpu_hours(plan, refusals) == pytest.approx(0.5 * 10 * H * 8 / 9, rel=1e-9)


def test_a_plan_that_throttles_a_tenant_within_its_quota_for_the_guarantor_is_found():
    # The model chooses serving for the perspective's value under the requirements: it keeps the
    # guarantor at its floor by refusing 'bad' within the quota (docs/model.md, "Quotas are what
    # tenants run"), exactly the hand plan above.
    plan = solve_scenario(credit_tenant(GUARANTOR_FLOOR))
    assert [q.quota_gpus for q in plan.quotas] == pytest.approx([10.0])
    refusals = refusals_within_quota(plan)
    assert [(r.tenant, r.period, r.scenario) for r in refusals] == [("acme", "2026Q1", "bad")]
    assert refusals[0].gpu_hours == pytest.approx(10 * H * 8 / 9, rel=1e-6)


def test_a_plan_serving_every_hour_its_quota_allows_has_no_such_refusal():
    plan = solve_scenario(credit_tenant(None))
    assert sum(u.unserved_gpu_hours for u in plan.unserved) == pytest.approx(0.0, abs=1e-6)
    assert refusals_within_quota(plan) == []
    cloud = next(f for f in plan.parties if f.party == "cloud")
    assert cloud.expected_value_usd == pytest.approx(97_100.0, rel=1e-6)


def test_demand_beyond_a_full_quota_is_not_counted():
    # The site holds 50 GPUs (gpu_cap) against 55 wanted: 5 GPUs' hours are refused, and the
    # quota (50, all of the site) is used to the last hour.
    plan = solve_scenario(tiny(lambda data: data["sites"][0].update(gpu_cap=50)))
    assert sum(u.unserved_gpu_hours for u in plan.unserved) == pytest.approx(5 * H, rel=1e-6)
    assert refusals_within_quota(plan) == []
