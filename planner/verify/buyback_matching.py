"""The plan's buyback against the matching rule (docs/model.md, "Buyback"), recomputed.

The model subtracts a refused tenant's hours at every site it may use; the contract places each
refused hour on one site's unsold hour, once. The plan records both (`Plan.buyback_matching`);
this module recomputes the matching rule from the plan's own decisions with its own max-flow
(augmenting paths over floats, not the planner's LP) and checks every figure of the record.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from planner.schema.plan import Plan
from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.derived import gpus_installed
from planner.verify.figures import check_money
from planner.verify.log import ABS_TOL_QUANTITY, Log, close
from planner.verify.money import Money

NOT_RECORDED_NOTE = (
    "buyback_matching: not recorded (a plan written before the record), so how far its buyback is "
    'from the matching rule (docs/model.md, "Buyback") was not checked; solve the scenario again '
    "to get it"
)
ROUND_OFF = 1e-12
"""Residual capacities below this share of the block's largest are round-off, not room."""


def max_flow(refused: list[float], unsold: list[float], may_use: list[list[bool]]) -> float:
    """The most of `refused` (per tenant) that can be placed on `unsold` (per site), tenant k only
    on sites i with may_use[k][i], each hour once: shortest augmenting paths (Edmonds-Karp, whose
    count of augmentations does not depend on the capacities, so float capacities end)."""
    n_k, n_i = len(refused), len(unsold)
    if not n_k or not n_i:
        return 0.0
    eps = ROUND_OFF * max(1.0, *refused, *unsold)
    flow = [[0.0] * n_i for _ in range(n_k)]
    left = list(refused)  # source -> tenant residuals
    room = list(unsold)  # site -> sink residuals
    total = 0.0
    while True:
        # BFS from the source over tenants with hours left; a tenant reaches every site it may use,
        # a site reaches back every tenant with flow on it.
        came_to_site: list[int | None] = [None] * n_i
        came_to_tenant: list[int | None] = [None] * n_k
        queue = deque(k for k in range(n_k) if left[k] > eps)
        start = [left[k] > eps for k in range(n_k)]
        end = None
        while queue and end is None:
            k = queue.popleft()
            for i in range(n_i):
                if may_use[k][i] and came_to_site[i] is None:
                    came_to_site[i] = k
                    if room[i] > eps:
                        end = i
                        break
                    for k2 in range(n_k):
                        if flow[k2][i] > eps and not start[k2] and came_to_tenant[k2] is None:
                            came_to_tenant[k2] = i
                            queue.append(k2)
        if end is None:
            return total
        # Walk back to a start tenant: path[j] = (tenant, site) is a placement added; between
        # path[j] and path[j + 1], tenant path[j][0] was reached by taking its hours off site
        # path[j + 1][1] (a placement undone).
        path: list[tuple[int, int]] = []
        site: int | None = end
        while site is not None:
            tenant = came_to_site[site]
            if tenant is None:  # pragma: no cover - every site the search reached has a tenant
                raise AssertionError("augmenting path broken")
            path.append((tenant, site))
            site = came_to_tenant[tenant]
        first = path[-1][0]
        undone = [(path[j][0], path[j + 1][1]) for j in range(len(path) - 1)]
        amount = min(left[first], room[end], *(flow[k][i] for k, i in undone))
        for k, i in path:
            flow[k][i] += amount
        for k, i in undone:
            flow[k][i] -= amount
        left[first] -= amount
        room[end] -= amount
        total += amount


def matching_buyback_gpu_hours(
    scenario: Scenario,
    data: ScenarioArrays,
    installed: np.ndarray,
    pool_served: np.ndarray,
    unserved: np.ndarray,
) -> np.ndarray:
    """[T, S] buyback GPU-hours under the matching rule: buyback_share x (Σ_i unsold_i - M*),
    unsold_i = h x GPUs installed - served at i, M* the refused hours matched once (`max_flow`)."""
    site_capacity = data.h * gpus_installed(data, installed).sum(axis=1)  # [I, T]
    unsold = np.maximum(0.0, site_capacity[..., None] - pool_served.sum(axis=1))  # [I, T, S]
    n_t, n_s = unsold.shape[1:]
    out = np.zeros((n_t, n_s))
    for t in range(n_t):
        for s in range(n_s):
            tenants = np.flatnonzero(unserved[:, t, s] > 0.0)
            sites = np.flatnonzero(unsold[:, t, s] > 0.0)
            matched = max_flow(
                unserved[tenants, t, s].tolist(),
                unsold[sites, t, s].tolist(),
                data.may_use[np.ix_(tenants, sites)].tolist(),
            )
            out[t, s] = max(0.0, float(unsold[:, t, s].sum()) - matched)
    return scenario.terms.buyback_share * out


