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
from planner.model.expr import array_constraint

MONEY_SCALE_USD = 1e6
"""One objective unit is this many US$."""

PARTY = {"cloud": (1.0, 0.0), "guarantor": (0.0, 1.0), "syndicate": (1.0, 1.0)}
"""Weights of (cloud, guarantor) value in each perspective's value."""

Weights = tuple[float, float]


def tenant_value_usd(d: ModelData, k: str, s: str, weights: Weights) -> float:
    """Undiscounted value (US$) of serving one GPU-hour of tenant k in scenario s, before energy:
    the cloud keeps the rent less the revenue share; the guarantor gets the share less the credit
    it advanced and will not see repaid. (Buyback is billed on `buyback_gpu_hours`, never here.)"""
    cloud_w, guar_w = weights
    tenant = d.scenario.tenant(k)
    rs = d.scenario.terms.revenue_share
    price = tenant.price_usd_per_gpu_hour
    credit_loss = tenant.token_credit_share * (1 - tenant.repayment_share(s)) * price
    return cloud_w * price * (1 - rs) + guar_w * (rs * price - credit_loss)


def energy_value_usd(d: ModelData, i: str, r: str, weights: Weights) -> float:
    """Undiscounted value (US$, negative) of the energy one served GPU-hour draws (a cloud cost)."""
    return -weights[0] * d.energy_usd_per_gpu_hour(i, r)


def buyback_value_usd(d: ModelData, t: int, weights: Weights) -> float:
    """Discounted value (US$) of one bought-back GPU-hour: paid by the guarantor to the cloud."""
    cloud_w, guar_w = weights
    return d.discount[t] * (cloud_w - guar_w) * d.scenario.terms.buyback_price_usd_per_gpu_hour


def installed_rack_value_usd(d: ModelData, r: str, t: int, weights: Weights, *, new: bool) -> float:
    """Discounted value (US$) of one rack installed in quarter t: opex, and for new racks the
    quarter's share of capex and of the guarantor's hardware margin (amortised alike, docs/model.md)."""
    cloud_w, guar_w = weights
    rack = d.scenario.rack_type(r)
    capex_share = rack.capex_usd / rack.lifetime_periods if new else 0.0
    cloud = -rack.opex_usd_per_rack_period - capex_share
    guarantor = d.scenario.terms.guarantor_hardware_margin * capex_share
    return d.discount[t] * (cloud_w * cloud + guar_w * guarantor)


def built_rack_value_usd(d: ModelData, r: str, t: int, weights: Weights) -> float:
    """Discounted value (US$) of one rack bought in quarter t over its installed quarters in the horizon."""
    life_end = min(d.n, t + d.scenario.rack_type(r).lifetime_periods)
    return sum(installed_rack_value_usd(d, r, tau, weights, new=True) for tau in range(t, life_end))


def block_value_usd(d: ModelData, i: str, t: int, weights: Weights) -> float:
    """Discounted value (US$) of one block ordered in quarter t: amortised power capex from arrival."""
    site = d.scenario.site(i)
    per_period = site.power_capex_usd_per_mw * site.power_block_mw / site.power_asset_lifetime_periods
    return (
        -weights[0]
        * per_period
        * sum(d.discount[tau] for tau in range(t + site.power_lead_time_periods, d.n))
    )


def constant_value_usd(d: ModelData, weights: Weights) -> float:
    """Discounted value (US$) of the existing racks (their capex is sunk, so no margin either)."""
    return sum(
        count * installed_rack_value_usd(d, r, t, weights, new=False)
        for (_i, r), count in d.existing_racks.items()
        for t in d.periods
    )


def define_scenario_values(m: pyo.ConcreteModel, d: ModelData) -> None:
    """scenario_value[s] = V_s (US$M), the perspective's value, a variable defined by one row per
    scenario, `scenario_value_def`: V_s - first-stage terms - served and buyback terms = constant.

    A variable rather than an expression because the objective and every CVaR row read V_s:
    as expressions each would repeat all of scenario s's served terms (millions at size).
    """
    weights = PARTY[d.scenario.objective.perspective]
    m.scenario_value = pyo.Var(d.scenario_ids, domain=pyo.Reals)
    m.scenario_value_def = _value_rows(m, d, weights, list(d.scenario_ids), list(m.scenario_value.values()))


def define_party_values(m: pyo.ConcreteModel, d: ModelData) -> None:
    """party_value[p, s] (US$M) for each party with a requirement (participation), defined like
    V_s by `party_value_def[p, s]`."""
    parties = required_parties(d)
    if not parties:
        return
    keys = [(p, s) for p in parties for s in d.scenario_ids]
    m.party_value = pyo.Var(keys, domain=pyo.Reals)
    rows = [
        _value_rows(
            m, d, PARTY[p], [(p, s) for s in d.scenario_ids], [m.party_value[p, s] for s in d.scenario_ids]
        )
        for p in parties
    ]
    for p, component in zip(parties, rows, strict=True):
        setattr(m, f"party_value_def_{p}", component)


