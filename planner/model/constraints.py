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


def define_buyback_rule(m: pyo.ConcreteModel, d: ModelData) -> None:
    """The matching rule (docs/model.md, "Buyback"), per quarter t and scenario s: buyback =
    share x (Sum_c unsold_c - M*), unsold_c = h x GPUs installed - served over the sites of class
    c (`sets.site_classes`: sites with the same tenants), M* the max flow placing each tenant's
    refused hours (`unserved_gpu_hours`) on the unsold hours of classes it may use. By max-flow/
    min-cut, Sum_c unsold_c - M* = max over sets T of classes of unsold(T) - refused(N(T)), N(T)
    the tenants who may use a class of T (T = {} gives 0).

    From below, always: flows f[k,c] >= 0 (`buyback_matched_gpu_hours`) with
    `buyback_matched_within_refused` Sum_c f[k,c] <= unserved_k, and `buyback_no_buyer`
    b_c >= share (unsold_c - Sum_k f[k,c]), b_c >= 0. So Sum_c b_c >= share Sum_c max(0,
    unsold_c - F_c) for the flows chosen, whose least over flows is share (Sum_c unsold_c - M*)
    (flow past a class's unsold hours is wasted): exact wherever buyback is a cost to the value
    maximised, the LP picking a max matching.

    From above, where the cloud's value rewards buyback (`d.buyback_needs_binary`), a
    disjunction over min cuts: binary open_c (`buyback_open`, c in T); u_c >= 0
    (`buyback_cut_unsold_gpu_hours`) with `buyback_within_unsold` u_c <= unsold_c and
    `buyback_only_if_open` u_c <= M_c open_c (M_c = h x the most GPUs the class can hold);
    r_k >= 0 (`buyback_cut_refused_gpu_hours`) with `buyback_refused_if_open` r_k >= unserved_k
    - M_k (1 - open_c) for each class c k may use (M_k = h x k's demand >= unserved_k); and per
    (t, s) `buyback_within_cut` Sum_c b_c <= share (Sum_c u_c - Sum_k r_k). With open whole and
    T its set, u_c <= unsold_c on T and 0 off it, r_k >= unserved_k for k in N(T) and >= 0 else,
    so the upper row allows at most share (unsold(T) - refused(N(T))) <= share max_T (...),
    while the lower rows ask at least share (Sum unsold - M*) = share max_T (...): feasible
    only where T is a maximising set, and then Sum_c b_c is exactly share max_T (...). The
    split of that total among classes is not the rule's (only the total is billed: the
    plan's per-site figures are its own convention). `buyback_within_unsold` is part of the
    rule, whole binaries or not: without it an open class's u_c could reach M_c, past its unsold
    hours (a 3-site hand case billed 54,750 GPU-hours for the rule's 10,950).

    All rows are CSR arrays (`array_constraint`), in average GPUs over the quarter (x 1/h) like
    the other GPU-hour rows: as Pyomo expressions the buyback rows were most of the model's
    build and of its hand-off to HiGHS (bench/README.md, session 9)."""
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
    per_hour = 1.0 / d.h
    binary = d.buyback_needs_binary
    classes = sets.site_classes(d)
    index = list(m.buyback_gpu_hours.keys())
    flows = list(m.buyback_matched_gpu_hours.keys())
    refused_index = sets.buyback_refused_indices(d)
    n_b, n_f, n_r = len(index), len(flows), len(refused_index)
    # Positions in the segments [b, site GPUs, served, unserved, f (, u, r, open)].
    segments: list = [
        m.buyback_gpu_hours,
        m.site_gpus_installed,
        m.served_gpu_hours,
        m.unserved_gpu_hours,
        m.buyback_matched_gpu_hours,
    ]
    at_sp = n_b
    at_served = at_sp + len(m.site_gpus_installed)
    at_unserved = at_served + len(m.served_gpu_hours)
    at_f = at_unserved + len(m.unserved_gpu_hours)
    at_u = at_f + n_f
    at_r = at_u + n_b
    at_open = at_r + n_r
    if binary:
        segments += [m.buyback_cut_unsold_gpu_hours, m.buyback_cut_refused_gpu_hours, m.buyback_open]
    row_of_b = sets.code_table(d, index, ("i", "t", "s"))  # a class is named by a site
    site_code = {i: n for n, i in enumerate(d.site_ids)}
    class_code = np.array([site_code[c] for c, sites in classes.items() for i in sites], dtype=np.int64)
    class_of_site = np.empty(len(d.site_ids), dtype=np.int64)
    class_of_site[[site_code[i] for sites in classes.values() for i in sites]] = class_code
    unserved_at = sets.code_table(d, list(m.unserved_gpu_hours.keys()), ("k", "t", "s"))
    k_code = {k: n for n, k in enumerate(sets.axis_labels(d)["k"])}
    s_code = {s: n for n, s in enumerate(d.scenario_ids)}
    f_k = np.array([k_code[k] for k, _c, _t, _s in flows], dtype=np.int64)
    f_c = np.array([site_code[c] for _k, c, _t, _s in flows], dtype=np.int64)
    f_t = np.array([t for _k, _c, t, _s in flows], dtype=np.int64)
    f_s = np.array([s_code[s] for _k, _c, _t, s in flows], dtype=np.int64)
    f_row = row_of_b[f_c, f_t, f_s] if n_f else np.zeros(0, np.int64)
    f_unserved = unserved_at[f_k, f_t, f_s] if n_f else np.zeros(0, np.int64)
    unsold_rows, unsold_positions, unsold_coefs = _unsold_terms(
        m, d, row_of_b, class_of_site, at_sp, at_served
    )

    def family(keys, triplets, lower, upper):
        """Rows per_hour x (Sum of the triplets' terms) within per_hour x (lower, upper)."""
        n = len(keys)
        rows, positions, coefs = (np.concatenate([np.asarray(x[j]) for x in triplets]) for j in range(3))
        return array_constraint(
            keys,
            rows=rows.astype(np.int64),
            positions=positions.astype(np.int64),
            coefs=per_hour * coefs.astype(np.float64),
            lower=per_hour * np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)),
            upper=per_hour * np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)),
            segments=segments,
        )

    b_rows = np.arange(n_b, dtype=np.int64)
    ones_b = np.ones(n_b)
    # b_c - share unsold_c + share Sum_k f[k,c] >= 0
    m.buyback_no_buyer = family(
        index,
        [
            (b_rows, b_rows, ones_b),
            (unsold_rows, unsold_positions, -share * unsold_coefs),
            (f_row, at_f + np.arange(n_f), np.full(n_f, share)),
        ],
        0.0,
        np.inf,
    )
    # Sum_c f[k,c] - unserved_k <= 0
    row_of_r = sets.code_table(d, refused_index, ("k", "t", "s"))
    f_r = row_of_r[f_k, f_t, f_s] if n_f else np.zeros(0, np.int64)
    r_k = np.array([k_code[k] for k, _t, _s in refused_index], dtype=np.int64)
    r_t = np.array([t for _k, t, _s in refused_index], dtype=np.int64)
    r_s = np.array([s_code[s] for _k, _t, s in refused_index], dtype=np.int64)
    r_unserved = unserved_at[r_k, r_t, r_s] if n_r else np.zeros(0, np.int64)
    r_rows = np.arange(n_r, dtype=np.int64)
    m.buyback_matched_within_refused = family(
        refused_index,
        [(f_r, at_f + np.arange(n_f), np.ones(n_f)), (r_rows, at_unserved + r_unserved, -np.ones(n_r))],
        -np.inf,
        0.0,
    )
    if not binary:
        return
    most_gpu_hours = _most_class_gpu_hours(d, classes)
    # u_c - unsold_c <= 0
    m.buyback_within_unsold = family(
        index, [(b_rows, at_u + b_rows, ones_b), (unsold_rows, unsold_positions, -unsold_coefs)], -np.inf, 0.0
    )
    # u_c - M_c open_c <= 0
    capacity = np.fromiter((most_gpu_hours[c, t] for c, t, _s in index), dtype=np.float64, count=n_b)
    m.buyback_only_if_open = family(
        index, [(b_rows, at_u + b_rows, ones_b), (b_rows, at_open + b_rows, -capacity)], -np.inf, 0.0
    )
    # r_k - unserved_k - M_k open_c >= -M_k, per flow (k, c)
    demand = np.fromiter((d.h * d.demand[k, t, s] for k, _c, t, s in flows), dtype=np.float64, count=n_f)
    f_rows = np.arange(n_f, dtype=np.int64)
    m.buyback_refused_if_open = family(
        flows,
        [
            (f_rows, at_r + f_r, np.ones(n_f)),
            (f_rows, at_unserved + f_unserved, -np.ones(n_f)),
            (f_rows, at_open + f_row, -demand),
        ],
        -demand,
        np.inf,
    )
    # Sum_c b_c - share Sum_c u_c + share Sum_k r_k <= 0, per (t, s)
    cuts = [(t, s) for t in d.periods for s in d.scenario_ids]
    row_of_cut = sets.code_table(d, cuts, ("t", "s"))
    b_cut = np.array([row_of_cut[t, s_code[s]] for _c, t, s in index], dtype=np.int64)
    m.buyback_within_cut = family(
        cuts,
        [
            (b_cut, b_rows, ones_b),
            (b_cut, at_u + b_rows, np.full(n_b, -share)),
            (row_of_cut[r_t, r_s] if n_r else r_rows, at_r + r_rows, np.full(n_r, share)),
        ],
        -np.inf,
        0.0,
    )


