"""Constraint families of docs/model.md, one function each; component names match the spec."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from planner.model import sets, variables
from planner.model.data import ModelData
from planner.model.expr import array_constraint
from planner.model.objective import MONEY_SCALE_USD
from planner.schema.scenario import Scenario


def _no_rack_type(d: ModelData, site: str) -> bool:
    """Whether site `site` may hold no rack type. A file saying so is refused
    (`planner.schema.consistency.check_site_holds_a_rack_type`), but `build_model` takes any
    `Scenario`, and a row summing over no rack type is a constant (0 <= cap), which Pyomo refuses
    with a traceback: such a site's per-site rows are left out (they hold trivially), and the
    site builds nothing."""
    return not d.rack_ids_at[site]


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
    """GPUs installed fit the site's GPU cap; no row where the site holds no rack type
    (`_no_rack_type`)."""

    def rule(_m, i, t):
        if _no_rack_type(d, i):
            return pyo.Constraint.Skip
        return pyo.quicksum(m.gpus_installed[i, r, t] for r in d.rack_ids_at[i]) <= d.scenario.site(i).gpu_cap

    m.gpu_cap = pyo.Constraint(sets.site_period_indices(d), rule=rule)


def define_build_rate(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Racks built per quarter fit the build rate; no row where the site holds no rack type
    (`_no_rack_type`)."""

    def rule(_m, i, t):
        if _no_rack_type(d, i):
            return pyo.Constraint.Skip
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


def define_quota_never_shrinks(m: pyo.ConcreteModel, d: ModelData) -> None:
    """quota[k,i,r,t] >= quota[k,i,r,t-1] - allowance[k,t]: a tenant's committed GPUs on a pool
    never shrink within a contract term (`contracts.quota_term_periods`); at a renewal they may
    fall by at most the fall in the tenant's peak demand (`ModelData.quota_drop_allowance_gpus`)."""

    def rule(_m, k, i, r, t):
        if t == 0:
            return pyo.Constraint.Skip
        allowance = d.quota_drop_allowance_gpus(k, t)
        return m.quota_gpus[k, i, r, t] >= m.quota_gpus[k, i, r, t - 1] - allowance

    m.quota_never_shrinks = pyo.Constraint(sets.quota_indices(d), rule=rule)


def no_buyer_gpu_hours(m: pyo.ConcreteModel, d: ModelData):
    """(site, t, s) -> x = h x GPUs installed - served at the site - unserved demand of the
    tenants that may use the site: the capacity no tenant wanted (negative when some were refused
    or short). Buyback is the covered share of max(0, x)."""
    served_at = sold_gpu_hours(m)
    unserved = m.unserved_gpu_hours

    def x(i: str, t: int, s: str):
        capacity = site_capacity_gpu_hours(m, d, i, t)
        refused = [unserved[k, t, s] for k in d.tenants_at[i] if (k, t, s) in unserved]
        return capacity - pyo.quicksum(served_at.get((i, t, s), [])) - pyo.quicksum(refused)

    return x


