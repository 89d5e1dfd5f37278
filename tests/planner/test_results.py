"""The report reads the solver's served GPU-hours as decisions: round-off is not a decision."""

from __future__ import annotations

import itertools

import pytest

from bench.scenarios import synthetic_scenario
from planner.model.build import build_model
from planner.results import GPU_HOURS_NOISE, build_plan
from planner.solve.interfaces import solve_model


def test_unset_negative_and_noise_served_hours_are_reported_as_nothing_served() -> None:
    # Most pools serve nothing in most scenarios (60 of this case's 96 served variables are 0 at
    # its optimum). A solver's round-off there (a hair below zero, or above it within the
    # noise), or a variable no solver set, must leave every figure of the plan as it was.
    scenario = synthetic_scenario(2, 2, 4, 2, 3, seed=0)
    m = build_model(scenario)
    outcome = solve_model(m, scenario.solver, "direct")
    assert outcome.status == "Optimal"
    clean = build_plan(scenario, m, outcome, build_s=0.0)
    assert clean.served, "the case serves something, or the test proves nothing"
    zeros = [v for v in m.served_gpu_hours.values() if not v.value]
    assert zeros, "the case has pools serving nothing"
    for var, value in zip(zeros, itertools.cycle([None, -1e-7, 0.5 * GPU_HOURS_NOISE, GPU_HOURS_NOISE])):
        var.set_value(value, skip_validation=True)
    noisy = build_plan(scenario, m, outcome, build_s=0.0)
    assert noisy.served == clean.served
    assert noisy.unserved == clean.unserved
    assert noisy.outcomes == clean.outcomes
    assert noisy.quotas == clean.quotas
    # Just above the noise it is served, and reported.
    zeros[0].set_value(2 * GPU_HOURS_NOISE, skip_validation=True)
    served = build_plan(scenario, m, outcome, build_s=0.0).served
    assert len(served) == len(clean.served) + 1
    assert [r.served_gpu_hours for r in served if r not in clean.served] == [
        pytest.approx(2 * GPU_HOURS_NOISE)
    ]


def test_each_scenario_s_credit_loss_and_rent_are_the_sums_over_its_served_records() -> None:
    # The report multiplies by per-tenant factors taken once (`_build_plan`): per record, written
    # out here, they must give the same sums. Credit as a deal would give it: a share of the
    # rent advanced, repaid in part, by a scenario's own share in one of them; each tenant on
    # its own terms, so a factor taken for the wrong tenant or scenario shows.
    base = synthetic_scenario(2, 2, 4, 2, 3, seed=0)
    first = base.scenarios[0].id
    credited = [
        k.model_copy(
            update={
                "token_credit_share": 0.3 + 0.2 * n,
                "credit_repayment_share": 0.6 - 0.3 * n,
                "credit_repayment_share_by_scenario": {first: 0.2 + 0.5 * n},
            }
        )
        for n, k in enumerate(base.tenants)
    ]
    scenario = base.model_copy(update={"tenants": credited})
    m = build_model(scenario)
    outcome = solve_model(m, scenario.solver, "direct")
    plan = build_plan(scenario, m, outcome, build_s=0.0)
    tenant = {k.id: k for k in scenario.tenants}
    for o in plan.outcomes:
        records = [r for r in plan.served if r.scenario == o.scenario]
        assert records, "every scenario serves something here"
        rent = sum(tenant[r.tenant].price_usd_per_gpu_hour * r.served_gpu_hours for r in records)
        lost = sum(
            tenant[r.tenant].token_credit_share
            * (1 - tenant[r.tenant].repayment_share(r.scenario))
            * tenant[r.tenant].price_usd_per_gpu_hour
            * r.served_gpu_hours
            for r in records
        )
        assert o.rental_revenue_usd == pytest.approx(rent, rel=1e-12)
        assert o.credit_loss_usd == pytest.approx(lost, rel=1e-12)
        assert lost > 0, "the case's tenants take credit, or the check proves nothing"