def required_parties(d: ModelData) -> list[str]:
    """Parties whose value some participation requirement bounds below."""
    participation = d.scenario.participation
    return [
        p
        for p, need in (("cloud", participation.cloud), ("guarantor", participation.guarantor))
        if need.min_expected_value_usd is not None or need.min_cvar_usd is not None
    ]


def _value_rows(m: pyo.ConcreteModel, d: ModelData, weights: Weights, keys: list, value_vars: list):
    """One row per scenario: value_var[s] - first-stage terms - served terms - buyback terms = constant
    (US$M), as CSR arrays."""
    scale = 1.0 / MONEY_SCALE_USD
    # Per rack type and quarter, not per site: a rack's value does not depend on where it stands.
    kinds = dict.fromkeys((r, t) for (_i, r, t) in m.racks_built)
    built = {(r, t): built_rack_value_usd(d, r, t, weights) for (r, t) in kinds}
    first_coefs = [built[r, t] * scale for (_i, r, t) in m.racks_built]
    first_coefs += [block_value_usd(d, i, t, weights) * scale for (i, t) in m.blocks_ordered]
    first_vars = [*m.racks_built.values(), *m.blocks_ordered.values()]
    constant = constant_value_usd(d, weights) * scale

    # served value from its two small tables (tenant x scenario, site x rack type).
    tenant_part = np.array(
        [[tenant_value_usd(d, k.id, s, weights) for s in d.scenario_ids] for k in d.scenario.tenants],
        dtype=np.float64,
    ).reshape(len(d.scenario.tenants), len(d.scenario_ids))
    energy_part = np.array(
        [
            [
                energy_value_usd(d, i, r.id, weights) if r.id in d.rack_ids_at[i] else 0.0
                for r in d.scenario.rack_types
            ]
            for i in d.site_ids
        ],
        dtype=np.float64,
    ).reshape(len(d.site_ids), len(d.scenario.rack_types))
    discount = np.asarray(d.discount, dtype=np.float64) * scale
    served = variables.served_index(m)
    n_s, n_first, n_served = len(d.scenario_ids), len(first_vars), len(served)
    served_coefs = -discount[served.t] * (tenant_part[served.k, served.s] + energy_part[served.i, served.r])
    scenario_rows = np.arange(n_s, dtype=np.int64)
    s_of = {s: n for n, s in enumerate(d.scenario_ids)}
    buyback = list(m.buyback_gpu_hours.items()) if hasattr(m, "buyback_gpu_hours") else []
    if weights[0] == weights[1]:  # the syndicate: buyback is a transfer and cancels (no zero entries)
        buyback = []
    buyback_rows = np.array([s_of[s] for (_i, _t, s), _v in buyback], dtype=np.int64)
    buyback_coefs = np.array([-buyback_value_usd(d, t, weights) * scale for (_i, t, _s), _v in buyback])
    n_bb = len(buyback)
    start_bb = n_s + n_first + n_served
    rows = np.concatenate(
        [scenario_rows, np.repeat(scenario_rows, n_first), served.s.astype(np.int64), buyback_rows]
    )
    positions = np.concatenate(
        [
            scenario_rows,
            np.tile(np.arange(n_s, n_s + n_first, dtype=np.int64), n_s),
            np.arange(n_s + n_first, start_bb, dtype=np.int64),
            np.arange(start_bb, start_bb + n_bb, dtype=np.int64),
        ]
    )
    coefs = np.concatenate(
        [
            np.ones(n_s),
            np.tile(-np.asarray(first_coefs, dtype=np.float64), n_s),
            served_coefs,
            buyback_coefs.astype(np.float64),
        ]
    )
    # A party may not care about a term (the guarantor about power capex): no explicit zeros,
    # which every interface would otherwise count differently.
    kept = coefs != 0.0
    return array_constraint(
        keys,
        rows=rows[kept],
        positions=positions[kept],
        coefs=coefs[kept],
        lower=np.full(n_s, constant),
        upper=np.full(n_s, constant),
        segments=[value_vars, first_vars, m.served_gpu_hours, [v for _k, v in buyback]],
    )


def define_objective(m: pyo.ConcreteModel, d: ModelData) -> None:
    """maximise (1 - w) E[V] + w CVaR_alpha(V), CVaR by Rockafellar-Uryasev; in elastic mode
    (diagnosis only) maximise minus the total requirement shortfall instead."""
    if d.elastic:
        m.value = pyo.Objective(expr=-pyo.quicksum(m.requirement_shortfall.values()), sense=pyo.maximize)
        return
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
