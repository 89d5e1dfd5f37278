"""Demand a plan refuses although the tenant's quota had room for it.

A quota is what the operator lets a tenant run on a pool (a Kueue ClusterQueue's nominal quota
and a ResourceQuota), and the quotas of a pool never exceed its GPUs (`quota_fits`): a tenant
with demand under its quota gets its jobs admitted, whatever the plan says. The model chooses
serving for the perspective's value under the participation requirements, so a plan may count on
refusing such hours: to keep the guarantor's expected value at its floor when a tenant's credits
lose the guarantor money, or because the perspective's value gains nothing from them. Its figures
then assume less served than the site will run. A quota set low is different: the operator
enforces it, so both parties can sign it. Pure functions on a plan.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from planner.schema.plan import Plan

REFUSAL_TOLERANCE_GPU_HOURS = 1e-3
"""Refusals at or under this (per tenant, quarter and scenario) are solver noise, as in the
verifier's GPU-hour checks."""


@dataclass(frozen=True)
class RefusalWithinQuota:
    tenant: str
    period: str
    scenario: str
    gpu_hours: float
    """Refused GPU-hours the tenant's quotas had room for: min(unserved, that room)."""


def refusals_within_quota(plan: Plan) -> list[RefusalWithinQuota]:
    """Every (tenant, quarter, scenario) whose refused demand the plan's own quotas had room for,
    in the plan's order of unserved records."""
    h = plan.hours_per_period
    quotas_gpus: dict[tuple[str, str], list[tuple[str, str, float]]] = defaultdict(list)
    for q in plan.quotas:
        quotas_gpus[q.tenant, q.period].append((q.site, q.rack_type, q.quota_gpus))
    served: dict[tuple[str, str, str, str, str], float] = defaultdict(float)
    for r in plan.served:
        served[r.tenant, r.site, r.rack_type, r.period, r.scenario] += r.served_gpu_hours
    found = []
    for u in plan.unserved:
        if u.unserved_gpu_hours <= REFUSAL_TOLERANCE_GPU_HOURS:
            continue
        room_gpu_hours = sum(
            max(0.0, h * quota - served[u.tenant, site, rack_type, u.period, u.scenario])
            for site, rack_type, quota in quotas_gpus[u.tenant, u.period]
        )
        refused = min(u.unserved_gpu_hours, room_gpu_hours)
        if refused > REFUSAL_TOLERANCE_GPU_HOURS:
            found.append(RefusalWithinQuota(u.tenant, u.period, u.scenario, refused))
    return found


def expected_refused_gpu_hours(plan: Plan, refusals: list[RefusalWithinQuota]) -> float:
    """The refusals' GPU-hours weighted by their scenarios' probabilities."""
    return sum(plan.scenario_probabilities[r.scenario] * r.gpu_hours for r in refusals)
