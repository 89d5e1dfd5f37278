"""Every constraint family of docs/model.md, checked on the plan's decisions: first stage (power,
caps, rates, quotas) and second stage (serving within capacity and quota, demand balance)."""

from __future__ import annotations

import numpy as np

from planner.schema.scenario import Scenario
from planner.verify.data import ScenarioArrays
from planner.verify.decisions import Served
from planner.verify.derived import facility_load_mw, gpus_installed
from planner.verify.log import ABS_TOL_QUANTITY, Log, exceeds, tolerance


def check_power_fits(data: ScenarioArrays, installed: np.ndarray, available: np.ndarray, log: Log) -> None:
    """Σ_r racks x kW x PUE ≤ available MW: racks cannot run on power that is not energised."""
    need = facility_load_mw(data, installed)
    log.check_array(
        exceeds(need, available),
        lambda x: (
            f"power_fits {data.sites[x[0]]} {data.labels[x[1]]}: racks need {need[x]:,.1f} MW but "
            f"{available[x]:,.1f} MW is available (excess {need[x] - available[x]:,.1f} MW)"
        ),
    )


def check_power_cap(data: ScenarioArrays, available: np.ndarray, log: Log) -> None:
    """available MW ≤ the site's power cap."""
    cap = np.broadcast_to(data.cap_mw[:, None], available.shape)
    log.check_array(
        exceeds(available, cap),
        lambda x: (
            f"power_cap {data.sites[x[0]]} {data.labels[x[1]]}: {available[x]:,.1f} MW energised but "
            f"the cap is {cap[x]:,.1f} MW (excess {available[x] - cap[x]:,.1f} MW)"
        ),
    )


def check_gpu_cap(data: ScenarioArrays, installed: np.ndarray, log: Log) -> None:
    """Σ_r GPUs installed ≤ the site's GPU cap."""
    gpus = gpus_installed(data, installed).sum(axis=1)
    cap = np.broadcast_to(data.gpu_cap[:, None], gpus.shape)
    log.check_array(
        exceeds(gpus, cap),
        lambda x: (
            f"gpu_cap {data.sites[x[0]]} {data.labels[x[1]]}: {gpus[x]:,.0f} GPUs installed but the cap "
            f"is {cap[x]:,.0f} (excess {gpus[x] - cap[x]:,.0f} GPUs)"
        ),
    )


def check_build_rate(data: ScenarioArrays, built: np.ndarray, log: Log) -> None:
    """Σ_r racks built in a quarter ≤ the site's build rate."""
    per_site = built.sum(axis=1)
    limit = np.broadcast_to(data.max_built[:, None], per_site.shape)
    log.check_array(
        exceeds(per_site, limit),
        lambda x: (
            f"build_rate {data.sites[x[0]]} {data.labels[x[1]]}: {per_site[x]:,.0f} racks built but at "
            f"most {limit[x]:,.0f} may be built per quarter (excess {per_site[x] - limit[x]:,.0f} racks)"
        ),
    )


def check_block_rate(data: ScenarioArrays, blocks: np.ndarray, log: Log) -> None:
    """blocks ordered in a quarter ≤ the site's block rate."""
    limit = np.broadcast_to(data.max_blocks[:, None], blocks.shape)
    log.check_array(
        exceeds(blocks, limit),
        lambda x: (
            f"block_rate {data.sites[x[0]]} {data.labels[x[1]]}: {blocks[x]:,.0f} power blocks ordered "
            f"but at most {limit[x]:,.0f} may be ordered per quarter (excess {blocks[x] - limit[x]:,.0f})"
        ),
    )


def check_quota_fits(data: ScenarioArrays, quota: np.ndarray, installed: np.ndarray, log: Log) -> None:
    """Σ_k quota ≤ GPUs of the pool (site x rack type): quotas must never overcommit a pool."""
    granted = quota.sum(axis=0)
    pool = gpus_installed(data, installed)
    log.check_array(
        (exceeds(granted, pool) & data.allowed[:, :, None])
        | ((granted > ABS_TOL_QUANTITY) & ~data.allowed[:, :, None]),
        lambda x: (
            f"quota_fits {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]}: tenant quotas total "
            f"{granted[x]:,.1f} GPUs but the pool has {pool[x]:,.0f} GPUs (overcommit {granted[x] - pool[x]:,.1f} GPUs)"
        ),
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
    capacity = np.broadcast_to((data.h * gpus_installed(data, installed))[..., None], pool_served.shape)
    log.check_array(
        exceeds(pool_served, capacity),
        lambda x: (
            f"serve_within_capacity {data.sites[x[0]]}/{data.racks[x[1]]} {data.labels[x[2]]} "
            f"[{data.cases[x[3]]}]: {pool_served[x]:,.0f} GPU-hours served but the pool's "
            f"{capacity[x] / data.h:,.0f} GPUs give {capacity[x]:,.0f} (excess {pool_served[x] - capacity[x]:,.0f} GPU-hours)"
        ),
    )


def check_serve_within_quota(data: ScenarioArrays, served: Served, quota: np.ndarray, log: Log) -> None:
    """served[k, i, r, t, s] ≤ h x quota[k, i, r, t]: a tenant cannot use GPUs it was not granted."""
    allowance = data.h * quota[served.k, served.i, served.r, served.t]
    amounts = served.gpu_hours

    def describe(x: tuple[int, ...]) -> str:
        n = x[0]
        where = (
            f"{data.tenants[served.k[n]]}@{data.sites[served.i[n]]}/{data.racks[served.r[n]]} "
            f"{data.labels[served.t[n]]} [{data.cases[served.s[n]]}]"
        )
        return (
            f"serve_within_quota {where}: {amounts[n]:,.0f} GPU-hours served but the quota of "
            f"{allowance[n] / data.h:,.1f} GPUs allows {allowance[n]:,.0f} (excess {amounts[n] - allowance[n]:,.0f} GPU-hours)"
        )

    log.check_array(exceeds(amounts, allowance), describe)


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
