"""Scenario values and the objective (docs/model.md "Values" and "Objective").

Money inside the model is in US$ millions (`MONEY_SCALE_USD`): coefficients then range from
about 1e-6 (per GPU-hour) to about 1 (per rack), which keeps HiGHS's scaling well conditioned.
Reports convert back to US$.

V_s splits into a first-stage part, identical in every scenario (racks, blocks, the buyback of
installed capacity, constants from existing racks), and a recourse part linear in the served
GPU-hours of scenario s. Each unsold GPU-hour is h x GPUs - served, so the buyback's dependence
on serving appears as a per-GPU-hour coefficient of served.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from planner.model import variables
from planner.model.data import ModelData
from planner.model.expr import array_constraint, linear

MONEY_SCALE_USD = 1e6
"""One objective unit is this many US$."""

PARTY = {"cloud": (1.0, 0.0), "guarantor": (0.0, 1.0), "syndicate": (1.0, 1.0)}
"""Weights of (cloud, guarantor) value in each perspective's value."""


def tenant_value_usd(d: ModelData, k: str, s: str) -> float:
    """Undiscounted value (US$) of serving one GPU-hour of tenant k in scenario s, before energy."""
    sc = d.scenario
    cloud_w, guar_w = PARTY[sc.objective.perspective]
    tenant = sc.tenant(k)
    terms = sc.terms
    price = tenant.price_usd_per_gpu_hour
    bb = terms.buyback_price_usd_per_gpu_hour * terms.buyback_share  # per unsold GPU-hour
    cloud = price * (1 - terms.revenue_share) - bb
    credit_loss = tenant.token_credit_share * (1 - tenant.repayment_share(s)) * price
    guarantor = terms.revenue_share * price + bb - credit_loss
    return cloud_w * cloud + guar_w * guarantor


def energy_value_usd(d: ModelData, i: str, r: str) -> float:
    """Undiscounted value (US$, negative) of the energy one served GPU-hour draws (a cloud cost)."""
    cloud_w, _ = PARTY[d.scenario.objective.perspective]
    return -cloud_w * d.energy_usd_per_gpu_hour(i, r)


def served_value_usd(d: ModelData, k: str, i: str, r: str, t: int, s: str) -> float:
    """Discounted value (US$) of serving one GPU-hour, for the objective's perspective."""
    return d.discount[t] * (tenant_value_usd(d, k, s) + energy_value_usd(d, i, r))


def installed_rack_value_usd(d: ModelData, i: str, r: str, t: int, *, new: bool) -> float:
    """Discounted value (US$) of one rack installed in quarter t: buyback cover of its GPU-hours,
    opex, and (new racks only) straight-line capex."""
    sc = d.scenario
    cloud_w, guar_w = PARTY[sc.objective.perspective]
    rack = sc.rack_type(r)
    bb = sc.terms.buyback_price_usd_per_gpu_hour * sc.terms.buyback_share * d.h * rack.gpus_per_rack
    cloud = bb - rack.opex_usd_per_rack_period - (rack.capex_usd / rack.lifetime_periods if new else 0.0)
    return d.discount[t] * (cloud_w * cloud - guar_w * bb)


def built_rack_value_usd(d: ModelData, i: str, r: str, t: int) -> float:
    """Discounted value (US$) of one rack bought in quarter t over its installed life."""
    sc = d.scenario
    _, guar_w = PARTY[sc.objective.perspective]
    rack = sc.rack_type(r)
    margin = guar_w * d.discount[t] * sc.terms.guarantor_hardware_margin * rack.capex_usd
    life_end = min(d.n, t + rack.lifetime_periods)
    return margin + sum(installed_rack_value_usd(d, i, r, tau, new=True) for tau in range(t, life_end))


def block_value_usd(d: ModelData, i: str, t: int) -> float:
    """Discounted value (US$) of one block ordered in quarter t: amortised power capex from arrival."""
    site = d.scenario.site(i)
    cloud_w, _ = PARTY[d.scenario.objective.perspective]
    per_period = site.power_capex_usd_per_mw * site.power_block_mw / site.power_asset_lifetime_periods
    return (
        -cloud_w * per_period * sum(d.discount[tau] for tau in range(t + site.power_lead_time_periods, d.n))
    )


def constant_value_usd(d: ModelData) -> float:
    """Discounted value (US$) of the existing racks (their capex is sunk)."""
    return sum(
        count * installed_rack_value_usd(d, i, r, t, new=False)
        for (i, r), count in d.existing_racks.items()
        for t in d.periods
    )


