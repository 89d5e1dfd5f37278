"""Constraint families of docs/model.md, one function each; component names match the spec."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from planner.model import sets, variables
from planner.model.data import ModelData
from planner.model.expr import array_constraint


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


def define_serve_within_quota(m: pyo.ConcreteModel, d: ModelData) -> None:
    """served[k,i,r,t,s] - h x quota[k,i,r,t] <= 0, one row per served variable (the largest
    family), as CSR arrays.

    Summed over tenants with `quota_fits` it gives Sum_k served <= h x gpus_installed, the spec's
    `serve_within_capacity`, which the model therefore omits: the row would add about half of
    the matrix's non-zeros at size and nothing to the LP relaxation. The verifier checks it.
    """
    served = variables.served_index(m)
    n = len(served)
    quota_at = sets.code_table(d, m.quota_gpus.index_set(), ("k", "i", "r", "t"))
    quota_of = n + quota_at[served.k, served.i, served.r, served.t]
    rows = np.arange(n, dtype=np.int64)
    m.serve_within_quota = array_constraint(
        served.keys,
        rows=np.concatenate([rows, rows]),
        positions=np.concatenate([rows, quota_of]),
        coefs=np.concatenate([np.ones(n), np.full(n, -d.h)]),
        lower=np.full(n, -np.inf),
        upper=np.zeros(n),
        segments=[m.served_gpu_hours, m.quota_gpus],
    )


def define_demand_balance(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Sum_{i,r} served[k,i,r,t,s] + unserved[k,t,s] = h x demand, as CSR arrays."""
    served = variables.served_index(m)
    demand_keys = list(m.unserved_gpu_hours.index_set())
    row_at = sets.code_table(d, demand_keys, ("k", "t", "s"))
    n_served, n_rows = len(served), len(demand_keys)
    rhs = np.fromiter((d.h * d.demand[key] for key in demand_keys), dtype=np.float64, count=n_rows)
    m.demand_balance = array_constraint(
        demand_keys,
        rows=np.concatenate([row_at[served.k, served.t, served.s], np.arange(n_rows, dtype=np.int64)]),
        positions=np.arange(n_served + n_rows, dtype=np.int64),
        coefs=np.ones(n_served + n_rows),
        lower=rhs,
        upper=rhs,
        segments=[m.served_gpu_hours, m.unserved_gpu_hours],
    )


def define_cvar_shortfall(m: pyo.ConcreteModel, d: ModelData) -> None:
    """a_s >= eta - V_s (Rockafellar-Uryasev); V_s in US$ millions like the objective."""
    if not hasattr(m, "cvar_eta"):
        return

    def rule(_m, s):
        return m.cvar_shortfall[s] >= m.cvar_eta - m.scenario_value[s]

    m.cvar_shortfall_def = pyo.Constraint(d.scenario_ids, rule=rule)
