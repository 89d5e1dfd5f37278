"""Every constraint family of docs/model.md, checked on the plan's decisions: first stage (power,
caps, rates, quotas) and second stage (serving within capacity and quota, demand balance)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.decisions import Served
from planner.verify.derived import facility_load_mw, gpus_installed
from planner.verify.log import ABS_TOL_QUANTITY, Log, exceeds, tolerance

Index = tuple[int, ...]


def check_limit(
    log: Log,
    family: str,
    amount: np.ndarray,
    limit: np.ndarray,
    where: Callable[[Index], str],
    says: Callable[[float, float], str],
    unit: str,
    *,
    digits: int = 0,
    excess: str = "excess",
    failed: np.ndarray | None = None,
) -> None:
    """One check per element of `amount ≤ limit` (beyond tolerance; `failed` instead where the
    family's rule says more), `limit` broadcast to the shape of `amount` (a per-site limit as
    [I, 1], say). A violation reads "<family> <where>: <says(amount, limit)> (<excess>
    <amount − limit> <unit>)", the difference shown with `digits` decimals."""
    limit = np.broadcast_to(limit, amount.shape)
    if failed is None:
        failed = exceeds(amount, limit)
    tail = f" {unit}" if unit else ""

    def describe(x: Index) -> str:
        a, b = float(amount[x]), float(limit[x])
        return f"{family} {where(x)}: {says(a, b)} ({excess} {a - b:,.{digits}f}{tail})"

    log.check_array(failed, describe)


def _site_quarter(data: ScenarioArrays) -> Callable[[Index], str]:
    return lambda x: f"{data.sites[x[0]]} {data.labels[x[1]]}"


def _pool_quarter(data: ScenarioArrays) -> Callable[[Index], str]:
    return lambda x: f"{data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]}"


def check_power_fits(data: ScenarioArrays, installed: np.ndarray, available: np.ndarray, log: Log) -> None:
    """Σ_r racks x kW x PUE ≤ available MW: racks cannot run on power that is not energised."""
    check_limit(
        log,
        "power_fits",
        facility_load_mw(data, installed),
        available,
        _site_quarter(data),
        lambda need, mw: f"racks need {need:,.1f} MW but {mw:,.1f} MW is available",
        "MW",
        digits=1,
    )


def check_power_cap(data: ScenarioArrays, available: np.ndarray, log: Log) -> None:
    """available MW ≤ the site's power cap."""
    check_limit(
        log,
        "power_cap",
        available,
        data.cap_mw[:, None],
        _site_quarter(data),
        lambda mw, cap: f"{mw:,.1f} MW energised but the cap is {cap:,.1f} MW",
        "MW",
        digits=1,
    )


def check_gpu_cap(data: ScenarioArrays, installed: np.ndarray, log: Log) -> None:
    """Σ_r GPUs installed ≤ the site's GPU cap."""
    gpus = gpus_installed(data, installed).sum(axis=1)
    check_limit(
        log,
        "gpu_cap",
        gpus,
        data.gpu_cap[:, None],
        _site_quarter(data),
        lambda n, cap: f"{n:,.0f} GPUs installed but the cap is {cap:,.0f}",
        "GPUs",
    )


def check_build_rate(data: ScenarioArrays, built: np.ndarray, log: Log) -> None:
    """Σ_r racks built in a quarter ≤ the site's build rate."""
    per_site = built.sum(axis=1)
    check_limit(
        log,
        "build_rate",
        per_site,
        data.max_built[:, None],
        _site_quarter(data),
        lambda n, most: f"{n:,.0f} racks built but at most {most:,.0f} may be built per quarter",
        "racks",
    )


def check_block_rate(data: ScenarioArrays, blocks: np.ndarray, log: Log) -> None:
    """blocks ordered in a quarter ≤ the site's block rate."""
    check_limit(
        log,
        "block_rate",
        blocks,
        data.max_blocks[:, None],
        _site_quarter(data),
        lambda n, most: f"{n:,.0f} power blocks ordered but at most {most:,.0f} may be ordered per quarter",
        "",
    )


def check_quota_fits(data: ScenarioArrays, quota: np.ndarray, installed: np.ndarray, log: Log) -> None:
    """Σ_k quota ≤ GPUs of the pool (site x rack type): quotas must never overcommit a pool."""
    granted = quota.sum(axis=0)
    pool = gpus_installed(data, installed)
    check_limit(
        log,
        "quota_fits",
        granted,
        pool,
        _pool_quarter(data),
        lambda total, gpus: f"tenant quotas total {total:,.1f} GPUs but the pool has {gpus:,.0f} GPUs",
        "GPUs",
        digits=1,
        excess="overcommit",
        # A pool whose rack type the site does not allow has no GPUs: any quota on it overcommits.
        failed=(exceeds(granted, pool) & data.allowed[:, :, None])
        | ((granted > ABS_TOL_QUANTITY) & ~data.allowed[:, :, None]),
    )