def define_scenario_values(m: pyo.ConcreteModel, d: ModelData) -> None:
    """first_stage_value (US$M, an expression) and scenario_value[s] = V_s (US$M), a variable
    defined by one row per scenario, `scenario_value_def`:
    V_s - first-stage terms - Sum served value x served[..., s] = constant.

    A variable rather than an expression because the objective and every CVaR row read V_s:
    as expressions each would repeat all of scenario s's served terms (millions at size).
    """
    scale = 1.0 / MONEY_SCALE_USD
    first_coefs = [built_rack_value_usd(d, i, r, t) * scale for (i, r, t) in m.racks_built]
    first_coefs += [block_value_usd(d, i, t) * scale for (i, t) in m.blocks_ordered]
    first_vars = [*m.racks_built.values(), *m.blocks_ordered.values()]
    constant = constant_value_usd(d) * scale
    m.first_stage_value = pyo.Expression(expr=linear(first_coefs, first_vars, constant))
    m.scenario_value = pyo.Var(d.scenario_ids, domain=pyo.Reals)

    # served_value_usd from its two small tables (tenant x scenario, site x rack type).
    tenant_part = np.array(
        [[tenant_value_usd(d, k.id, s) for s in d.scenario_ids] for k in d.scenario.tenants], dtype=np.float64
    ).reshape(len(d.scenario.tenants), len(d.scenario_ids))
    energy_part = np.array(
        [
            [energy_value_usd(d, i, r.id) if r.id in d.rack_ids_at[i] else 0.0 for r in d.scenario.rack_types]
            for i in d.site_ids
        ],
        dtype=np.float64,
    ).reshape(len(d.site_ids), len(d.scenario.rack_types))
    discount = np.asarray(d.discount, dtype=np.float64) * scale
    served = variables.served_index(m)
    n_s, n_first, n_served = len(d.scenario_ids), len(first_vars), len(served)
    served_coefs = -discount[served.t] * (tenant_part[served.k, served.s] + energy_part[served.i, served.r])
    served_rows = served.s
    scenario_rows = np.arange(n_s, dtype=np.int64)
    m.scenario_value_def = array_constraint(
        list(d.scenario_ids),
        rows=np.concatenate([scenario_rows, np.repeat(scenario_rows, n_first), served_rows]),
        positions=np.concatenate(
            [
                scenario_rows,
                np.tile(np.arange(n_s, n_s + n_first, dtype=np.int64), n_s),
                np.arange(n_s + n_first, n_s + n_first + n_served, dtype=np.int64),
            ]
        ),
        coefs=np.concatenate(
            [np.ones(n_s), np.tile(-np.asarray(first_coefs, dtype=np.float64), n_s), served_coefs]
        ),
        lower=np.full(n_s, constant),
        upper=np.full(n_s, constant),
        segments=[m.scenario_value, first_vars, m.served_gpu_hours],
    )


def define_objective(m: pyo.ConcreteModel, d: ModelData) -> None:
    """maximise (1 - w) E[V] + w CVaR_alpha(V), CVaR by Rockafellar-Uryasev."""
    objective = d.scenario.objective
    w = objective.cvar_weight
    expected = pyo.quicksum(d.probability[s] * m.scenario_value[s] for s in d.scenario_ids)
    if w > 0:
        alpha = objective.cvar_alpha
        assert alpha is not None
        cvar = m.cvar_eta - pyo.quicksum(
            d.probability[s] / (1 - alpha) * m.cvar_shortfall[s] for s in d.scenario_ids
        )
        m.value = pyo.Objective(expr=(1 - w) * expected + w * cvar, sense=pyo.maximize)
    else:
        m.value = pyo.Objective(expr=expected, sense=pyo.maximize)


def best_cvar_level(m: pyo.ConcreteModel) -> float:
    """Set the CVaR level and shortfalls to their best values for the solved scenario values;
    return how much the objective rose (model money units; 0 without CVaR).

    Why: a MIP incumbent need not be optimal in its continuous variables, and HiGHS can return
    one whose `cvar_eta` sits off the alpha-quantile, understating the plan's own CVaR (the
    verifier, which recomputes CVaR by sorting, then rejects the reported objective). Given the
    V_s, the Rockafellar-Uryasev function eta - Sum_s p_s / (1 - alpha) max(0, eta - V_s) is
    concave and piecewise linear with kinks at the V_s, so its maximum is at one of them.
    Both variables appear only in `cvar_shortfall_def` and the objective, so every row still holds.
    """
    if not hasattr(m, "cvar_eta"):
        return 0.0
    d = m._dsx_data
    objective = d.scenario.objective
    values = {s: float(m.scenario_value[s].value) for s in d.scenario_ids}

    def level(eta: float) -> float:
        return eta - sum(
            d.probability[s] / (1 - objective.cvar_alpha) * max(0.0, eta - v) for s, v in values.items()
        )

    before = float(m.cvar_eta.value) - sum(
        d.probability[s] / (1 - objective.cvar_alpha) * float(m.cvar_shortfall[s].value)
        for s in d.scenario_ids
    )
    eta = max(values.values(), key=level)
    after = level(eta)
    if after <= before:
        return 0.0
    m.cvar_eta.set_value(eta)
    for s, v in values.items():
        m.cvar_shortfall[s].set_value(max(0.0, eta - v))
    return objective.cvar_weight * (after - before)
