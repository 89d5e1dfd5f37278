"""Properties of the verifier on random tiny plans built feasible by construction.

Decisions are drawn first (racks within the build rate, quotas within the pools, serving within
quotas and demand), then the scenario is fitted around them (enough existing power and blocks,
caps above what was built), so every generated plan is feasible. Such a plan must pass with its
own objective; changing any one decision beyond tolerance must be caught.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.files import parse_scenario
from planner.schema.plan import Plan, ServedRecord
from planner.schema.scenario import Scenario
from planner.verify import verify_plan
from tests.planner.plan_factory import make_plan

H = 2190.0
JURISDICTIONS = ["AU", "ID"]


@dataclass
class Case:
    scenario: Scenario
    plan: Plan


def _labels(quarters: int) -> list[str]:
    return [f"2027Q{t + 1}" if t < 4 else f"2028Q{t - 3}" for t in range(quarters)]


@st.composite
def feasible_cases(draw: st.DrawFn) -> Case:
    n_sites = draw(st.integers(1, 2))
    n_racks = draw(st.integers(1, 2))
    n_t = draw(st.integers(1, 3))
    n_k = draw(st.integers(1, 2))
    n_s = draw(st.integers(1, 2))
    labels = _labels(n_t)
    sites = [f"site-{j}" for j in range(n_sites)]
    racks = [f"rack-{j}" for j in range(n_racks)]
    tenants = [f"tenant-{j}" for j in range(n_k)]
    cases = [f"case-{j}" for j in range(n_s)]
    gpus = {r: draw(st.sampled_from([4, 8, 72])) for r in racks}
    kw = {r: draw(st.floats(20.0, 150.0)) for r in racks}
    lifetime = {r: draw(st.integers(1, 4)) for r in racks}
    pue = {i: draw(st.floats(1.0, 1.5)) for i in sites}
    lead = {i: draw(st.integers(0, 1)) for i in sites}
    block = {i: draw(st.sampled_from([0.1, 0.5, 1.0])) for i in sites}
    allowed_j = {k: draw(st.sampled_from([None, ["AU"], ["ID"], ["AU", "ID"]])) for k in tenants}
    if n_sites == 1:
        allowed_j = {k: (None if j is None else ["AU"]) for k, j in allowed_j.items()}
    jurisdiction = {i: JURISDICTIONS[n] for n, i in enumerate(sites)}

    built = {(i, r, q): draw(st.integers(0, 3)) for i in sites for r in racks for q in labels}
    installed = {}
    for i in sites:
        for r in racks:
            for t, q in enumerate(labels):
                window = labels[max(0, t - lifetime[r] + 1) : t + 1]
                installed[i, r, q] = sum(built[i, r, w] for w in window)
    load = {
        (i, q): sum(installed[i, r, q] * kw[r] / 1000 * pue[i] for r in racks) for i in sites for q in labels
    }

    # Power: existing MW covers the quarters before the first block can arrive; blocks cover the rest.
    existing_mw, blocks = {}, {}
    for i in sites:
        early = [load[i, q] for t, q in enumerate(labels) if t < lead[i]]
        existing_mw[i] = round(max([0.0, *early]) + draw(st.floats(0.01, 0.5)), 3)
        arrived = 0
        for t, q in enumerate(labels):
            if t >= lead[i]:
                need = max(0, math.ceil((load[i, q] - existing_mw[i]) / block[i] - 1e-9))
                order = max(0, need - arrived)
                blocks[i, labels[t - lead[i]]] = order
                arrived += order
        for q in labels:
            blocks.setdefault((i, q), 0)

    demand = {(k, s): [draw(st.floats(0.0, 200.0)) for _ in labels] for k in tenants for s in cases}
    # One-quarter contract terms: a quota may fall into quarter t by at most the fall of the
    # tenant's peak demand. Drawn from the last quarter back, so every quota fits its share.
    peak = {(k, t): max(demand[k, s][t] for s in cases) for k in tenants for t in range(n_t)}
    quotas: dict[tuple[str, str, str, str], float] = {}
    for i in sites:
        users = [k for k in tenants if allowed_j[k] is None or jurisdiction[i] in allowed_j[k]]
        for r in racks:
            for k in users:
                for t in reversed(range(n_t)):
                    share = draw(st.floats(0.0, 1.0))
                    q = gpus[r] * installed[i, r, labels[t]] * share / len(users)
                    if t + 1 < n_t:
                        may_fall = max(0.0, peak[k, t] - peak[k, t + 1])
                        q = min(q, quotas[k, i, r, labels[t + 1]] + may_fall)
                    quotas[k, i, r, labels[t]] = q
    served: dict[tuple[str, str, str, str, str], float] = {}
    for s in cases:
        for k in tenants:
            for t, q in enumerate(labels):
                left = H * demand[k, s][t]
                for (kk, i, r, qq), quota in quotas.items():
                    if (kk, qq) == (k, q):
                        x = min(left, H * quota) * draw(st.floats(0.0, 1.0))
                        if x > 0:
                            served[s, k, i, r, q] = x
                            left -= x

    probabilities = draw(
        st.lists(st.integers(1, 4), min_size=n_s, max_size=n_s).map(lambda w: [x / sum(w) for x in w])
    )
    probabilities[-1] = 1.0 - sum(probabilities[:-1])
    alpha = draw(st.sampled_from([None, 0.0, 0.5, 0.9]))
    data: dict[str, Any] = {
        "name": "random",
        "periods": {
            "start_quarter": "2027Q1",
            "count_quarters": n_t,
            "discount_rate_annual": draw(st.floats(0.0, 0.2)),
        },
        "sites": [
            {
                "id": i,
                "jurisdiction": jurisdiction[i],
                "power_cap_mw": existing_mw[i] + block[i] * sum(blocks[i, q] for q in labels) + 1.0,
                "existing_mw": existing_mw[i],
                "power_block_mw": block[i],
                "power_lead_time_periods": lead[i],
                "power_price_usd_per_mwh": draw(st.floats(0.0, 150.0)),
                "pue": pue[i],
                "gpu_cap": 10_000,
                "max_racks_built_per_period": 3 * n_racks,
                "max_power_blocks_per_period": max([1, *(blocks[i, q] for q in labels)]),
                "power_capex_usd_per_mw": draw(st.floats(0.0, 2e6)),
                "power_asset_lifetime_periods": draw(st.integers(1, 60)),
            }
            for i in sites
        ],
        "rack_types": [
            {
                "id": r,
                "gpu_product": "NVIDIA-TEST",
                "gpus_per_rack": gpus[r],
                "nodes_per_rack": gpus[r] // 4,
                "kw_per_rack": kw[r],
                "capex_usd": draw(st.floats(0.0, 4e6)),
                "lifetime_periods": lifetime[r],
                "opex_usd_per_rack_period": draw(st.floats(0.0, 2e4)),
            }
            for r in racks
        ],
        "tenants": [
            {
                "id": k,
                "price_usd_per_gpu_hour": draw(st.floats(0.5, 10.0)),
                "allowed_jurisdictions": allowed_j[k],
                "demand_gpus": {s: demand[k, s] for s in cases},
                "token_credit_share": draw(st.floats(0.0, 1.0)),
                "credit_repayment_share": draw(st.floats(0.0, 1.0)),
            }
            for k in tenants
        ],
        "scenarios": [{"id": s, "probability": p} for s, p in zip(cases, probabilities, strict=True)],
        "terms": {
            "buyback_price_usd_per_gpu_hour": draw(st.floats(0.0, 3.0)),
            "buyback_share": draw(st.floats(0.0, 1.0)),
            "revenue_share": draw(st.floats(0.0, 0.3)),
            "guarantor_hardware_margin": draw(st.floats(0.0, 0.3)),
        },
        "objective": {
            "perspective": draw(st.sampled_from(["cloud", "guarantor", "syndicate"])),
            "cvar_alpha": alpha,
            "cvar_weight": 0.0 if alpha is None else draw(st.sampled_from([0.0, 0.3, 1.0])),
        },
        # Random plans: no party's requirement and quotas drawn per quarter (one-quarter terms).
        "participation": {
            "cloud": {"min_expected_value_usd": None},
            "guarantor": {"min_expected_value_usd": None},
        },
        "contracts": {"quota_term_periods": 1},
    }
    scenario = parse_scenario(data, "random.yaml")
    plan = make_plan(scenario, racks_built=built, blocks_ordered=blocks, quotas=quotas, served=served)
    return Case(scenario, plan)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(case=feasible_cases())
def test_feasible_plans_pass_with_their_own_objective(case: Case) -> None:
    result = verify_plan(case.scenario, case.plan)
    assert result.violations == []
    assert result.objective_recomputed_usd == pytest.approx(case.plan.solver.objective_usd, rel=1e-6, abs=1.0)


def _perturb(case: Case, kind: str, pick: int, size: float) -> Plan:
    """Change exactly one decision record beyond tolerance, leaving every reported figure as it was."""
    plan = case.plan
    if kind == "racks_built":
        n = pick % len(plan.racks)
        rec = plan.racks[n]
        step = max(1, round(size))
        racks = list(plan.racks)
        racks[n] = rec.model_copy(update={"racks_built": rec.racks_built + step})
        return plan.model_copy(update={"racks": racks})
    if kind == "blocks_ordered":
        n = pick % len(plan.power)
        power = list(plan.power)
        power[n] = power[n].model_copy(
            update={"blocks_ordered": power[n].blocks_ordered + max(1, round(size))}
        )
        return plan.model_copy(update={"power": power})
    if kind == "quota":
        # Overcommit one pool: this tenant's quota becomes the pool's free room plus `size` GPUs.
        n = pick % len(plan.quotas)
        q = plan.quotas[n]
        pool = next(
            r.gpus_installed
            for r in plan.racks
            if (r.site, r.rack_type, r.period) == (q.site, q.rack_type, q.period)
        )
        others = sum(
            o.quota_gpus
            for o in plan.quotas
            if (o.site, o.rack_type, o.period) == (q.site, q.rack_type, q.period) and o is not q
        )
        quotas = list(plan.quotas)
        quotas[n] = q.model_copy(update={"quota_gpus": pool - others + max(0.01, size)})
        return plan.model_copy(update={"quotas": quotas})
    if kind == "served" and plan.served:
        n = pick % len(plan.served)
        rec = plan.served[n]
        delta = max(1.0, 1e-5 * rec.served_gpu_hours) * max(1.0, size)
        served = list(plan.served)
        served[n] = rec.model_copy(update={"served_gpu_hours": rec.served_gpu_hours + delta})
        return plan.model_copy(update={"served": served})
    # New served record where there was none, or more unserved demand.
    if kind == "new_served":
        q = plan.quotas[pick % len(plan.quotas)] if plan.quotas else None
        if q is not None:
            key = (q.tenant, q.site, q.rack_type, q.period)
            taken = {(r.tenant, r.site, r.rack_type, r.period, r.scenario) for r in plan.served}
            case_id = case.scenario.scenarios[pick % len(case.scenario.scenarios)].id
            if (*key, case_id) not in taken:
                extra = ServedRecord(
                    scenario=case_id,
                    tenant=q.tenant,
                    site=q.site,
                    rack_type=q.rack_type,
                    period=q.period,
                    served_gpu_hours=max(1.0, size),
                )
                return plan.model_copy(update={"served": [*plan.served, extra]})
    unserved = plan.unserved
    if unserved:
        n = pick % len(unserved)
        rec = unserved[n]
        delta = max(1.0, 1e-5 * rec.unserved_gpu_hours) * max(1.0, size)
        changed = list(unserved)
        changed[n] = rec.model_copy(update={"unserved_gpu_hours": rec.unserved_gpu_hours - delta})
        return plan.model_copy(update={"unserved": changed})
    rec = plan.racks[pick % len(plan.racks)]
    return plan.model_copy(
        update={
            "racks": [
                r if r is not rec else rec.model_copy(update={"racks_built": rec.racks_built + 1})
                for r in plan.racks
            ]
        }
    )


@SETTINGS
@given(
    case=feasible_cases(),
    kind=st.sampled_from(["racks_built", "blocks_ordered", "quota", "served", "new_served", "unserved"]),
    pick=st.integers(0, 1000),
    size=st.floats(0.01, 50.0),
)
def test_changing_one_decision_beyond_tolerance_is_caught(
    case: Case, kind: str, pick: int, size: float
) -> None:
    if kind == "quota" and not case.plan.quotas:
        kind = "racks_built"
    perturbed = _perturb(case, kind, pick, size)
    result = verify_plan(case.scenario, perturbed)
    assert not result.passed
    assert result.violations