def define_buyback_rule(m: pyo.ConcreteModel, d: ModelData) -> None:
    """buyback = buyback_share x max(0, x) per site, quarter and scenario (docs/model.md, "Buyback"):
    `buyback_no_buyer` b >= share x (with b >= 0, exact wherever buyback is a cost to the value
    maximised); where the cloud's value rewards buyback, the binary `buyback_open` closes it from
    above: `buyback_within_no_buyer` b <= share x + share M1 (1 - open), `buyback_only_if_open`
    b <= share M2 open, with M1 = h x demand at the site >= -x and M2 = h x the site's most GPUs
    >= x; and `buyback_within_unsold` b <= share (h x GPUs - served), implied for whole binaries
    but what keeps the LP relaxation from buying back capacity that was never built."""
    if not d.has_buyback:
        return
    m.site_gpus_installed_def = pyo.Constraint(
        sets.site_period_indices(d),
        rule=lambda _m, i, t: (
            m.site_gpus_installed[i, t] - pyo.quicksum(m.gpus_installed[i, r, t] for r in d.rack_ids_at[i])
            == 0
        ),
    )
    share = d.scenario.terms.buyback_share
    per_hour = 1.0 / d.h  # rows in average GPUs over the quarter, like the other GPU-hour rows
    index = list(m.buyback_gpu_hours.keys())
    n = len(index)
    # The rows are CSR arrays (`array_constraint`) over the segments [buyback, site GPUs,
    # served, unserved, open]: 4 rows per site, quarter and scenario made as Pyomo expressions
    # were most of the model's build and of its hand-off to HiGHS (bench/README.md, session 9).
    rows_x, positions_x, coefs_x = _no_buyer_terms(m, d, index)
    rows_b = np.arange(n, dtype=np.int64)
    served_from = n + len(m.site_gpus_installed)
    unserved_from = served_from + len(m.served_gpu_hours)
    open_from = unserved_from + len(m.unserved_gpu_hours)
    unsold = positions_x < unserved_from
    segments = [m.buyback_gpu_hours, m.site_gpus_installed, m.served_gpu_hours, m.unserved_gpu_hours]

    def family(z_coefs: np.ndarray | None, lower, upper, x_terms=None):
        """Rows per_hour x (b - share x [+ z_coefs x open]) within (lower, upper)."""
        rx, px, cx = x_terms if x_terms is not None else (rows_x, positions_x, coefs_x)
        rows = [rows_b, rx]
        positions = [rows_b, px]
        coefs = [np.full(n, per_hour), -per_hour * share * cx]
        if z_coefs is not None:
            keep = np.flatnonzero(z_coefs)
            rows.append(keep)
            positions.append(open_from + keep)
            coefs.append(per_hour * z_coefs[keep])
        return array_constraint(
            index,
            rows=np.concatenate(rows),
            positions=np.concatenate(positions),
            coefs=np.concatenate(coefs),
            lower=np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)),
            upper=np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)),
            segments=segments + ([m.buyback_open] if z_coefs is not None else []),
        )

    m.buyback_no_buyer = family(None, 0.0, np.inf)
    if not d.buyback_needs_binary:
        return

    def most_refused(i: str, t: int, s: str) -> float:
        return d.h * d.site_demand_gpus(i, t, s)  # bounds -x: unsold >= 0, unserved <= demand

    def most_capacity(i: str, t: int) -> float:
        """h x the most GPUs site i can hold in quarter t (GPU cap, and build rate and power
        over the racks' lives: the bounds on racks_built)."""
        by_type = 0
        for r in d.rack_ids_at[i]:
            rack = d.scenario.rack_type(r)
            window = range(max(0, t - rack.lifetime_periods + 1), t + 1)
            racks = d.existing_racks.get((i, r), 0) + sum(d.racks_built_bound(i, r, tau) for tau in window)
            by_type += rack.gpus_per_rack * racks
        existing = sum(
            c * d.scenario.rack_type(r).gpus_per_rack for (j, r), c in d.existing_racks.items() if j == i
        )
        return d.h * min(by_type, d.site_max_gpus(i) + existing)

    # b <= share (h x GPUs - served): the x terms without the unserved ones.
    m.buyback_within_unsold = family(
        None, -np.inf, 0.0, x_terms=(rows_x[unsold], positions_x[unsold], coefs_x[unsold])
    )
    refused = np.fromiter((most_refused(*key) for key in index), dtype=np.float64, count=n)
    # Once per site and quarter: every scenario's row reads it.
    capacity_at = {key: most_capacity(*key) for key in m.site_gpus_installed}
    capacity = np.fromiter((capacity_at[i, t] for i, t, _s in index), dtype=np.float64, count=n)
    m.buyback_within_no_buyer = family(share * refused, -np.inf, per_hour * share * refused)
    nothing = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    m.buyback_only_if_open = family(-share * capacity, -np.inf, 0.0, x_terms=nothing)