def quota_drop_allowance(scenario: Scenario, data: ScenarioArrays) -> np.ndarray:
    """[K, T]: how far a tenant's quota on a pool may fall into quarter t. Nothing within a
    contract term; at a renewal (t a multiple of the term), the fall of the tenant's peak demand
    (any scenario, any quarter of the term) from the last term to the new one; 0 at t = 0."""
    term = scenario.contracts.quota_term_periods
    n_t = len(data.labels)
    peak_by_quarter = data.demand.max(axis=2)  # [K, T]
    term_peak = np.zeros_like(peak_by_quarter)
    for start in range(0, n_t, term):
        term_peak[:, start : start + term] = peak_by_quarter[:, start : start + term].max(
            axis=1, keepdims=True
        )
    allowance = np.zeros_like(peak_by_quarter)
    for t in range(term, n_t, term):
        allowance[:, t] = np.maximum(0.0, term_peak[:, t - 1] - term_peak[:, t])
    return allowance


def check_quota_never_shrinks(scenario: Scenario, data: ScenarioArrays, quota: np.ndarray, log: Log) -> None:
    """quota[k, i, r, t] ≥ quota[k, i, r, t − 1] − allowance[k, t]: no quota shrinks within a
    contract term, and at a renewal by no more than the tenant's peak demand fell."""
    allowance = quota_drop_allowance(scenario, data)[:, None, None, 1:]  # [K, 1, 1, T-1]
    floor = quota[..., :-1] - allowance
    failed = exceeds(floor, quota[..., 1:])

    def describe(x: tuple[int, ...]) -> str:
        k, i, r, t = x
        return (
            f"quota_never_shrinks {data.tenants[k]}@{data.sites[i]}/{data.racks[r]} {data.labels[t + 1]}: "
            f"quota falls from {quota[k, i, r, t]:,.1f} to {quota[k, i, r, t + 1]:,.1f} GPUs, more than the "
            f"{allowance[k, 0, 0, t]:,.1f} the contract rule allows"
        )

    log.check_array(failed, describe)


def check_serve_within_capacity(
    data: ScenarioArrays, pool_served: np.ndarray, installed: np.ndarray, log: Log
) -> None:
    """Σ_k served ≤ h x GPUs installed, per pool, quarter and scenario."""
    pool_quarter = _pool_quarter(data)
    check_limit(
        log,
        "serve_within_capacity",
        pool_served,
        (data.h * gpus_installed(data, installed))[..., None],
        lambda x: f"{pool_quarter(x)} [{data.cases[x[3]]}]",
        lambda hours, capacity: (
            f"{hours:,.0f} GPU-hours served but the pool's {capacity / data.h:,.0f} GPUs give {capacity:,.0f}"
        ),
        "GPU-hours",
    )


def check_serve_within_quota(data: ScenarioArrays, served: Served, quota: np.ndarray, log: Log) -> None:
    """served[k, i, r, t, s] ≤ h x quota[k, i, r, t]: a tenant cannot use GPUs it was not granted."""

    def where(x: Index) -> str:
        n = x[0]
        return (
            f"{data.tenants[served.k[n]]}@{data.sites[served.i[n]]}/{data.racks[served.r[n]]} "
            f"{data.labels[served.t[n]]} [{data.cases[served.s[n]]}]"
        )

    check_limit(
        log,
        "serve_within_quota",
        served.gpu_hours,
        data.h * quota[served.k, served.i, served.r, served.t],
        where,
        lambda hours, allowance: (
            f"{hours:,.0f} GPU-hours served but the quota of {allowance / data.h:,.1f} GPUs allows {allowance:,.0f}"
        ),
        "GPU-hours",
    )


def check_demand_balance(
    data: ScenarioArrays, tenant_served: np.ndarray, unserved: np.ndarray, log: Log
) -> None:
    """served + unserved = h x D for every tenant, quarter and scenario: demand is never invented or lost."""
    demand = data.h * data.demand
    got = tenant_served + unserved
    gap = np.abs(got - demand)
    log.check_array(
        ~(gap <= tolerance(got, demand, ABS_TOL_QUANTITY)),
        lambda x: (
            f"demand_balance {data.tenants[x[0]]} {data.labels[x[1]]} [{data.cases[x[2]]}]: served "
            f"{tenant_served[x]:,.0f} + unserved {unserved[x]:,.0f} = {got[x]:,.0f} GPU-hours but demand is "
            f"{data.demand[x]:,.3f} GPUs x {data.h:g} h = {demand[x]:,.0f} (difference {got[x] - demand[x]:,.0f})"
        ),
    )


def check_first_stage_rules(
    scenario: Scenario,
    data: ScenarioArrays,
    built: np.ndarray,
    blocks: np.ndarray,
    quota: np.ndarray,
    installed: np.ndarray,
    available: np.ndarray,
    log: Log,
) -> None:
    """Every rule a first stage (racks, power blocks, quotas) keeps, whatever its second stage:
    the plan's, and the no-deal plan's its walk-away record holds (`planner.verify.no_deal`), so
    a rule added here binds both."""
    check_power_fits(data, installed, available, log)
    check_power_cap(data, available, log)
    check_gpu_cap(data, installed, log)
    check_build_rate(data, built, log)
    check_block_rate(data, blocks, log)
    check_quota_fits(data, quota, installed, log)
    check_quota_never_shrinks(scenario, data, quota, log)