def _most_class_gpu_hours(d: ModelData, classes: dict[str, list[str]]) -> dict[tuple[str, int], float]:
    """(class, t) -> h x the most GPUs the class's sites can hold in quarter t (GPU cap, and build
    rate and power over the racks' lives: the bounds on racks_built), the big-M of
    `buyback_only_if_open`."""

    def most_at(i: str, t: int) -> float:
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

    return {(c, t): sum(most_at(i, t) for i in sites) for c, sites in classes.items() for t in d.periods}


def _unsold_terms(
    m: pyo.ConcreteModel,
    d: ModelData,
    row_of_b: np.ndarray,
    class_of_site: np.ndarray,
    at_sp: int,
    at_served: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A class's unsold hours as triplets (row in the buyback index, position in the segments,
    coefficient): h x site_gpus_installed[i,t] - served at i, over the class's sites i."""
    served = variables.served_index(m)
    gpus_at = sets.code_table(d, list(m.site_gpus_installed.keys()), ("i", "t"))
    n_scen = len(d.scenario_ids)
    i, t = np.nonzero(gpus_at >= 0)
    i, t, s = np.repeat(i, n_scen), np.repeat(t, n_scen), np.tile(np.arange(n_scen), len(i))
    rows = np.concatenate(
        [row_of_b[class_of_site[i], t, s], row_of_b[class_of_site[served.i], served.t, served.s]]
    )
    positions = np.concatenate([at_sp + gpus_at[i, t], at_served + np.arange(len(served), dtype=np.int64)])
    coefs = np.concatenate([np.full(len(i), d.h), -np.ones(len(served))])
    return rows, positions, coefs