def check_buyback_matching(
    scenario: Scenario,
    data: ScenarioArrays,
    plan: Plan,
    money: Money,
    installed: np.ndarray,
    pool_served: np.ndarray,
    unserved: np.ndarray,
    log: Log,
) -> list[str]:
    """Every figure of the plan's `buyback_matching` record, the plan's rule's from `money`, the
    matching rule's recomputed here; returns the notes (a plan without the record)."""
    record = plan.buyback_matching
    if record is None:
        return [NOT_RECORDED_NOTE]
    price = scenario.terms.buyback_price_usd_per_gpu_hour
    plan_usd = money.bb_by_quarter  # [T, S] undiscounted
    matching_gh = matching_buyback_gpu_hours(scenario, data, installed, pool_served, unserved)
    matching_usd = price * matching_gh
    p, d = data.prob, data.discount

    quarters = [q.period for q in record.quarters]
    if not log.ok(quarters == data.labels):
        log.say(
            f"buyback_matching quarters: the plan lists {quarters}, the scenario's quarters are {data.labels}"
        )
    for q in record.quarters:
        t = data.t_of.get(q.period)
        if t is None:
            continue
        where = f"buyback_matching {q.period}"
        for name, got, want in (
            (
                "expected_buyback_gpu_hours",
                q.expected_buyback_gpu_hours,
                money.site_buyback_gpu_hours[:, t].sum(),
            ),
            (
                "matching_expected_buyback_gpu_hours",
                q.matching_expected_buyback_gpu_hours,
                matching_gh[t] @ p,
            ),
        ):
            if not log.ok(close(got, float(want), ABS_TOL_QUANTITY)):
                log.say(f"{where} {name}: the plan reports {got:,.3f}, recomputed {float(want):,.3f}")
        check_money(log, f"{where} expected_buyback_usd", q.expected_buyback_usd, float(plan_usd[t] @ p))
        check_money(
            log,
            f"{where} matching_expected_buyback_usd",
            q.matching_expected_buyback_usd,
            float(matching_usd[t] @ p),
        )

    cases = [row.scenario for row in record.scenarios]
    if not log.ok(cases == data.cases):
        log.say(f"buyback_matching scenarios: the plan lists {cases}, the scenario file {data.cases}")
    for row in record.scenarios:
        j = data.cases.index(row.scenario) if row.scenario in data.cases else None
        if j is None:
            continue
        where = f"buyback_matching [{row.scenario}]"
        for name, got, want in (
            ("buyback_usd", row.buyback_usd, plan_usd[:, j].sum()),
            ("buyback_discounted_usd", row.buyback_discounted_usd, d @ plan_usd[:, j]),
            ("matching_buyback_usd", row.matching_buyback_usd, matching_usd[:, j].sum()),
            ("matching_buyback_discounted_usd", row.matching_buyback_discounted_usd, d @ matching_usd[:, j]),
        ):
            check_money(log, f"{where} {name}", got, float(want))

    plan_disc = float(d @ plan_usd @ p)
    matching_disc = float(d @ matching_usd @ p)
    for name, got, want in (
        ("expected_buyback_usd", record.expected_buyback_usd, plan_usd.sum(axis=0) @ p),
        ("expected_buyback_discounted_usd", record.expected_buyback_discounted_usd, plan_disc),
        ("matching_expected_buyback_usd", record.matching_expected_buyback_usd, matching_usd.sum(axis=0) @ p),
        (
            "matching_expected_buyback_discounted_usd",
            record.matching_expected_buyback_discounted_usd,
            matching_disc,
        ),
        (
            "cloud_expected_value_change_usd",
            record.cloud_expected_value_change_usd,
            matching_disc - plan_disc,
        ),
        (
            "guarantor_expected_value_change_usd",
            record.guarantor_expected_value_change_usd,
            plan_disc - matching_disc,
        ),
    ):
        check_money(log, f"buyback_matching {name}", got, float(want))
    return []
