"""Sparse index sets: each `*_indices` function lists only the tuples where data makes a
decision possible, never a full cross product (TEMOA's habit).

Index order everywhere: tenant k, site i, rack type r, quarter t, scenario s.
"""

from __future__ import annotations

from planner.model.data import ModelData


def site_period_indices(d: ModelData) -> list[tuple[str, int]]:
    return [(i, t) for i in d.site_ids for t in d.periods]


def rack_indices(d: ModelData) -> list[tuple[str, str, int]]:
    """(site, rack type, quarter) for rack types allowed at the site."""
    return [(i, r, t) for i in d.site_ids for r in d.rack_ids_at[i] for t in d.periods]


def block_order_indices(d: ModelData) -> list[tuple[str, int]]:
    """(site, quarter) where an ordered block still arrives inside the horizon, at sites where
    at least one block fits under the power cap and the order rate is positive."""
    return [
        (i, t) for i in d.site_ids if d.blocks_bound(i) > 0 for t in d.periods if t + d.lead(i) <= d.n - 1
    ]


def quota_indices(d: ModelData) -> list[tuple[str, str, str, int]]:
    """(tenant, site, rack type, quarter) where the tenant may use the site."""
    return [
        (k, i, r, t) for i in d.site_ids for k in d.tenants_at[i] for r in d.rack_ids_at[i] for t in d.periods
    ]


def served_indices(d: ModelData) -> list[tuple[str, str, str, int, str]]:
    """(tenant, site, rack type, quarter, scenario) where the tenant may use the site and has
    demand in that quarter and scenario (with no demand nothing can be served)."""
    return [
        (k, i, r, t, s)
        for s in d.scenario_ids
        for i in d.site_ids
        for k in d.tenants_at[i]
        for t in d.periods
        if d.demand[k, t, s] > 0
        for r in d.rack_ids_at[i]
    ]


def unserved_indices(d: ModelData) -> list[tuple[str, int, str]]:
    """(tenant, quarter, scenario) with positive demand."""
    tenants = [k.id for k in d.scenario.tenants]
    return [(k, t, s) for s in d.scenario_ids for k in tenants for t in d.periods if d.demand[k, t, s] > 0]


def capacity_indices(d: ModelData) -> list[tuple[str, str, int, str]]:
    """(site, rack type, quarter, scenario): one capacity row per pool and scenario."""
    return [
        (i, r, t, s) for s in d.scenario_ids for i in d.site_ids for r in d.rack_ids_at[i] for t in d.periods
    ]