def buyback_cut_inputs(m: pyo.ConcreteModel) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]:
    """At the model's current values, per (t, s): each class's unsold GPU-hours and each
    tenant's refused ones, in the orders of `buyback_cut_orders` (for
    `planner.model.matching.most_without_buyer`)."""
    d: ModelData = m._dsx_data
    classes, tenants, _ = buyback_cut_orders(m)
    c_of = {i: n for n, (c, sites) in enumerate(classes.items()) for i in sites}
    k_of = {k: n for n, k in enumerate(tenants)}
    out = {
        (t, s): (
            np.array(
                [
                    d.h * sum(pyo.value(m.site_gpus_installed[i, t]) for i in sites)
                    for sites in classes.values()
                ]
            ),
            np.zeros(len(tenants)),
        )
        for t in d.periods
        for s in d.scenario_ids
    }
    for (_k, i, _r, t, s), var in m.served_gpu_hours.items():
        out[t, s][0][c_of[i]] -= var.value or 0.0
    for (k, t, s), var in m.unserved_gpu_hours.items():
        if k in k_of:
            out[t, s][1][k_of[k]] = var.value or 0.0
    return out


def buyback_cut_orders(m: pyo.ConcreteModel) -> tuple[dict[str, list[str]], list[str], np.ndarray]:
    """The classes (`sets.site_classes`), the tenants and [tenant, class] whether it may use it."""
    d: ModelData = m._dsx_data
    classes = sets.site_classes(d)
    tenants = [k.id for k in d.scenario.tenants]
    may_use = np.array(
        [[k in d.tenants_at[sites[0]] for sites in classes.values()] for k in tenants], dtype=bool
    )
    return classes, tenants, may_use.reshape(len(tenants), len(classes))


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