def _no_buyer_terms(
    m: pyo.ConcreteModel, d: ModelData, index: list[tuple[str, int, str]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`no_buyer_gpu_hours` as triplets (row in `index`, position in the segments [buyback,
    site GPUs, served, unserved], coefficient): h x site_gpus_installed[i,t] - served at the
    site - unserved of the tenants that may use it, per (i, t, s) of `index`."""
    served = variables.served_index(m)
    n, n_sp, n_served = len(index), len(m.site_gpus_installed), len(served)
    row_at = sets.code_table(d, index, ("i", "t", "s"))
    gpus_at = sets.code_table(d, list(m.site_gpus_installed.keys()), ("i", "t"))
    unserved_at = sets.code_table(d, list(m.unserved_gpu_hours.keys()), ("k", "t", "s"))
    i, t, s = np.nonzero(row_at >= 0)
    # Unserved demand (k, t, s) counts at every site the tenant may use.
    k_u, t_u, s_u = np.nonzero(unserved_at >= 0)
    site, u = np.nonzero(sets.tenant_may_use(d)[:, k_u])
    rows = np.concatenate(
        [row_at[i, t, s], row_at[served.i, served.t, served.s], row_at[site, t_u[u], s_u[u]]]
    )
    positions = np.concatenate(
        [
            n + gpus_at[i, t],
            n + n_sp + np.arange(n_served, dtype=np.int64),
            n + n_sp + n_served + unserved_at[k_u[u], t_u[u], s_u[u]],
        ]
    )
    coefs = np.concatenate([np.full(len(i), d.h), -np.ones(n_served), -np.ones(len(u))])
    return rows, positions, coefs


def site_capacity_gpu_hours(m: pyo.ConcreteModel, d: ModelData, i: str, t: int):
    """h x GPUs installed at site i in quarter t (GPU-hours), read from the column
    `site_gpus_installed[i,t]` (defined by `site_gpus_installed_def`), not the expression: the
    buyback rows of every scenario read it, and the expression is every rack type's lifetime
    window of `racks_built` (60 terms at (10,3,20,6,10), each repeated in 3 rows per scenario).
    The column makes the LP a third sparser there and each Benders cut read one column per site
    (bench/README.md, 2026-12-05)."""
    return d.h * m.site_gpus_installed[i, t]


def sold_gpu_hours(m: pyo.ConcreteModel) -> dict[tuple[str, int, str], list]:
    """(site, t, s) -> the served variables there."""
    served_at: dict[tuple[str, int, str], list] = {}
    for (_k, i, _r, t, s), var in m.served_gpu_hours.items():
        served_at.setdefault((i, t, s), []).append(var)
    return served_at


def _shortfall(m: pyo.ConcreteModel, d: ModelData, name: str):
    """0, or in elastic mode the named requirement's shortfall variable (US$M)."""
    if not d.elastic:
        return 0.0
    return m.requirement_shortfall[name]


def requirement_names(d: ModelData) -> list[str]:
    """Every participation requirement the scenario states, by its field path."""
    return stated_requirements(d.scenario)


def stated_requirements(scenario: Scenario) -> list[str]:
    """`requirement_names` of a scenario before any model is built (`dsx plan diagnose`)."""
    participation = scenario.participation
    names = []
    for party, need in (("cloud", participation.cloud), ("guarantor", participation.guarantor)):
        for field in ("min_expected_value_usd", "min_cvar_usd"):
            if getattr(need, field) is not None:
                names.append(f"participation.{party}.{field}")
    for field in ("max_buyback_exposure_usd_per_period", "max_buyback_exposure_usd_total"):
        if getattr(participation.guarantor, field) is not None:
            names.append(f"participation.guarantor.{field}")
    return names


def define_participation(m: pyo.ConcreteModel, d: ModelData) -> None:
    """Each party's requirement (docs/model.md, "Participation"), in US$M:
    `participation_expected_value[p]`: Sum_s p_s value[p,s] >= min;
    `participation_cvar[p]`: eta_p - Sum_s p_s / (1 - alpha) a[p,s] >= min, with
    `party_cvar_shortfall_def[p,s]`: a[p,s] >= eta_p - value[p,s] (Rockafellar-Uryasev);
    `buyback_exposure_per_period[t]`: share x price x h x installed GPUs <= cap, and its sum over
    the horizon `buyback_exposure_total`."""
    participation = d.scenario.participation
    scale = 1.0 / MONEY_SCALE_USD
    if d.elastic:
        m.requirement_shortfall = pyo.Var(requirement_names(d), domain=pyo.NonNegativeReals)
    needs = {"cloud": participation.cloud, "guarantor": participation.guarantor}
    least_expected = {
        p: need.min_expected_value_usd for p, need in needs.items() if need.min_expected_value_usd is not None
    }
    if least_expected:

        def expected_rule(_m, p):
            value = pyo.quicksum(d.probability[s] * m.party_value[p, s] for s in d.scenario_ids)
            name = f"participation.{p}.min_expected_value_usd"
            return value + _shortfall(m, d, name) >= least_expected[p] * scale

        m.participation_expected_value = pyo.Constraint(list(least_expected), rule=expected_rule)
    cvar_parties = d.parties_with_cvar_requirement
    least_cvar = {p: need.min_cvar_usd for p, need in needs.items() if need.min_cvar_usd is not None}
    if cvar_parties:
        alpha = participation.cvar_alpha
        m.party_cvar_shortfall_def = pyo.Constraint(
            [(p, s) for p in cvar_parties for s in d.scenario_ids],
            rule=lambda _m, p, s: m.party_cvar_shortfall[p, s] >= m.party_cvar_eta[p] - m.party_value[p, s],
        )

        def cvar_rule(_m, p):
            cvar = m.party_cvar_eta[p] - pyo.quicksum(
                d.probability[s] / (1 - alpha) * m.party_cvar_shortfall[p, s] for s in d.scenario_ids
            )
            return cvar + _shortfall(m, d, f"participation.{p}.min_cvar_usd") >= least_cvar[p] * scale

        m.participation_cvar = pyo.Constraint(cvar_parties, rule=cvar_rule)

    guarantor = participation.guarantor
    terms = d.scenario.terms
    per_gpu = terms.buyback_share * terms.buyback_price_usd_per_gpu_hour * d.h * scale

    def exposure(t: int):
        return per_gpu * pyo.quicksum(m.gpus_installed[i, r, t] for i in d.site_ids for r in d.rack_ids_at[i])

    # Where no site holds a rack type (`_no_rack_type`) there is nothing to expose: a constant row.
    racks_anywhere = not all(_no_rack_type(d, i) for i in d.site_ids)
    cap = guarantor.max_buyback_exposure_usd_per_period
    if cap is not None and racks_anywhere:
        name = "participation.guarantor.max_buyback_exposure_usd_per_period"
        m.buyback_exposure_per_period = pyo.Constraint(
            list(d.periods), rule=lambda _m, t: exposure(t) - _shortfall(m, d, name) <= cap * scale
        )
    total = guarantor.max_buyback_exposure_usd_total
    if total is not None and racks_anywhere:
        name = "participation.guarantor.max_buyback_exposure_usd_total"
        m.buyback_exposure_total = pyo.Constraint(
            expr=pyo.quicksum(exposure(t) for t in d.periods) - _shortfall(m, d, name) <= total * scale
        )
