"""Refusals a plan counts on although the tenant's quota had room and serving paid the cloud."""

from __future__ import annotations

from typing import Any

import pytest

from planner.refusals import expected_refused_gpu_hours, refusals_within_quota
from planner.pipeline import solve_scenario
from planner.schema.scenario import Scenario
from tests.planner.small_scenarios import NO_REQUIREMENTS, H, tiny


def credit_tenant(participation: dict[str, Any] | None) -> Scenario:
    """One quarter, one rack of 10 GPUs (US$100,000), one tenant wanting 10 GPUs at US$10, all of
    it paid in the guarantor's credits, repaid in full ('good', p 0.5) or not at all ('bad', p
    0.5); revenue share 0.1.

    A served GPU-hour nets the cloud 10 x 0.9 = US$9 either way; the guarantor gets US$1 in
    'good' and 1 - 10 = -US$9 in 'bad'. Serving all of both, the guarantor's expected value is
    0.5 x 21,900 - 0.5 x 197,100 = -US$87,600. With the guarantor's requirement (expected value
    >= 0) the cloud's best is to serve all of 'good' (21,900 h) and x of 'bad' with
    0.5 x 21,900 - 4.5 x >= 0, so x = 2,433.3 h: the quota of 10 GPUs had room for the other
    21,900 x 8/9 = 19,466.7 refused hours, which the cloud, paid US$9 for each, would serve.
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


def test_a_plan_that_throttles_a_tenant_within_its_quota_for_the_guarantor_is_found() -> None:
    scenario = credit_tenant(
        {"cloud": {"min_expected_value_usd": 0.0}, "guarantor": {"min_expected_value_usd": 0.0}}
    )
    plan = solve_scenario(scenario)
    assert [q.quota_gpus for q in plan.quotas] == pytest.approx([10.0])
    refusals = refusals_within_quota(plan)
    assert [(r.tenant, r.period, r.scenario) for r in refusals] == [("acme", "2026Q1", "bad")]
    assert refusals[0].gpu_hours == pytest.approx(10 * H * 8 / 9, rel=1e-6)
    assert expected_refused_gpu_hours(plan, refusals) == pytest.approx(0.5 * 10 * H * 8 / 9, rel=1e-6)


def test_a_plan_serving_every_hour_its_quota_allows_has_no_such_refusal() -> None:
    scenario = credit_tenant(None)
    plan = solve_scenario(scenario)
    assert sum(u.unserved_gpu_hours for u in plan.unserved) == pytest.approx(0.0, abs=1e-6)
    assert refusals_within_quota(plan) == []


def test_demand_beyond_a_full_quota_is_not_counted() -> None:
    # The site holds 50 GPUs (gpu_cap) against 55 wanted: 5 GPUs' hours are refused, and the
    # quota (50, all of the site) is used to the last hour.
    scenario = tiny(lambda data: data["sites"][0].update(gpu_cap=50))
    plan = solve_scenario(scenario)
    assert sum(u.unserved_gpu_hours for u in plan.unserved) == pytest.approx(5 * H, rel=1e-6)
    assert refusals_within_quota(plan) == []
