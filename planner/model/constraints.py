"""Constraint families of docs/model.md, one function each; component names match the spec."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from planner.model import sets
from planner.model.data import ModelData
from planner.model.expr import linear, templated_constraints


def define_power_fits(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Installed racks x kW x PUE fit in the energised power."""

    def rule(_m, i, t):
        site = d.scenario.site(i)
        draw = pyo.quicksum(
            d.scenario.rack_type(r).kw_per_rack / 1000.0 * site.pue * m.racks_installed[i, r, t]
            for r in d.rack_ids_at[i]
        )
        return draw <= m.available_mw[i, t]

    m.power_fits = pyo.Constraint(sets.site_period_indices(d), rule=rule)


def define_power_cap(m: pyo.ConcreteModel, d: ModelData) -> None:
    def rule(_m, i, t):
        if t - d.lead(i) < 0 or d.blocks_bound(i) == 0:  # no block can have arrived: existing_mw <= cap holds
            return pyo.Constraint.Skip
        return m.available_mw[i, t] <= d.scenario.site(i).power_cap_mw

    m.power_cap = pyo.Constraint(sets.site_period_indices(d), rule=rule)


def define_gpu_cap(m: pyo.ConcreteModel, d: ModelData) -> None:
    def rule(_m, i, t):
        return pyo.quicksum(m.gpus_installed[i, r, t] for r in d.rack_ids_at[i]) <= d.scenario.site(i).gpu_cap

    m.gpu_cap = pyo.Constraint(sets.site_period_indices(d), rule=rule)


def define_build_rate(m: pyo.ConcreteModel, d: ModelData) -> None:
    def rule(_m, i, t):
        built = pyo.quicksum(m.racks_built[i, r, t] for r in d.rack_ids_at[i])
        return built <= d.scenario.site(i).max_racks_built_per_period

    m.build_rate = pyo.Constraint(sets.site_period_indices(d), rule=rule)


def define_block_rate(m: pyo.ConcreteModel, d: ModelData) -> None:
    def rule(_m, i, t):
        return m.blocks_ordered[i, t] <= d.scenario.site(i).max_power_blocks_per_period

    m.block_rate = pyo.Constraint(sets.block_order_indices(d), rule=rule)


def define_quota_fits(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Quotas committed on a pool never exceed its GPUs (the operator enforces the same)."""

    def rule(_m, i, r, t):
        tenants = d.tenants_at[i]
        if not tenants:
            return pyo.Constraint.Skip
        quotas = pyo.quicksum(m.quota_gpus[k, i, r, t] for k in tenants)
        return quotas <= m.gpus_installed[i, r, t]

    m.quota_fits = pyo.Constraint(sets.rack_indices(d), rule=rule)


def define_serve_within_capacity(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Sum_k served <= h x gpus_installed, written out as Sum_k served - h g_r Sum_window racks_built
    <= h g_r existing, so each row is one flat linear expression (no nested expressions)."""
    served_by_pool: dict[tuple, list] = defaultdict(list)
    for (_k, i, r, t, s), var in m.served_gpu_hours.items():
        served_by_pool[i, r, t, s].append(var)
    h = d.h
    window = {}
    for i, r, t in m.racks_built:
        life = d.scenario.rack_type(r).lifetime_periods
        window[i, r, t] = [m.racks_built[i, r, tau] for tau in range(max(0, t - life + 1), t + 1)]

    def rule(_m, i, r, t, s):
        served = served_by_pool.get((i, r, t, s))
        if not served:
            return pyo.Constraint.Skip
        hg = h * d.scenario.rack_type(r).gpus_per_rack
        built = window[i, r, t]
        body = linear([1.0] * len(served) + [-hg] * len(built), served + built)
        return body <= hg * d.existing_racks.get((i, r), 0)

    m.serve_within_capacity = pyo.Constraint(sets.capacity_indices(d), rule=rule)


def define_serve_within_quota(m: pyo.ConcreteModel, d: ModelData) -> None:
    """served[k,i,r,t,s] <= h x quota[k,i,r,t]; one template row for the whole (largest) family."""
    h = d.h

    def rule(m, k, i, r, t, s):
        return m.served_gpu_hours[k, i, r, t, s] - h * m.quota_gpus[k, i, r, t] <= 0

    if not len(m.served_gpu_hours):  # no demand anywhere: an empty family (templates need an index)
        m.serve_within_quota = pyo.ConstraintList()
        return
    with templated_constraints():
        m.serve_within_quota = pyo.Constraint(m.served_gpu_hours.index_set(), rule=rule)


def define_demand_balance(m: pyo.ConcreteModel, d: ModelData) -> None:
    served_by_demand: dict[tuple, list] = defaultdict(list)
    for (k, _i, _r, t, s), var in m.served_gpu_hours.items():
        served_by_demand[k, t, s].append(var)
    h = d.h

    def rule(_m, k, t, s):
        terms = [*served_by_demand.get((k, t, s), []), m.unserved_gpu_hours[k, t, s]]
        return linear([1.0] * len(terms), terms) == h * d.demand[k, t, s]

    m.demand_balance = pyo.Constraint(m.unserved_gpu_hours.index_set(), rule=rule)


def define_cvar_shortfall(m: pyo.ConcreteModel, d: ModelData) -> None:
    """a_s >= eta - V_s (Rockafellar-Uryasev); V_s in US$ millions like the objective."""
    if not hasattr(m, "cvar_eta"):
        return

    def rule(_m, s):
        return m.cvar_shortfall[s] >= m.cvar_eta - m.scenario_value[s]

    m.cvar_shortfall_def = pyo.Constraint(d.scenario_ids, rule=rule)
